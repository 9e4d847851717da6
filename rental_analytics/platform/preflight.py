"""Cheap checks before Spark or AWS is touched, so a wrong setting fails in a second with one line, not later."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

from rental_analytics.platform.errors import AWS_CREDENTIALS_HINT, AWS_NO_REGION, CHECKS, StageError, aws_problem


def usable_folder(path: Path, flag: str) -> Path:
    """Create the folder when missing and prove it writable; say in one line why it cannot be used."""
    if path.exists() and not path.is_dir():
        raise StageError(CHECKS, f"{flag} {path} is a file, not a folder", "give a folder (it is created when missing)")
    if path.is_symlink() and not path.exists():
        raise StageError(
            CHECKS,
            f"{flag} {path} is a link to {os.readlink(path)}, which does not exist",
            "create the folder it points to, or give another folder",
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as error:
        reason = error.strerror or str(error)
        raise StageError(
            CHECKS, f"{flag} {path} cannot be created or written: {reason}", "give a folder you can write to"
        ) from error
    return path


def java_found() -> None:
    """Spark's launcher runs $JAVA_HOME/bin/java, or `java` from the PATH when JAVA_HOME is unset."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        if not (Path(java_home) / "bin" / "java").is_file():
            raise StageError(CHECKS, f"JAVA_HOME {java_home} has no bin/java", "point JAVA_HOME at a Java 17")
    elif not shutil.which("java"):
        raise StageError(
            CHECKS,
            "Java was not found: Spark needs Java 17",
            "install it (e.g. apt-get install openjdk-17-jre-headless) or set JAVA_HOME",
        )


def jdbc_drivers_found(driver_classes: Iterable[str]) -> None:
    """Every JDBC driver class is in a jar the local session will load."""
    from rental_analytics.platform.spark_session import (
        DEBIAN_JDBC_PACKAGES,
        JARS_ENV,
        jdbc_jars,
        missing_jdbc_drivers,
    )

    missing = missing_jdbc_drivers(driver_classes)
    if not missing:
        return
    looked = ", ".join(jdbc_jars()) or "/usr/share/java"
    packages = " ".join(DEBIAN_JDBC_PACKAGES.get(name, name) for name in missing)
    raise StageError(
        CHECKS,
        f"no JDBC driver {', '.join(missing)} in {looked}",
        f"install it (apt-get install {packages}) or set {JARS_ENV} to the driver's jar",
    )


# Hadoop reads a path given to Spark as a glob pattern (`*?[]{}` and `\`) and a `:` as a URI scheme: a folder
# named `glob[ab]` would be read as `globa` or `globb`, silently.
_SPARK_PATH_SPECIALS = frozenset("*?[]{}\\:")


def spark_path(path: Path, flag: str) -> Path:
    """A local path Spark reads as the folder it names, or a one-line refusal naming the characters it cannot take."""
    found = sorted(set(str(path.resolve())) & _SPARK_PATH_SPECIALS)
    if found:
        raise StageError(
            CHECKS,
            f"{flag} {path} has {' '.join(found)} in its path, which Spark reads as a pattern or a URI, not a name",
            "give a folder whose path has none of * ? [ ] { } \\ :",
        )
    return path


def spark_can_start(output: Path, driver_classes: Iterable[str] = ()) -> None:
    """What a local Spark run needs before its JVM starts: a usable --output, Java, and the JDBC drivers."""
    spark_path(output, "--output")
    usable_folder(output, "--output")
    java_found()
    jdbc_drivers_found(driver_classes)


def aws_ready(region: str | None) -> None:
    """An AWS region and credentials can be found, without calling AWS (a profile's role is assumed later)."""
    try:
        import boto3
    except ImportError as error:
        raise StageError(CHECKS, "boto3 is not installed", "pip install boto3") from error
    try:
        session = boto3.session.Session(region_name=region)
        found_region = session.region_name
        credentials = session.get_credentials()
    except Exception as error:
        problem = aws_problem(error)
        if problem is None:
            raise
        raise StageError(CHECKS, *problem) from error
    if not found_region:
        raise StageError(CHECKS, *AWS_NO_REGION)
    if credentials is None:
        raise StageError(CHECKS, "no AWS credentials were found", AWS_CREDENTIALS_HINT)
