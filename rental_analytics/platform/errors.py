"""Failures a person can act on: one line naming the stage, what failed and what to do, with its exit code."""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from typing import Any, TextIO

from rental_analytics.platform.command_line import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_TERMINATED, EXIT_USAGE
from rental_analytics.platform.config import ConfigError

PROGRAM = "rental-analytics"
CHECKS = "checking the settings"  # the stage of everything checked before the work starts


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so that it ends as after Ctrl-C: its report written, one line."""


class StageError(Exception):
    """An expected failure: in which stage, what failed, what to do about it, and the process's exit code."""

    def __init__(self, stage: str, what: str, hint: str = "", exit_code: int = EXIT_USAGE) -> None:
        super().__init__(what)
        self.stage, self.what, self.hint, self.exit_code = stage, what, hint, exit_code

    def line(self) -> str:
        """The one line printed for it."""
        hint = f"; {self.hint}" if self.hint else ""
        return f"{PROGRAM}: [{self.stage}] {self.what.rstrip('.')}{hint}"


def _named(error: BaseException, *names: str) -> bool:
    """True when the error is of a class with one of these dotted names; no library needs importing to ask."""
    return any(f"{cls.__module__}.{cls.__qualname__}" in names for cls in type(error).__mro__)


def _first_line(text: object) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else ""


# What went wrong with a database, worded to take "where" after it; SQLSTATE classes are the same in MySQL and
# PostgreSQL.
DB_LOGIN, DB_UNREACHABLE, DB_MISSING, DB_DRIVER = (
    "cannot log in to",
    "cannot reach",
    "cannot open",
    "no JDBC driver for",
)
_SQLSTATE_KINDS = {"28": DB_LOGIN, "08": DB_UNREACHABLE, "3D": DB_MISSING}
_MYSQL_KINDS = {
    1044: DB_LOGIN,
    1045: DB_LOGIN,
    1130: DB_LOGIN,
    1698: DB_LOGIN,
    1049: DB_MISSING,
    2002: DB_UNREACHABLE,
    2003: DB_UNREACHABLE,
    2005: DB_UNREACHABLE,
    2006: DB_UNREACHABLE,
    2013: DB_UNREACHABLE,
}
DB_HINTS = {
    DB_LOGIN: "check the user and password",
    DB_UNREACHABLE: "check that the server is running, and the host and port",
    DB_MISSING: "create the database or fix its name",
    DB_DRIVER: "install the JDBC driver (README: libmariadb-java, libpostgresql-jdbc-java) or set "
    "RENTAL_ANALYTICS_JDBC_JARS",
}


def database_problem(error: BaseException) -> tuple[str, str] | None:
    """(kind, message) when a database client (PyMySQL, pg8000, a JDBC driver in Spark) refused for a known reason."""
    if _named(error, "pymysql.err.OperationalError", "pymysql.err.InternalError") and error.args:
        kind = _MYSQL_KINDS.get(error.args[0]) if isinstance(error.args[0], int) else None
        return (kind, _first_line(error.args[-1])) if kind else None
    if _named(error, "pg8000.exceptions.DatabaseError") and error.args and isinstance(error.args[0], dict):
        fields = error.args[0]
        kind = _SQLSTATE_KINDS.get(str(fields.get("C", ""))[:2])
        return (kind, _first_line(fields.get("M", ""))) if kind else None
    if _named(error, "pg8000.exceptions.InterfaceError"):
        message = _first_line(error)
        return (DB_LOGIN if "password" in message else DB_UNREACHABLE), message
    if _named(error, "py4j.protocol.Py4JJavaError"):
        return _jdbc_problem(getattr(error, "java_exception", None))
    return None


def _jdbc_problem(java_error: Any) -> tuple[str, str] | None:
    """Walk a Java exception and its causes for a SQL state or a missing driver class."""
    from py4j.protocol import Py4JError

    for _ in range(10):  # Spark wraps a driver's error a few levels deep at most
        if java_error is None:
            return None
        try:
            name, message = java_error.getClass().getName(), _first_line(java_error.getMessage())
            if name == "java.lang.ClassNotFoundException":
                return (DB_DRIVER, message) if message.endswith("Driver") or ".jdbc." in message else None
            if message == "No suitable driver":  # DriverManager knows no driver for the URL's scheme
                return DB_DRIVER, message
            try:
                kind = _SQLSTATE_KINDS.get(str(java_error.getSQLState() or "")[:2])
            except Py4JError:  # not a java.sql.SQLException
                kind = None
            if kind:
                return kind, message
            java_error = java_error.getCause()
        except Py4JError:  # the JVM is gone: nothing more to learn from it
            return None
    return None


AWS_NO_REGION = "no AWS region is configured", "pass --region, or set AWS_DEFAULT_REGION or a region in your profile"
AWS_CREDENTIALS_HINT = (
    "run `aws configure` (or `aws sso login`), or set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
)
_AWS_REJECTED = {
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "InvalidAccessKeyId",
    "RequestExpired",
    "InvalidSignatureException",
}


def aws_problem(error: BaseException) -> tuple[str, str] | None:
    """(what, hint) for botocore's failures that mean the AWS configuration, not the pipeline, is wrong."""
    if _named(error, "botocore.exceptions.NoRegionError"):
        return AWS_NO_REGION
    if _named(
        error,
        "botocore.exceptions.NoCredentialsError",
        "botocore.exceptions.PartialCredentialsError",
        "botocore.exceptions.ProfileNotFound",
        "botocore.exceptions.TokenRetrievalError",
        "botocore.exceptions.SSOTokenLoadError",
        "botocore.exceptions.UnauthorizedSSOTokenError",
    ):
        return f"AWS credentials: {_first_line(error)}", AWS_CREDENTIALS_HINT
    if _named(error, "botocore.exceptions.EndpointConnectionError"):
        return _first_line(error), "check the network connection and the region"
    if _named(error, "botocore.exceptions.ClientError"):
        details = getattr(error, "response", {}).get("Error", {})
        code, message = str(details.get("Code", "")), _first_line(details.get("Message", error))
        if code in _AWS_REJECTED:
            return f"AWS refused the credentials ({code}): {message}", AWS_CREDENTIALS_HINT
        if code.startswith("AccessDenied"):
            return f"AWS denied access ({code}): {message}", "use credentials allowed to use the stack"
        if code == "ValidationError" and "does not exist" in message:
            return message, "check --stack and --region"
    return None


def _spark_problem(error: BaseException) -> tuple[str, str, int] | None:
    """(what, hint, exit code) for Spark failing to start or its JVM going away."""
    from rental_analytics.platform.spark_session import log_file

    where = log_file()
    see = f"the details are in {where}" if where else "run again with --debug for the details"
    if getattr(error, "getErrorClass", lambda: None)() == "JAVA_GATEWAY_EXITED":
        return "Spark's Java process did not start", f"check Java 17 and JAVA_HOME; {see}", EXIT_USAGE
    if _named(error, "py4j.protocol.Py4JJavaError"):
        return f"Spark failed: {_first_line(getattr(error, 'java_exception', error))}", see, EXIT_FAILED
    if _named(error, "pyspark.errors.exceptions.captured.CapturedException"):
        return f"Spark failed: {_first_line(error)}", see, EXIT_FAILED
    if _named(error, "py4j.protocol.Py4JError") or _py4j_lost_the_jvm(error):
        memory = "it may have run out of memory (RENTAL_ANALYTICS_SPARK_MEMORY sets its share)"
        return "Spark's Java process stopped answering", f"{memory}; {see}", EXIT_FAILED
    return None


def _py4j_lost_the_jvm(error: BaseException) -> bool:
    """Whether py4j itself raised a socket error: a thread's new connection to a JVM that is gone is refused."""
    if not isinstance(error, ConnectionError) or error.__traceback__ is None:
        return False
    raised_in = traceback.extract_tb(error.__traceback__)[-1].filename
    return f"{os.sep}py4j{os.sep}" in raised_in


def as_stage_error(error: BaseException, stage: str) -> StageError:
    """Any failure as a StageError: known ones in their own words, the rest as unexpected (a bug to report)."""
    if isinstance(error, StageError):
        return error
    if isinstance(error, KeyboardInterrupt):
        hint = "what it was writing may be half done: run the command again"
        if isinstance(error, Terminated):
            return StageError(stage, "terminated (SIGTERM)", hint, EXIT_TERMINATED)
        return StageError(stage, "interrupted (Ctrl-C)", hint, EXIT_INTERRUPTED)
    if isinstance(error, ConfigError):
        return StageError(stage, str(error))
    database = database_problem(error)
    if database:
        kind, message = database
        # Refused in the checks, or without its driver, the settings are wrong (2); a database lost once the run
        # is under way failed the run (1).
        code = EXIT_USAGE if stage == CHECKS or kind == DB_DRIVER else EXIT_FAILED
        return StageError(stage, f"{kind} the database: {message}", DB_HINTS[kind], code)
    aws = aws_problem(error)
    if aws:
        return StageError(stage, *aws)
    spark = _spark_problem(error) if "py4j" in sys.modules else None
    if spark:
        return StageError(stage, *spark)
    if isinstance(error, BrokenPipeError):
        what = "the program reading the output stopped before its end (a closed pipe)"
        return StageError(stage, what, "what was written to disk is kept; send the output to a file", EXIT_FAILED)
    if isinstance(error, OSError):
        return StageError(stage, _first_line(error), "check the path, its permissions and the free space", EXIT_FAILED)
    what = f"unexpected {type(error).__name__}: {_first_line(error)}"
    return StageError(stage, what, "run again with --debug for the traceback, and report it", EXIT_FAILED)


def report_failure(
    error: BaseException, stage: str | None, command: str, debug: bool, stream: TextIO | None = None
) -> int:
    """Print the failure's one line (after its traceback with --debug) and return the exit code.

    `stage` is the stage under way, if one was announced; before that a missing or malformed setting failed the
    checks, and anything else failed in the command itself.
    """
    out = stream or sys.stderr
    if debug:
        traceback.print_exception(type(error), error, error.__traceback__, file=out)
    failure = as_stage_error(error, stage or (CHECKS if isinstance(error, ConfigError) else command))
    with contextlib.suppress(OSError):  # standard error has no reader either (`2>&1 | head`): the exit code says it
        print(failure.line(), file=out, flush=True)
    return failure.exit_code
