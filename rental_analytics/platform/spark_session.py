"""The local Spark session of the embedded default, configured in one place for the CLI and the tests."""

from __future__ import annotations

import os
import signal
import threading
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

from rental_analytics.platform import class_data, run_lock

# Settings the jobs rely on wherever they run; EMR gets the same through the cluster configuration.
JOB_SETTINGS: dict[str, bool | float | int | str | None] = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.adaptive.enabled": "true",
    # A shuffle starts at spark.sql.shuffle.partitions and is merged into partitions of about 64 MB (16 MB in
    # a local session), so the EMR step's SparkShufflePartitions is an upper bound rather than a fixed count.
    "spark.sql.adaptive.coalescePartitions.enabled": "true",
    "spark.sql.parquet.compression.codec": "snappy",
    # Cached frames are kept as they are: compressing them (dictionaries of every string column) took longer
    # than reading their CSV again, and the few cached frames fit the heap as they are (docs/benchmarks.md).
    "spark.sql.inMemoryColumnarStorage.compressed": "false",
    # An aggregation first looks a key up in a small map, then in the large one: with millions of keys (users,
    # rental ids, pairs of ids) the small one is nearly always missed, and skipping it took a sixth off the
    # time of the analytics (docs/benchmarks.md).
    "spark.sql.codegen.aggregate.map.twolevel.enabled": "false",
    # Dates and times are in the proleptic Gregorian calendar, as the contracts and every other Parquet reader
    # take them. Spark's default refuses to write or read one before 1582-10-15 rather than guess whether it
    # should be shifted to the Julian calendar of Spark 2 files, and a single such rental failed the batch.
    "spark.sql.parquet.datetimeRebaseModeInWrite": "CORRECTED",
    "spark.sql.parquet.datetimeRebaseModeInRead": "CORRECTED",
    "spark.sql.parquet.int96RebaseModeInWrite": "CORRECTED",
    "spark.sql.parquet.int96RebaseModeInRead": "CORRECTED",
    # Asked for some columns only, Spark's CSV parser skips the others' values, and a `""` in a skipped column
    # made it lose the opening quote of a next value starting with a comma: the row's values shifted, and a row
    # the upload gate rejected was kept. Parsing every column of the schema (which ends at the last contract
    # column of a wide file) reads each row as the gate does.
    "spark.sql.csv.parser.columnPruning.enabled": "false",
}


# The optimising JIT compiler (C2) takes methods at ten times the calls and loop turns of its defaults. At
# the defaults it compiled for 40 s of a 5M-rental local run's 114 s of CPU: Spark's planner, Janino and
# Java serialisation, run for a few thousand calls per query, got C2's attention as much as the per-row loops
# did, on a core the tasks needed. At ten times, C2 spent 22 s, and the run was shorter (docs/benchmarks.md).
OPTIMISE_ONLY_THE_HOTTEST = (
    "-XX:Tier4InvocationThreshold=50000",
    "-XX:Tier4MinInvocationThreshold=6000",
    "-XX:Tier4CompileThreshold=150000",
    "-XX:Tier4BackEdgeThreshold=400000",
)

# Adaptive execution merges a local session's shuffle partitions up to this size. At Spark's 64 MB it merged
# the 8 partitions of a 5M-rental history's per-(date, user) sums into 2 tasks, whose hash maps then spilled to
# disk: the local heap is small, and the cached reference rows hold part of it (docs/benchmarks.md).
LOCAL_ADVISORY_PARTITION_SIZE = "16m"

# Debian's libmariadb-java and libpostgresql-jdbc-java; Glue and EMR bring their own drivers.
DEBIAN_JDBC_JARS = ("/usr/share/java/mariadb-java-client.jar", "/usr/share/java/postgresql.jar")
DEBIAN_JDBC_PACKAGES = {
    "org.mariadb.jdbc.Driver": "libmariadb-java",
    "org.postgresql.Driver": "libpostgresql-jdbc-java",
}
JARS_ENV = "RENTAL_ANALYTICS_JDBC_JARS"

# Where this process's Spark writes its log, once a local session has been given a log folder.
_log_file: Path | None = None


def jdbc_jars() -> list[str]:
    """The JDBC driver jars for a local session: RENTAL_ANALYTICS_JDBC_JARS (comma-separated) or Debian's."""
    configured = os.environ.get(JARS_ENV)
    if configured:
        return [jar for jar in configured.split(",") if jar]
    return [jar for jar in DEBIAN_JDBC_JARS if Path(jar).is_file()]


def _has_class(jar: str, class_name: str) -> bool:
    entry = class_name.replace(".", "/") + ".class"
    try:
        with zipfile.ZipFile(jar) as archive:
            return entry in archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


def missing_jdbc_drivers(driver_classes: Iterable[str]) -> list[str]:
    """The driver classes that no jar of `jdbc_jars()` holds; read from the jars, without starting Java."""
    jars = jdbc_jars()
    return [name for name in driver_classes if not any(_has_class(jar, name) for jar in jars)]


def log_file() -> Path | None:
    """The file Spark's own log goes to in this process, if a local session was started with a log folder."""
    return _log_file


def _log4j2_properties(log: Path) -> str:
    # log4j2 reads `${...}` as a lookup: doubling `$` keeps a path that holds one as it is.
    path = str(log).replace("$", "$$")
    return "\n".join(
        [
            "rootLogger.level = warn",
            "rootLogger.appenderRef.file.ref = file",
            "appender.file.type = File",
            "appender.file.name = file",
            f"appender.file.fileName = {path}",
            "appender.file.append = true",
            "appender.file.layout.type = PatternLayout",
            "appender.file.layout.pattern = %d{yyyy-MM-dd HH:mm:ss} %p %c{1}: %m%n%ex",
            # Parquet's writer logs each file at INFO through its own logger; Spark's default quiets it too.
            "logger.parquet.name = org.apache.parquet",
            "logger.parquet.level = error",
            "",
        ]
    )


def _raise_keyboard_interrupt_on_ctrl_c() -> None:
    """Make Ctrl-C a plain KeyboardInterrupt again.

    PySpark's own handler calls into the JVM from inside the signal handler; when the main thread is waiting
    on the JVM at that moment the call re-enters the busy Py4J connection and the interrupt surfaces as a
    Py4JError with pages of logged tracebacks. Raising KeyboardInterrupt alone leaves the JVM's work to end
    with the process (the JVM exits when its parent does).
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)


def local_session(
    app_name: str = "rental-analytics",
    shuffle_partitions: int = 8,
    driver_memory: str | None = None,
    log_dir: Path | None = None,
    quick_start: bool = False,
) -> SparkSession:
    """A local-mode session using every core; its heap comes from RENTAL_ANALYTICS_SPARK_MEMORY or 2g.

    With `log_dir`, Spark's log (warnings included) goes to `log_dir/spark.log` instead of the terminal.
    `quick_start` is for small inputs: the JVM compiles less, which pays off when there is little to run.
    The JVM starts from a kept archive of Spark's classes (`class_data`) when there is one.
    """
    global _log_file
    # JDBC hands timestamps over in the JVM's zone: UTC keeps MySQL's wall-clock values as they are.
    java_options = " ".join(filter(None, ["-Duser.timezone=UTC", class_data.java_options()]))
    if quick_start:
        # The optimising JIT compiler pays off only on long runs; on a small batch its compile time is most
        # of the work, and the first tier alone finishes sooner (docs/benchmarks.md).
        java_options += " -XX:TieredStopAtLevel=1"
    else:
        java_options += " " + " ".join(OPTIMISE_ONLY_THE_HOTTEST)
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        config = log_dir / "log4j2.properties"
        config.write_text(_log4j2_properties(log_dir.resolve() / "spark.log"), encoding="utf-8")
        # A file URI: Spark splits extraJavaOptions at spaces, and a URI has none.
        java_options += f" -Dlog4j2.configurationFile={config.resolve().as_uri()}"
    builder = (
        SparkSession.builder.master(os.environ.get("RENTAL_ANALYTICS_SPARK_MASTER", "local[*]"))
        .appName(app_name)
        # 2g keeps the whole process tree, JVM included, under 4 GiB (docs/benchmarks.md); cached rows spill
        # to disk rather than grow the heap.
        .config("spark.driver.memory", driver_memory or os.environ.get("RENTAL_ANALYTICS_SPARK_MEMORY", "2g"))
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
        .config("spark.sql.adaptive.advisoryPartitionSizeInBytes", LOCAL_ADVISORY_PARTITION_SIZE)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        # Local runs need no Hive metastore; keeping Derby out stops stray metastore_db folders.
        .config("spark.sql.catalogImplementation", "in-memory")
        .config("spark.driver.extraJavaOptions", java_options)
    )
    jars = jdbc_jars()
    if jars:
        builder = builder.config("spark.jars", ",".join(jars))
    session = builder.config(map=JOB_SETTINGS).getOrCreate()
    _raise_keyboard_interrupt_on_ctrl_c()
    launched = getattr(session.sparkContext._gateway, "proc", None)  # None when the JVM was not started here
    if launched is not None:
        run_lock.note_helper_process(launched.pid)
    if log_dir is None:
        session.sparkContext.setLogLevel("ERROR")
    else:
        # log4j creates the file as the JVM starts; a session reused from earlier in the process logs elsewhere.
        log = log_dir.resolve() / "spark.log"
        _log_file = log if log.is_file() else None
    return session


class StartingSession:
    """A local session started in a background thread, so that the JVM starts while the caller works on.

    Starting Spark's JVM takes seconds of one core; the caller's own checks meanwhile take the other.
    """

    def __init__(self, **options: Any) -> None:
        self._session: SparkSession | None = None
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._start, kwargs=options, name="spark-start", daemon=True)
        self._thread.start()

    def _start(self, **options: Any) -> None:
        try:
            self._session = local_session(**options)
        except BaseException as failure:  # raised again in the caller's thread, by `get`
            self._failure = failure

    def get(self) -> SparkSession:
        """The session once it has started; a failure to start is raised here."""
        self._thread.join()
        if self._failure is not None:
            raise self._failure
        assert self._session is not None
        return self._session

    def discard(self) -> None:
        """Wait for a start no longer needed to end, so that the process does not end in the middle of it.

        The session is not stopped: started here or not, it may be one the process shares (a test's), and it
        ends with the process anyway.
        """
        self._thread.join()


def job_session(app_name: str) -> SparkSession:
    """The session of a job on EMR or Glue: the cluster's own settings plus the ones the jobs rely on."""
    return SparkSession.builder.appName(app_name).config(map=JOB_SETTINGS).getOrCreate()
