"""The EMR step and the Glue jobs as shipped: what the built ShipCode function uploads, run by spark-submit.

Each runs in the Python of its runtime (3.9 for EMR 7.x, 3.11 for Glue 5.0) with nothing on its path but the
shipped zip, the entry scripts, and pyspark with py4j as the runtime provides them: a module the code needs and
the runtime lacks fails here as it would on the cluster.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import py4j
import pyarrow.parquet as pq
import pyspark
import pytest

from rental_analytics.apartments.generate import MarketplaceOptions, generate_marketplace
from rental_analytics.car_rental.gate.files import validate_folder
from rental_analytics.car_rental.job import BatchJob, held_to_the_gate, run_batch
from rental_analytics.cli import main as cli
from rental_analytics.platform.ship import code_files
from tests.apartments.test_warehouse import rows, target  # noqa: F401 (target: a fixture)
from tests.as_built.conftest import interpreter
from tests.repo import ROOT

pytestmark = [pytest.mark.spark, pytest.mark.e2e]

JDBC_JARS = [Path("/usr/share/java/mariadb-java-client.jar"), Path("/usr/share/java/postgresql.jar")]
# Spark on the test machine instead of YARN: small, and without the UI's port.
LOCAL_SPARK = [
    *("--master", "local[2]", "--driver-memory", "1g"),
    *("--conf", "spark.ui.enabled=false", "--conf", "spark.log.level=WARN"),
]


@pytest.fixture(scope="module")
def shipped(build: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The files the built ShipCode function uploads to `code/<version>/`, written to a folder."""
    folder = tmp_path_factory.mktemp("shipped")
    for name, body in code_files(build / "ShipCodeFunction").items():
        (folder / name).write_bytes(body)
    return folder


def runtime(version: str, tmp: Path) -> dict[str, str]:
    """The environment of a spark-submit whose Python is `version` holding only pyspark and py4j.

    The interpreter starts without its site-packages (`-S`, through a wrapper, since Spark starts the Python
    processes itself); its path is a folder of links to the tests' pyspark and py4j, the versions EMR 7.x and
    Glue 5.0 ship (Spark 3.5), which are pure Python.
    """
    provided = tmp / f"python{version}-provided"
    provided.mkdir()
    for package in (pyspark, py4j):
        (provided / package.__name__).symlink_to(Path(package.__file__).parent)
    wrapper = tmp / f"python{version}"
    wrapper.write_text(f'#!/bin/sh\nexec "{interpreter(version)}" -S "$@"\n')
    wrapper.chmod(0o755)
    spark_home = Path(pyspark.__file__).parent
    return {
        "PATH": f"{spark_home / 'bin'}:/usr/bin:/bin",
        "HOME": str(tmp),
        "SPARK_HOME": str(spark_home),
        "PYSPARK_PYTHON": str(wrapper),
        "PYSPARK_DRIVER_PYTHON": str(wrapper),
        "PYTHONPATH": str(provided),
        "PYTHONNOUSERSITE": "1",
        "TZ": "UTC",
        "SPARK_LOCAL_IP": "127.0.0.1",
        **({"JAVA_HOME": os.environ["JAVA_HOME"]} if "JAVA_HOME" in os.environ else {}),
    }


def spark_submit(arguments: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["spark-submit", *arguments], env=env, cwd=cwd, capture_output=True, text=True, timeout=600, check=False
    )


def step_arguments() -> list[str]:
    """The spark-submit arguments of the workflow's EMR step, as its ASL builds them (placeholders unfilled)."""
    definition = json.loads((ROOT / "statemachine" / "car_rental_pipeline.asl.json").read_text())
    step = definition["States"]["Run the Spark job"]["Parameters"]["Step"]["HadoopJarStep"]
    call = re.fullmatch(r"States\.Array\((.*)\)", step["Args.$"])
    assert call is not None, step["Args.$"]
    return [quoted or path for quoted, path in re.findall(r"'([^']*)'|(\$\.\w+)", call.group(1))]


def tables(root: Path) -> dict[str, list[str]]:
    """Every parquet table under processed/ and analytics/, as sorted rows of text."""
    found = {}
    for folder in sorted([*(root / "processed").iterdir(), *(root / "analytics").iterdir()]):
        table = pq.read_table(folder, partitioning="hive")
        columns = sorted(table.column_names)
        found[str(folder.relative_to(root))] = sorted(repr([str(r[c]) for c in columns]) for r in table.to_pylist())
    return found


def test_the_emr_step_as_shipped_runs_a_batch_on_python_3_9_as_the_tests_session_does(
    spark, shipped: Path, tmp_path: Path
):
    batch = tmp_path / "2024-06-01"
    assert cli(["generate", "car-rental", "--output", str(batch), "--rentals", "300", "--bad-share", "0.002"]) == 0
    verdict = validate_folder(batch)
    verdicts = {file.dataset: file.as_dict() for file in verdict.files if file.dataset}
    # The gate's manifest, as the upload gate stages it beside the accepted files.
    (batch / "_manifest.json").write_text(json.dumps({"files": {d: {"verdict": v} for d, v in verdicts.items()}}))
    filled = {
        "${CorePackage}": str(shipped / "rental_analytics.zip"),
        "${JobScript}": str(shipped / "car_rental_job.py"),
        "$.input_path": str(batch),
        "s3://${DataBucket}": str(tmp_path / "emr"),
        "$.batch_id": batch.name,
        "${MaxRejectRate}": "0.05",
    }
    arguments = [filled.get(argument, argument) for argument in step_arguments()]
    assert arguments[:3] == ["spark-submit", "--deploy-mode", "cluster"]
    done = spark_submit([*LOCAL_SPARK, *arguments[3:]], runtime("3.9", tmp_path), tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-4000:]

    expected = held_to_the_gate(BatchJob(str(batch), str(tmp_path / "here"), batch.name, 0.05), verdicts)
    assert run_batch(spark, expected).succeeded
    assert tables(tmp_path / "emr") == tables(tmp_path / "here")


# Runs each Glue entry script as Glue does (`__main__`, with Glue's own arguments beside the job's), one after
# the other in one driver, so that the five jobs pay for one JVM. Standard library only: it runs before the zip.
GLUE_DRIVER = """
import json, runpy, sys
codes = []
for script, arguments in json.loads(sys.argv[1]):
    sys.argv = [script, *arguments, "--JOB_NAME", script, "--job-bookmark-option", "job-bookmark-disable"]
    try:
        runpy.run_path(script, run_name="__main__")
        codes.append(0)
    except SystemExit as ended:
        codes.append(ended.code if isinstance(ended.code, int) else 1)
    if codes[-1] != 0:
        break
print("EXIT CODES " + json.dumps(codes))
"""


@pytest.mark.databases
def test_the_glue_jobs_as_shipped_load_a_date_on_python_3_11(
    source,
    target,  # noqa: F811
    shipped: Path,
    tmp_path: Path,
):
    generate_marketplace(source, MarketplaceOptions(apartments=30))
    day = ["--output", str(tmp_path / "data"), "--load-date", "2024-06-02"]
    warehouse = ["--warehouse-url", str(target), "--dialect", "postgresql"]
    jobs = [
        ("apartments_extract.py", [*day, "--mysql-url", str(source), "--mysql-driver", "mariadb"]),
        ("apartments_quality.py", [*day, "--run-id", "as-built"]),
        ("apartments_transform.py", day),
        ("apartments_load.py", [*day, *warehouse]),
        ("apartments_kpis.py", [*day, *warehouse]),
    ]
    assert {name for name, _ in jobs} == {p.name for p in shipped.glob("apartments_*.py")}, "a Glue job is untested"
    (tmp_path / "glue_driver.py").write_text(GLUE_DRIVER)
    for name, _ in jobs:
        shutil.copy(shipped / name, tmp_path / name)
    submit = [
        *LOCAL_SPARK,
        "--jars",
        ",".join(map(str, JDBC_JARS)),
        "--py-files",
        str(shipped / "rental_analytics.zip"),
    ]
    done = spark_submit([*submit, "glue_driver.py", json.dumps(jobs)], runtime("3.11", tmp_path), tmp_path)

    codes = re.search(r"^EXIT CODES (.*)$", done.stdout, re.MULTILINE)
    assert done.returncode == 0 and codes is not None, done.stdout[-2000:] + done.stderr[-4000:]
    assert json.loads(codes.group(1)) == [0] * len(jobs), done.stdout[-3000:]
    tables_in = "SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema = 'analytics'"
    loaded = {
        table: rows(target, f"SELECT count(*) FROM {schema}.{table}")[0][0] for schema, table in rows(target, tables_in)
    }
    assert loaded.get("fact_bookings", 0) > 0 and loaded.get("dim_apartments", 0) > 0, loaded
    kpi_tables = [table for table in loaded if table.startswith("kpi_")]
    assert kpi_tables and all(loaded[table] > 0 for table in kpi_tables), loaded
