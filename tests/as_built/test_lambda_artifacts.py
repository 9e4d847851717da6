"""The Lambda functions as `sam build` builds them, run in a bare python3.12 against a moto server on loopback.

Each built handler is imported the way the Lambda runtime imports it (its folder and its layers on the path,
nothing else: `lambda_runtime.py`) and invoked with its sample event from `events/`, so a dependency that only
the test environment has fails here, as it would in AWS.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import threading
import urllib.request
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from io import BytesIO
from pathlib import Path
from typing import Any, ClassVar

import boto3
import pytest
import tomllib
from moto.server import ThreadedMotoServer
from moto.sns.models import sns_backends

from tests.as_built.conftest import BuiltFunction, interpreter
from tests.car_rental import sample_batch
from tests.repo import ROOT

EVENTS = ROOT / "events"
RUNNER = Path(__file__).with_name("lambda_runtime.py")
REGION, ACCOUNT = "us-east-1", "123456789012"
# Lambda allows 250 MiB for a function and its layers unzipped; this leaves room to grow, and to notice.
BUDGET_BYTES = 200 * 1024 * 1024
ENV = json.loads((EVENTS / "env.json").read_text())
DATA_BUCKET = ENV["ValidateUploadFunction"]["DATA_BUCKET"]
ARTIFACTS_BUCKET = "rental-analytics-artifacts-example"


def _free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    try:
        yield url
    finally:
        server.stop()


@pytest.fixture
def aws(moto_url: str) -> Iterator[dict[str, Any]]:
    """Clients of the moto server, on a state reset for each test."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST"), timeout=10).close()
    yield {
        name: boto3.client(name, endpoint_url=moto_url, region_name=REGION) for name in ("s3", "sns", "stepfunctions")
    }


class XRayDaemon:
    """A UDP socket where the X-Ray SDK sends its segments, as Lambda's daemon receives them."""

    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.settimeout(0.2)
        self.address = f"127.0.0.1:{self.socket.getsockname()[1]}"

    def documents(self) -> list[dict[str, Any]]:
        received = []
        while True:
            try:
                datagram = self.socket.recv(65536)
            except TimeoutError:
                return received
            _header, _, body = datagram.decode().partition("\n")
            received.append(json.loads(body))


def invoke(
    function: BuiltFunction, event: dict[str, Any], environment: dict[str, str], moto_url: str, tmp_path: Path
) -> dict[str, Any]:
    """Run the built handler once in a bare python3.12 and return the runtime's answer."""
    assert function.runtime == "python3.12"
    daemon = XRayDaemon()
    # The function's variables are the template's, with names of the moto stand-ins: a variable the handler
    # needs and the template does not set fails the cold start here too.
    missing = set(environment) - set(function.environment)
    assert not missing, f"the test sets variables the template does not give {function.logical_id}: {missing}"
    name = function.logical_id.rsplit("/", 1)[-1]
    env = {
        **{key: str(value) for key, value in function.environment.items() if isinstance(value, (str, int))},
        **environment,
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "LAMBDA_TASK_ROOT": str(function.code_dir),
        "_HANDLER": function.handler,
        "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        "AWS_XRAY_DAEMON_ADDRESS": daemon.address,
        "POWERTOOLS_METRICS_NAMESPACE": "RentalAnalyticsTests",
        "TZ": ":UTC",
    }
    event_file, spec_file, answer_file = tmp_path / "event.json", tmp_path / "spec.json", tmp_path / "answer.json"
    event_file.write_text(json.dumps(event))
    spec = {
        "name": name,
        "function_dir": str(function.code_dir),
        "layer_dirs": [str(layer / "python") for layer in function.layer_dirs],
        "handler": function.handler,
        "event_file": str(event_file),
        "answer_file": str(answer_file),
        "memory_mb": function.memory_mb,
        "timeout_seconds": function.timeout_seconds,
    }
    spec_file.write_text(json.dumps(spec))
    done = subprocess.run(
        [str(interpreter("3.12")), "-I", "-S", str(RUNNER), str(spec_file)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(answer_file.read_text())
    answer["logs"] = done.stdout
    answer["trace_documents"] = daemon.documents()
    assert answer["modules_from_elsewhere"] == [], "the built function imported modules from outside its path"
    assert answer["ok"], answer.get("trace")
    return answer


def _sent(topic_arn: str) -> list[tuple[str, str]]:
    topic = sns_backends[ACCOUNT][REGION].topics[topic_arn]
    return [(subject or "", message) for _, message, subject, *_ in topic.sent_notifications]


def test_each_function_with_its_layers_fits_the_budget(functions: dict[str, BuiltFunction]):
    sizes = {name: function.size_bytes() for name, function in functions.items()}
    assert set(sizes) == {"ShipCodeFunction", "CarRental/ValidateUploadFunction", "CarRental/PublishReportFunction"}
    over = {name: f"{size / 2**20:.1f} MiB" for name, size in sizes.items() if size >= BUDGET_BYTES}
    assert over == {}


def test_the_layer_installs_the_versions_the_project_pins():
    pinned = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    layer = re.search(r"^LAYER_REQUIREMENTS := (.+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert layer is not None
    for requirement in re.findall(r'"([^"]+)"', layer.group(1)):
        assert requirement in pinned, f"the layer's {requirement} is not what pyproject.toml pins"


def test_docs_list_what_the_layer_holds(functions: dict[str, BuiltFunction]):
    layer = functions["CarRental/ValidateUploadFunction"].layer_dirs[0] / "python"
    packages = {p.name for p in layer.iterdir() if p.is_dir() and not p.name.endswith(("dist-info", "__pycache__"))}
    deployment = (ROOT / "docs" / "deployment.md").read_text()
    assert {name for name in packages if f"`{name}`" not in deployment} == set()


def test_the_built_gate_admits_the_sample_batch_and_starts_one_run(
    functions: dict[str, BuiltFunction], aws: dict[str, Any], moto_url: str, tmp_path: Path
):
    aws["s3"].create_bucket(Bucket=DATA_BUCKET)
    aws["s3"].put_bucket_versioning(Bucket=DATA_BUCKET, VersioningConfiguration={"Status": "Enabled"})
    topic = aws["sns"].create_topic(Name="alerts")["TopicArn"]
    machine = aws["stepfunctions"].create_state_machine(
        name="car-rental",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/workflow",
    )["stateMachineArn"]
    environment = {"DATA_BUCKET": DATA_BUCKET, "STATE_MACHINE_ARN": machine, "ALERT_TOPIC_ARN": topic}
    gate = functions["CarRental/ValidateUploadFunction"]
    outcomes = []
    for dataset, text in sample_batch.files().items():
        event = json.loads((EVENTS / f"s3_put_{dataset}.json").read_text())
        s3_object = event["Records"][0]["s3"]["object"]
        put = aws["s3"].put_object(Bucket=DATA_BUCKET, Key=s3_object["key"], Body=text.encode())
        s3_object.update(versionId=put["VersionId"], eTag=put["ETag"].strip('"'), size=len(text))
        answer = invoke(gate, event, environment, moto_url, tmp_path)
        outcomes += answer["result"]["outcomes"]
        assert any(doc.get("name") == "## lambda_handler" for doc in answer["trace_documents"]), "no X-Ray trace"

    assert [o["status"] for o in outcomes] == ["accepted"] * 4
    executions = aws["stepfunctions"].list_executions(stateMachineArn=machine)["executions"]
    assert len(executions) == 1
    run_input = json.loads(aws["stepfunctions"].describe_execution(executionArn=executions[0]["executionArn"])["input"])
    assert run_input["batch_id"] == "2024-06-01" and sorted(run_input["files"]) == sorted(sample_batch.files())
    staged = aws["s3"].list_objects_v2(Bucket=DATA_BUCKET, Prefix="staged/2024-06-01/")["Contents"]
    assert {obj["Key"].rsplit("/", 1)[1] for obj in staged} >= {f"{d}.csv" for d in sample_batch.files()}


def test_the_built_gate_refuses_the_bad_key_sample_and_alerts(
    functions: dict[str, BuiltFunction], aws: dict[str, Any], moto_url: str, tmp_path: Path
):
    aws["s3"].create_bucket(Bucket=DATA_BUCKET)
    topic = aws["sns"].create_topic(Name="alerts")["TopicArn"]
    machine = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:car-rental"
    environment = {"DATA_BUCKET": DATA_BUCKET, "STATE_MACHINE_ARN": machine, "ALERT_TOPIC_ARN": topic}
    event = json.loads((EVENTS / "s3_put_bad_key.json").read_text())

    answer = invoke(functions["CarRental/ValidateUploadFunction"], event, environment, moto_url, tmp_path)

    [outcome] = answer["result"]["outcomes"]
    assert outcome["status"] == "bad_key"
    assert aws["s3"].get_object(Bucket=DATA_BUCKET, Key=outcome["report"])["ContentLength"] > 0
    assert [subject for subject, _ in _sent(topic)] == ["Rental analytics: upload ignored, bad key"]


def _report(
    functions: dict[str, BuiltFunction], aws: dict[str, Any], event: dict[str, Any], moto_url: str, tmp_path: Path
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Invoke the built report function; its answer and the summary.json it wrote."""
    topic = aws["sns"].create_topic(Name="warnings")["TopicArn"]
    environment = {"DATA_BUCKET": DATA_BUCKET, "WARNING_TOPIC_ARN": topic}
    answer = invoke(functions["CarRental/PublishReportFunction"], event, environment, moto_url, tmp_path)
    summary = aws["s3"].get_object(Bucket=DATA_BUCKET, Key=f"reports/{event['batch_id']}/summary.json")["Body"]
    return answer, json.loads(summary.read())


def test_the_built_report_function_writes_the_report_of_the_sample_event(
    functions: dict[str, BuiltFunction], aws: dict[str, Any], moto_url: str, tmp_path: Path
):
    event = json.loads((EVENTS / "publish_report.json").read_text())
    for bucket in {DATA_BUCKET, ARTIFACTS_BUCKET}:
        aws["s3"].create_bucket(Bucket=bucket)
    for item in event["insights"]:
        results_bucket, key = item["output"].removeprefix("s3://").split("/", 1)
        aws["s3"].put_object(Bucket=results_bucket, Key=key, Body=sample_batch.ATHENA_CSV[item["name"]].encode())
    # What the Spark step and the gate left for this batch.
    outcome = {"succeeded": True, "message": "4 of 5 rentals accepted", "valid_transactions": 4,
               "transaction_rows": 5, "rejected_by_reason": {"unknown_location": 1}}  # fmt: skip
    aws["s3"].put_object(Bucket=DATA_BUCKET, Key="reports/2024-06-01/job_outcome.json", Body=json.dumps(outcome))
    staged = event["input_path"].removeprefix(f"s3://{DATA_BUCKET}/")
    manifest = {
        "files": {"users": {"key": "raw/2024-06-01/users.csv", "verdict": {"file": "users.csv", "accepted": True}}}
    }
    aws["s3"].put_object(Bucket=DATA_BUCKET, Key=f"{staged}_manifest.json", Body=json.dumps(manifest))
    answer, summary = _report(functions, aws, event, moto_url, tmp_path)

    assert answer["result"]["subject"] == "Rental analytics: batch 2024-06-01 succeeded"
    assert (summary["batch_id"], summary["status"]) == ("2024-06-01", "succeeded")
    page = aws["s3"].get_object(Bucket=DATA_BUCKET, Key="reports/2024-06-01/report.html")["Body"].read()
    assert b"<svg" in page


class _CloudFormationResponses(BaseHTTPRequestHandler):
    """Where the custom resource answers CloudFormation (its pre-signed ResponseURL)."""

    received: ClassVar[list[dict[str, Any]]] = []

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return None


def test_the_built_code_shipper_ships_the_spark_side_and_answers_cloudformation(
    functions: dict[str, BuiltFunction], aws: dict[str, Any], moto_url: str, tmp_path: Path
):
    aws["s3"].create_bucket(Bucket=ARTIFACTS_BUCKET)
    responses = HTTPServer(("127.0.0.1", 0), _CloudFormationResponses)
    _CloudFormationResponses.received = []
    threading.Thread(target=responses.handle_request, daemon=True).start()
    event = json.loads((EVENTS / "ship_code_create.json").read_text())
    event["ResponseURL"] = f"http://127.0.0.1:{responses.server_address[1]}/response"

    invoke(functions["ShipCodeFunction"], event, {}, moto_url, tmp_path)
    responses.server_close()

    [reply] = _CloudFormationResponses.received
    assert reply["Status"] == "SUCCESS", reply.get("Reason")
    prefix = reply["Data"]["Prefix"].removeprefix(f"s3://{ARTIFACTS_BUCKET}/")
    keys = {obj["Key"] for obj in aws["s3"].list_objects_v2(Bucket=ARTIFACTS_BUCKET, Prefix=prefix)["Contents"]}
    assert f"{prefix}/car_rental_job.py" in keys and f"{prefix}/rental_analytics.zip" in keys
    assert reply["Data"]["CarRentalJobScript"] == f"s3://{ARTIFACTS_BUCKET}/{prefix}/car_rental_job.py"
    shipped = aws["s3"].get_object(Bucket=ARTIFACTS_BUCKET, Key=f"{prefix}/rental_analytics.zip")["Body"].read()
    names = zipfile.ZipFile(BytesIO(shipped)).namelist()
    assert (
        "rental_analytics/car_rental/job.py" in names
        and "rental_analytics/car_rental/insights/top_spending_users.sql" in names
    )


def test_the_built_report_function_writes_the_page_of_a_failed_batch(
    functions: dict[str, BuiltFunction], aws: dict[str, Any], moto_url: str, tmp_path: Path
):
    event = json.loads((EVENTS / "publish_failure_report.json").read_text())
    aws["s3"].create_bucket(Bucket=DATA_BUCKET)

    answer, summary = _report(functions, aws, event, moto_url, tmp_path)

    assert answer["result"]["subject"] == "Rental analytics: batch 2024-06-01 failed"
    assert (summary["status"], summary["failed_state"]) == ("failed", "Run the Spark job")
    assert aws["s3"].get_object(Bucket=DATA_BUCKET, Key="reports/2024-06-01/report.html")["ContentLength"] > 0
