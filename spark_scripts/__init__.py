"""Entry scripts that EMR steps and Glue jobs run."""
