"""The car-rental upload gate: file checks, row checks and the admission of an S3 upload into a batch."""
