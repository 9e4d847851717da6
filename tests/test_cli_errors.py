"""What a person sees when a run cannot go on: one line naming the stage and what to do, and an exact exit code."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from rental_analytics.cli import main
from rental_analytics.platform import spark_session
from tests.conftest import _mysql_admin
from tests.repo import ROOT

CHECKS = "[checking the settings]"
MARIADB, POSTGRES = "mysql://root@127.0.0.1:3306/test", "postgresql://postgres@127.0.0.1:5432/test"


def one_line(err: str) -> str:
    """The single line a failure prints on standard error."""
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("rental-analytics: [")
    return lines[0]


@pytest.fixture
def no_spark(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records any attempt to start Spark: the checks must fail before the JVM starts."""
    started: list[str] = []

    def record(*args: object, **kwargs: object) -> None:
        started.append("local_session")
        raise AssertionError("Spark was started")

    monkeypatch.setattr(spark_session, "local_session", record)
    return started


@pytest.fixture
def batch(tmp_path: Path) -> Path:
    folder = tmp_path / "2024-06-01"
    assert main(["generate", "car-rental", "--output", str(folder), "--rentals", "50"]) == 0
    return folder


def _fails(capsys: pytest.CaptureFixture[str], argv: list[str], code: int = 2) -> str:
    capsys.readouterr()
    assert main(argv) == code
    return one_line(capsys.readouterr().err)


# --- the output folder ------------------------------------------------------------------------------------


def test_an_output_that_is_a_file_fails_before_spark(batch: Path, tmp_path: Path, capsys, no_spark):
    taken = tmp_path / "out.txt"
    taken.write_text("mine")
    line = _fails(capsys, ["run", "car-rental", "--input", str(batch), "--output", str(taken)])
    assert line == (
        f"rental-analytics: {CHECKS} --output {taken} is a file, not a folder; give a folder (it is created when missing)"
    )
    assert no_spark == [] and taken.read_text() == "mine"


def test_an_output_below_a_file_fails_before_spark(batch: Path, tmp_path: Path, capsys, no_spark):
    (tmp_path / "out.txt").write_text("mine")
    below = tmp_path / "out.txt" / "run"
    line = _fails(capsys, ["run", "car-rental", "--input", str(batch), "--output", str(below)])
    assert (
        line
        == f"rental-analytics: {CHECKS} --output {below} cannot be created or written: Not a directory; give a folder you can write to"
    )
    assert no_spark == []


def test_an_output_that_links_to_nothing_is_named_as_such(batch: Path, tmp_path: Path, capsys, no_spark):
    dangling = tmp_path / "out"
    dangling.symlink_to(tmp_path / "gone")
    line = _fails(capsys, ["run", "car-rental", "--input", str(batch), "--output", str(dangling)])
    assert line == (
        f"rental-analytics: {CHECKS} --output {dangling} is a link to {tmp_path / 'gone'}, which does not exist; "
        "create the folder it points to, or give another folder"
    )
    assert no_spark == []


@pytest.mark.parametrize("flag", ["--input", "--output"])
@pytest.mark.parametrize("name", ["glob[ab]", "a:b", "star*"])
def test_a_path_spark_would_read_as_a_pattern_is_refused_before_spark(
    flag: str, name: str, batch: Path, tmp_path: Path, capsys, no_spark
):
    # Spark reads `glob[ab]` as the pattern matching `globa` and `globb`: it would process another folder.
    odd = tmp_path / name / "2024-06-01"
    if flag == "--input":
        shutil.copytree(batch, odd)
    where = {
        "--input": str(odd if flag == "--input" else batch),
        "--output": str(odd if flag == "--output" else tmp_path / "out"),
    }
    line = _fails(capsys, ["run", "car-rental", "--input", where["--input"], "--output", where["--output"]])
    assert f"{flag} {odd} has" in line and "which Spark reads as a pattern or a URI" in line
    assert no_spark == []


@pytest.mark.parametrize("command", [["generate", "car-rental"], ["demo", "--rentals", "10"]])
def test_the_other_commands_that_write_a_folder_check_it_too(command: list[str], tmp_path: Path, capsys, no_spark):
    taken = tmp_path / "out.txt"
    taken.write_text("mine")
    line = _fails(capsys, [*command, "--output", str(taken)])
    assert line.startswith(f"rental-analytics: {CHECKS} --output {taken} is a file")
    assert no_spark == []


def test_missing_java_is_named_before_spark(batch: Path, tmp_path: Path, capsys, no_spark, monkeypatch):
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    line = _fails(capsys, ["run", "car-rental", "--input", str(batch), "--output", str(tmp_path / "out")])
    assert line == (
        f"rental-analytics: {CHECKS} Java was not found: Spark needs Java 17; "
        "install it (e.g. apt-get install openjdk-17-jre-headless) or set JAVA_HOME"
    )
    assert no_spark == []


def test_a_usage_error_in_the_batch_is_one_line(tmp_path: Path, capsys, no_spark):
    line = _fails(capsys, ["run", "car-rental", "--input", str(tmp_path / "nope"), "--output", str(tmp_path)])
    assert line.startswith(f"rental-analytics: {CHECKS} --input {tmp_path / 'nope'} is not a folder; ")


def test_validating_a_path_that_is_not_there_is_one_line_like_the_other_checks(tmp_path: Path, capsys):
    line = _fails(capsys, ["validate", "car-rental", str(tmp_path / "nope.csv")])
    assert line.startswith(f"rental-analytics: {CHECKS} {tmp_path / 'nope.csv'} does not exist; ")


# --- databases --------------------------------------------------------------------------------------------


def _apartments(source: str, warehouse: str, output: Path) -> list[str]:
    return ["run", "apartments", "--mysql-url", source, "--warehouse-url", warehouse, "--output", str(output)]


@pytest.fixture(scope="module")
def filled_source() -> Iterator[str]:
    """A small marketplace database on the real MariaDB server, for the checks of the warehouse."""
    name = f"ra_cli_{uuid.uuid4().hex[:10]}"
    _mysql_admin(f"CREATE DATABASE {name}")
    url = f"mysql://root@127.0.0.1:3306/{name}"
    try:
        assert main(["generate", "apartments", "--mysql-url", url, "--apartments", "20", "--as-of", "2024-06-01"]) == 0
        yield url
    finally:
        _mysql_admin(f"DROP DATABASE IF EXISTS {name}")


@pytest.mark.parametrize(
    ("flag", "source", "warehouse", "expected"),
    [
        ("--mysql-url", POSTGRES, POSTGRES, "--mysql-url takes a mysql:// or mariadb:// URL, not postgresql://"),
        ("--warehouse-url", MARIADB, MARIADB, "--warehouse-url takes a postgresql:// or postgres:// URL, not mysql://"),
        ("--mysql-url", "oracle://u@h/d", POSTGRES, "--mysql-url: database URL must start with one of mysql://"),
    ],
)
def test_a_url_that_does_not_fit_its_flag_is_refused(flag, source, warehouse, expected, tmp_path, capsys, no_spark):
    line = _fails(capsys, _apartments(source, warehouse, tmp_path))
    assert line.startswith(f"rental-analytics: {CHECKS} {expected}")
    assert no_spark == []


def test_postgres_and_mariadb_are_other_spellings_of_the_schemes():
    from rental_analytics.apartments.db_url import DatabaseUrl

    assert (
        DatabaseUrl.parse("postgres://etl@wh/analytics").jdbc_url
        == "jdbc:postgresql://wh:5432/analytics?connectTimeout=30&loginTimeout=30&socketTimeout=3600"
    )
    maria = DatabaseUrl.parse("mariadb://app@db/market")
    assert (maria.scheme, maria.port, maria.driver_class) == ("mysql", 3306, "org.mariadb.jdbc.Driver")


def test_a_missing_jdbc_driver_is_named_before_spark(tmp_path: Path, capsys, no_spark, monkeypatch):
    monkeypatch.setenv("RENTAL_ANALYTICS_JDBC_JARS", str(tmp_path / "nope.jar"))
    line = _fails(capsys, _apartments(MARIADB, POSTGRES, tmp_path / "out"))
    assert line == (
        f"rental-analytics: {CHECKS} no JDBC driver org.mariadb.jdbc.Driver, org.postgresql.Driver in "
        f"{tmp_path / 'nope.jar'}; install it (apt-get install libmariadb-java libpostgresql-jdbc-java) or set "
        "RENTAL_ANALYTICS_JDBC_JARS to the driver's jar"
    )
    assert no_spark == []


@pytest.mark.databases
@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "mariadb://nobody_ra@127.0.0.1:3306/test",
            "cannot log in to mysql://nobody_ra@127.0.0.1:3306/test (--mysql-url): Access denied for user "
            "'nobody_ra'@'127.0.0.1' (using password: NO); check the user and password in --mysql-url",
        ),
        (
            "mysql://root@127.0.0.1:1/test",
            "cannot reach mysql://root@127.0.0.1:1/test (--mysql-url): Can't connect to MySQL server on '127.0.0.1' "
            "([Errno 111] Connection refused); check that the server is running, and the host and port in --mysql-url",
        ),
        (
            "mysql://root@127.0.0.1:3306/ra_no_such_db",
            "cannot open mysql://root@127.0.0.1:3306/ra_no_such_db (--mysql-url): Unknown database 'ra_no_such_db'; "
            "create the database or fix its name in --mysql-url",
        ),
    ],
)
def test_a_source_that_refuses_fails_before_spark(source: str, expected: str, tmp_path, capsys, no_spark):
    line = _fails(capsys, _apartments(source, POSTGRES, tmp_path / "out"))
    assert line == f"rental-analytics: {CHECKS} {expected}"
    assert no_spark == []


@pytest.mark.databases
def test_a_source_without_the_tables_says_to_generate_them(tmp_path: Path, capsys, no_spark, source):
    line = _fails(capsys, _apartments(str(source), POSTGRES, tmp_path / "out"))
    assert line == (
        f"rental-analytics: {CHECKS} {source} (--mysql-url) has no table apartments, apartment_attributes, "
        "user_viewing, bookings; create and fill them with `rental-analytics generate apartments --mysql-url URL`"
    )


@pytest.mark.databases
@pytest.mark.parametrize(
    ("warehouse", "expected"),
    [
        (
            "postgres://nobody_ra@127.0.0.1:5432/test",
            'cannot log in to postgresql://nobody_ra@127.0.0.1:5432/test (--warehouse-url): role "nobody_ra" does not '
            "exist; check the user and password in --warehouse-url",
        ),
        (
            "postgresql://postgres@127.0.0.1:1/test",
            "cannot reach postgresql://postgres@127.0.0.1:1/test (--warehouse-url): Can't create a connection to host "
            "127.0.0.1 and port 1 (timeout is 10 and source_address is None); check that the server is running, and "
            "the host and port in --warehouse-url",
        ),
        (
            "postgresql://postgres@127.0.0.1:5432/ra_no_such_db",
            'cannot open postgresql://postgres@127.0.0.1:5432/ra_no_such_db (--warehouse-url): database "ra_no_such_db" '
            "does not exist; create the database or fix its name in --warehouse-url",
        ),
    ],
)
def test_a_warehouse_that_refuses_fails_before_spark(
    filled_source: str, warehouse: str, expected: str, tmp_path, capsys, no_spark
):
    line = _fails(capsys, _apartments(filled_source, warehouse, tmp_path / "out"))
    assert line == f"rental-analytics: {CHECKS} {expected}"
    assert no_spark == []


@pytest.mark.databases
def test_generate_apartments_checks_the_login_first(capsys):
    line = _fails(capsys, ["generate", "apartments", "--mysql-url", "mysql://nobody_ra@127.0.0.1:3306/test"])
    assert line.startswith(f"rental-analytics: {CHECKS} cannot log in to mysql://nobody_ra@127.0.0.1:3306/test")


@pytest.mark.spark
@pytest.mark.databases
@pytest.mark.parametrize(
    ("url", "driver", "expected", "code"),
    [
        ("mysql://root@127.0.0.1:1/test", None, "[extract] cannot reach the database: Could not connect to", 1),
        (
            "postgresql://nobody_ra@127.0.0.1/test",
            None,
            '[extract] cannot log in to the database: FATAL: role "nobody_ra"',
            1,
        ),
        (
            MARIADB,
            "org.example.NoSuchDriver",
            "[extract] no JDBC driver for the database: org.example.NoSuchDriver",
            2,
        ),
    ],
)
def test_a_jdbc_failure_inside_spark_becomes_one_line(spark, url: str, driver: str | None, expected: str, code: int):
    """A database that goes away after the checks: Spark's Py4J error still reads as one line, and fails the run
    (exit 1, as the apartments contract says); a driver that is not there is a setting to fix (exit 2)."""
    from rental_analytics.apartments.db_url import DatabaseUrl
    from rental_analytics.platform.errors import as_stage_error

    options = {**DatabaseUrl.parse(url).jdbc_options(), "dbtable": "apartments"}
    if driver:
        options["driver"] = driver
    with pytest.raises(Exception) as raised:
        spark.read.format("jdbc").options(**options).load()
    failure = as_stage_error(raised.value, "extract")
    assert failure.exit_code == code
    assert failure.line().startswith(f"rental-analytics: {expected}")
    assert "\n" not in failure.line()


def test_a_spark_jvm_that_went_away_is_a_failed_batch_in_one_line():
    from py4j.protocol import Py4JError

    from rental_analytics.platform.errors import as_stage_error

    failure = as_stage_error(Py4JError("An error occurred while calling o49.collectToPython"), "computing analytics")
    assert failure.exit_code == 1
    assert failure.line().startswith(
        "rental-analytics: [computing analytics] Spark's Java process stopped answering; it may have run out of memory"
    )


def test_a_spark_jvm_that_went_away_under_a_new_connection_is_the_same_one_line():
    # A thread's first call to the JVM opens a connection of its own: when the JVM is gone, py4j raises the
    # socket's own error (seen killing the JVM while the analytics tables were written side by side).
    import py4j.clientserver

    from rental_analytics.platform.errors import as_stage_error

    refused = compile("raise ConnectionRefusedError(111, 'Connection refused')", py4j.clientserver.__file__, "exec")
    try:
        exec(refused)
    except ConnectionRefusedError as error:
        failure = as_stage_error(error, "computing analytics")
    assert failure.exit_code == 1
    assert failure.line().startswith("rental-analytics: [computing analytics] Spark's Java process stopped answering")


def test_a_refused_connection_outside_spark_is_not_blamed_on_it():
    from rental_analytics.platform.errors import as_stage_error

    failure = as_stage_error(ConnectionRefusedError(111, "Connection refused"), "checking")
    assert "Spark" not in failure.line()


# --- AWS --------------------------------------------------------------------------------------------------


@pytest.fixture
def bare_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No AWS configuration at all: no files, no profile, no metadata service."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID",
                 "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return monkeypatch


def _no_aws_call(monkeypatch: pytest.MonkeyPatch) -> None:
    from rental_analytics.platform import aws

    def refuse() -> None:
        raise AssertionError("an AWS client was created")

    monkeypatch.setattr(aws, "clients", refuse)


@pytest.mark.parametrize("command", [["verify-deployment", "--stack", "dev"], ["redrive-uploads", "--stack", "dev"]])
def test_no_aws_region_is_one_line(command: list[str], bare_aws, capsys):
    _no_aws_call(bare_aws)
    line = _fails(capsys, command)
    assert line == (
        f"rental-analytics: {CHECKS} no AWS region is configured; "
        "pass --region, or set AWS_DEFAULT_REGION or a region in your profile"
    )


@pytest.mark.parametrize("command", [["verify-deployment", "--stack", "dev"], ["redrive-uploads", "--stack", "dev"]])
def test_no_aws_credentials_is_one_line(command: list[str], bare_aws, capsys):
    _no_aws_call(bare_aws)
    line = _fails(capsys, [*command, "--region", "eu-west-1"])
    assert line == (
        f"rental-analytics: {CHECKS} no AWS credentials were found; run `aws configure` (or `aws sso login`), "
        "or set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    )


def test_an_unknown_aws_profile_is_one_line(bare_aws, capsys):
    _no_aws_call(bare_aws)
    bare_aws.setenv("AWS_PROFILE", "nope")
    line = _fails(capsys, ["verify-deployment", "--stack", "dev", "--region", "eu-west-1"])
    assert line.startswith(f"rental-analytics: {CHECKS} AWS credentials: The config profile (nope) could not be found;")


def test_botocore_errors_met_later_are_one_line_too():
    from botocore.exceptions import ClientError, NoCredentialsError

    from rental_analytics.platform.errors import as_stage_error

    expired = ClientError({"Error": {"Code": "ExpiredToken", "Message": "The token has expired."}}, "DescribeStacks")
    assert (
        as_stage_error(expired, "reading the stack")
        .line()
        .startswith(
            "rental-analytics: [reading the stack] AWS refused the credentials (ExpiredToken): The token has expired; run"
        )
    )
    gone = ClientError(
        {"Error": {"Code": "ValidationError", "Message": "Stack with id dev does not exist"}}, "Describe"
    )
    assert (
        as_stage_error(gone, "x").line()
        == "rental-analytics: [x] Stack with id dev does not exist; check --stack and --region"
    )
    assert as_stage_error(NoCredentialsError(), "x").exit_code == 2


# --- the program itself -----------------------------------------------------------------------------------


def test_version_comes_from_the_package_metadata(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"rental-analytics {version('rental-analytics')}\n"


def test_an_unexpected_error_is_one_line_and_exit_1_with_the_traceback_under_debug(tmp_path, capsys, monkeypatch):
    from rental_analytics.car_rental import cli as car_rental_cli

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire\nsecond line")

    monkeypatch.setattr(car_rental_cli, "generate_car_rental", broken)
    argv = ["generate", "car-rental", "--output", str(tmp_path / "b")]
    line = _fails(capsys, argv, code=1)
    assert line == (
        "rental-analytics: [generate car-rental] unexpected RuntimeError: disk on fire; "
        "run again with --debug for the traceback, and report it"
    )
    assert main(["--debug", *argv]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):") and err.endswith(line + "\n")


def test_ctrl_c_outside_spark_exits_130(tmp_path, capsys, monkeypatch):
    from rental_analytics.car_rental import cli as car_rental_cli

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(car_rental_cli, "generate_car_rental", interrupted)
    line = _fails(capsys, ["generate", "car-rental", "--output", str(tmp_path / "b")], code=130)
    assert line == (
        "rental-analytics: [generate car-rental] interrupted (Ctrl-C); what it was writing may be half done: "
        "run the command again"
    )


STAGE_LINE = re.compile(r"^\[ *\d+\.\ds\] ")


@pytest.mark.spark
def test_ctrl_c_while_spark_runs_exits_130_with_one_line(tmp_path: Path):
    batch = tmp_path / "2024-06-01"
    assert main(["generate", "car-rental", "--output", str(batch), "--rentals", "20000"]) == 0
    command = [sys.executable, "-m", "rental_analytics.cli", "run", "car-rental", "--input", str(batch)]
    env = {**os.environ, "RENTAL_ANALYTICS_SPARK_MEMORY": "1g"}
    run = subprocess.Popen(
        [*command, "--output", str(tmp_path / "out")],
        cwd=ROOT,  # so that this worktree's package is the one imported
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(300, run.kill)  # a hung run fails the test instead of hanging it
    watchdog.start()
    try:
        assert run.stderr is not None
        seen = []
        for line in run.stderr:
            seen.append(line)
            if "reading the batch and applying the row rules" in line:  # the first stage Spark works in
                break
        else:
            pytest.fail("the run ended before Spark started: " + "".join(seen))
        run.send_signal(signal.SIGINT)
        rest = run.stderr.read()
        assert run.wait() == 130, "".join(seen) + rest
    finally:
        watchdog.cancel()

    assert "Traceback" not in rest and "Py4J" not in rest
    failure = [line for line in rest.splitlines() if not STAGE_LINE.match(line)]
    assert len(failure) == 1, rest
    assert re.fullmatch(
        r"rental-analytics: \[[^]]+\] interrupted \(Ctrl-C\); what it was writing may be half done: run the command again",
        failure[0],
    )


def test_a_reader_that_stops_early_gets_one_line_and_exit_1(tmp_path: Path):
    # `rental-analytics ... | head -1`: the pipe closes while the command still has lines to print.
    command = [sys.executable, "-m", "rental_analytics.cli", "generate", "car-rental", "--output", str(tmp_path / "b")]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([*command, "--rentals", "10"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()
    errors = process.stderr.read().decode()
    assert process.wait(timeout=60) == 1
    assert errors == (
        "rental-analytics: [generate car-rental] the program reading the output stopped before its end (a closed "
        "pipe); what was written to disk is kept; send the output to a file\n"
    )
    assert (tmp_path / "b" / "rental_transactions.csv").is_file()
