"""A class-data archive of the local Spark JVM's classes, kept between runs so that later JVMs start faster."""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pyspark

CACHE_ENV = "RENTAL_ANALYTICS_CLASS_CACHE"  # a folder, or "off"
# Writing an archive reports every class it leaves out (thousands of lines) on the terminal.
QUIET = "-Xlog:cds=off -Xlog:cds+dynamic=off"
# A leftover archive is only taken up once this long has passed since it last changed.
SETTLE_SECONDS = 30
UNUSED_DAYS = 30
EXIT_SECONDS = 120  # writing an archive of a Spark run's classes takes a second or two
# These put folders on Spark's class path, and a JVM cannot write an archive with a folder on it: a Spark
# set up by hand is left as it is.
CLASS_PATH_ENV = ("SPARK_HOME", "SPARK_CONF_DIR", "HADOOP_CONF_DIR", "YARN_CONF_DIR", "SPARK_DIST_CLASSPATH")


def cache_dir() -> Path | None:
    """Where archives are kept: RENTAL_ANALYTICS_CLASS_CACHE, else the user's cache folder; None when off."""
    configured = os.environ.get(CACHE_ENV)
    if configured == "off":
        return None
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rental-analytics"


def java_executable() -> Path | None:
    """The java that PySpark starts: JAVA_HOME's, else the first on PATH."""
    home = os.environ.get("JAVA_HOME")
    found = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    return Path(found).resolve() if found and Path(found).is_file() else None


def _archive_name(java: Path) -> str:
    # An archive fits one JDK build and one set of Spark jars; either changing gives a new name.
    identity = f"{java}|{java.stat().st_mtime_ns}|{Path(pyspark.__file__).parent}|{pyspark.__version__}"
    return f"spark-{hashlib.sha256(identity.encode()).hexdigest()[:16]}.jsa"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _starts_with(java: Path, archive: Path) -> bool:
    # A JVM killed while writing leaves a truncated archive, and mapping one crashes the JVM (SIGBUS on JDK 17):
    # an archive is only used once a JVM has started with it.
    try:
        check = subprocess.run(
            # A crash report would land in the working folder: the exit status says all this needs.
            [
                str(java),
                f"-XX:ErrorFile={os.devnull}",
                "-XX:-CreateCoredumpOnCrash",
                f"-XX:SharedArchiveFile={archive}",
                "-version",
            ],
            capture_output=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return check.returncode == 0


def _promote_finished_archive(folder: Path, name: str, java: Path) -> None:
    """Make the newest archive that a finished JVM wrote the one later runs use; discard the others."""
    # The JVM writes its archive after the Python process that started it has ended; a file that changed in
    # the last SETTLE_SECONDS may still be growing.
    settled = time.time() - SETTLE_SECONDS
    written = []
    for candidate in folder.glob(f"{name}.*"):
        pid = candidate.suffix[1:]
        if pid.isdigit() and not _alive(int(pid)) and candidate.stat().st_mtime < settled:
            written.append(candidate)
    written.sort(key=lambda path: path.stat().st_mtime, reverse=True)
    for candidate in written:
        if not (folder / name).exists() and _starts_with(java, candidate):
            os.replace(candidate, folder / name)
        else:
            candidate.unlink(missing_ok=True)


def _remove_stale_archives(folder: Path, name: str) -> None:
    # Each archive fits one JDK and one Spark install (two checkouts have two) and takes about 140 MB: one
    # that no run has used for UNUSED_DAYS is of an install that is gone or out of use.
    unused_since = time.time() - UNUSED_DAYS * 86400
    for other in folder.glob("spark-*.jsa"):
        if other.name != name and other.stat().st_mtime < unused_since:
            other.unlink(missing_ok=True)


def java_options() -> str:
    """JVM options that start from the kept archive, or have this JVM write one as it exits; "" when off.

    The archive holds the classes a Spark run loaded, already parsed and verified: the next JVM maps them
    instead of loading them from the jars, which takes seconds off every local command.
    """
    if any(os.environ.get(name) for name in CLASS_PATH_ENV):
        return ""
    folder, java = cache_dir(), java_executable()
    # Spark splits the JVM options at whitespace, and the -XX paths cannot be quoted or written as URIs.
    if folder is None or java is None or any(char.isspace() for char in str(folder)):
        return ""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        name = _archive_name(java)
        _promote_finished_archive(folder, name, java)
        _remove_stale_archives(folder, name)
    except OSError:
        return ""  # an unusable cache folder only costs the speed-up
    archive = folder / name
    if archive.is_file():
        with contextlib.suppress(OSError):  # another user's archive in a shared folder is used all the same
            os.utime(archive)  # marks it in use, for _remove_stale_archives
        return f"-XX:SharedArchiveFile={archive} {QUIET}"
    # Named by this process, so that concurrent first runs write separate files and no reader takes a half-written one.
    candidate = folder / f"{name}.{os.getpid()}"
    atexit.register(_finish_archive, candidate, archive)
    return f"-XX:ArchiveClassesAtExit={candidate} {QUIET}"


def _finish_archive(candidate: Path, archive: Path) -> None:
    """As this process exits: end the JVM now, so it writes its archive, and make that the one later runs use.

    Left to itself the JVM would end after this process, and only a later run could take up its archive.
    """
    from pyspark import SparkContext

    process = getattr(SparkContext._gateway, "proc", None)
    if process is None or process.stdin is None:
        return
    context = SparkContext._active_spark_context
    # It takes several seconds, even after Ctrl-C: say why the command has not ended yet.
    print(
        "rental-analytics: saving Spark's classes so that later runs start faster (Ctrl-C to skip)",
        file=sys.stderr,
        flush=True,
    )
    try:
        if context is not None:
            context.stop()
        process.stdin.close()  # the JVM exits when its standard input closes
        process.wait(timeout=EXIT_SECONDS)
    except (Exception, KeyboardInterrupt):
        # The JVM goes on writing its archive by itself and a later run takes it up; any other failure here
        # only costs the speed-up, and a later run writes one again.
        return
    if process.returncode == 0 and candidate.is_file() and not archive.exists():
        os.replace(candidate, archive)
