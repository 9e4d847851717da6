"""The S3 upload gate under moto: verdicts, quarantine, alerts and exactly one workflow start per batch."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from rental_analytics.aws import AwsClients
from rental_analytics.config import ConfigError
from rental_analytics.upload import BadKey, GateSettings, Upload, admit_upload, execution_name, parse_upload_key
from tests import sample_batch
from tests.gate_corpus import CORPUS, Case
from tests.lambda_handlers import FakeContext, load_handler

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events"
BUCKET = json.loads((EVENTS / "s3_put_users.json").read_text())["Records"][0]["s3"]["bucket"]["name"]
BATCH = "2024-06-01"


@dataclass
class Stack:
    """The moto stand-ins for the resources the gate talks to."""

    aws: AwsClients
    settings: GateSettings
    alerts_queue: str

    def put(self, key: str, content: bytes) -> Upload:
        response = self.aws.s3.put_object(Bucket=BUCKET, Key=key, Body=content)
        return Upload(BUCKET, key, response.get("VersionId"), response["ETag"])

    def admit(self, upload: Upload) -> Any:
        return admit_upload(upload, self.settings, self.aws)

    def executions(self) -> list[dict[str, Any]]:
        listed = self.aws.stepfunctions.list_executions(stateMachineArn=self.settings.state_machine_arn)["executions"]
        return [self.aws.stepfunctions.describe_execution(executionArn=e["executionArn"]) for e in listed]

    def alerts(self) -> list[dict[str, str]]:
        sqs = boto3.client("sqs")
        messages = sqs.receive_message(QueueUrl=self.alerts_queue, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(m["Body"]) for m in messages]

    def body(self, key: str) -> bytes | None:
        try:
            return bytes(self.aws.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
        except self.aws.s3.exceptions.NoSuchKey:
            return None

    def put_batch(self, files: dict[str, str] | None = None) -> list[Upload]:
        files = files or sample_batch.files()
        return [self.put(f"raw/{BATCH}/{name}.csv", text.encode()) for name, text in files.items()]


@pytest.fixture
def stack() -> Iterator[Stack]:
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        topic = boto3.client("sns").create_topic(Name="alerts")["TopicArn"]
        sqs = boto3.client("sqs")
        queue_url = sqs.create_queue(QueueName="alerts")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        boto3.client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
        sfn = boto3.client("stepfunctions")
        machine = sfn.create_state_machine(
            name="car-rental-pipeline",
            definition=(ROOT / "statemachine" / "car_rental_pipeline.asl.json").read_text(),
            roleArn="arn:aws:iam::123456789012:role/pipeline",
        )["stateMachineArn"]
        aws = AwsClients(s3=s3, stepfunctions=sfn, sns=boto3.client("sns"))
        yield Stack(aws, GateSettings(BUCKET, machine, topic), queue_url)


def test_a_complete_batch_starts_one_execution_with_the_right_input(stack: Stack):
    uploads = stack.put_batch()
    outcomes = [stack.admit(upload) for upload in uploads]

    assert [o.status for o in outcomes] == ["accepted"] * 4
    assert [o.start_requested for o in outcomes] == [False, False, False, True]
    [execution] = stack.executions()
    assert execution["name"] == outcomes[-1].execution_name
    files = {
        u.key.split("/")[-1][: -len(".csv")]: {"key": u.key, "version_id": u.version_id, "etag": u.etag.strip('"')}
        for u in uploads
    }
    assert json.loads(execution["input"]) == {
        "batch_id": BATCH,
        "bucket": BUCKET,
        "input_prefix": f"raw/{BATCH}/",
        "files": files,
    }
    assert stack.alerts() == []


def test_the_same_event_three_times_starts_one_execution(stack: Stack):
    uploads = stack.put_batch()
    for upload in uploads[:3]:
        stack.admit(upload)
    outcomes = [stack.admit(uploads[3]) for _ in range(3)]

    assert [o.start_requested for o in outcomes] == [True, True, True]  # the repeats are no-ops
    assert len({o.execution_name for o in outcomes}) == 1
    assert len(stack.executions()) == 1


@pytest.mark.parametrize("attempt", range(5))
def test_two_last_files_landing_together_start_one_execution(stack: Stack, attempt: int):
    uploads = stack.put_batch()
    for upload in uploads[:2]:
        stack.admit(upload)
    together = threading.Barrier(2)
    outcomes: list[Any] = []

    def admit_after_barrier(upload: Upload) -> None:
        together.wait()
        outcomes.append(stack.admit(upload))

    threads = [threading.Thread(target=admit_after_barrier, args=(u,)) for u in uploads[2:]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(stack.executions()) == 1
    assert len({o.execution_name for o in outcomes if o.execution_name}) == 1


def test_reuploading_a_file_starts_a_new_execution(stack: Stack):
    for upload in stack.put_batch():
        stack.admit(upload)
    again = stack.put(f"raw/{BATCH}/users.csv", sample_batch.USERS.encode())
    outcome = stack.admit(again)

    assert outcome.start_requested
    assert len({e["name"] for e in stack.executions()}) == 2


def test_a_late_event_for_a_replaced_version_is_ignored(stack: Stack):
    first = stack.put(f"raw/{BATCH}/users.csv", b"user_id\n\n")
    stack.put(f"raw/{BATCH}/users.csv", sample_batch.USERS.encode())
    outcome = stack.admit(first)

    assert outcome.status == "superseded"
    assert stack.body(f"reports/{BATCH}/gate/users.json") is None


def test_a_rejected_reupload_withdraws_the_accepted_file(stack: Stack):
    uploads = stack.put_batch()
    for upload in uploads[:3]:
        stack.admit(upload)
    broken = stack.put(f"raw/{BATCH}/users.csv", b"first_name\nAma\n")
    assert stack.admit(broken).status == "rejected"
    outcome = stack.admit(uploads[3])

    assert stack.body(f"reports/{BATCH}/gate/users.json") is None
    assert (outcome.status, outcome.execution_name) == ("accepted", None)
    assert stack.executions() == []


def test_a_dataset_sent_twice_under_both_names_is_rejected(stack: Stack):
    stack.admit(stack.put(f"raw/{BATCH}/users.csv", sample_batch.USERS.encode()))
    outcome = stack.admit(stack.put(f"raw/{BATCH}/users.csv.gz", gzip.compress(sample_batch.USERS.encode())))

    assert (outcome.status, outcome.verdict.code) == ("rejected", "duplicate_dataset")
    assert stack.body(f"quarantine/{BATCH}/users.csv.gz") == gzip.compress(sample_batch.USERS.encode())


@pytest.mark.parametrize("case", CORPUS, ids=lambda c: c.label)
def test_every_corpus_file_gets_its_verdict_and_keeps_its_bytes(stack: Stack, case: Case):
    key = f"raw/{BATCH}/{case.name}"
    outcome = stack.admit(stack.put(key, case.content))

    if case.code is None:
        assert outcome.status == "accepted"
        marker = json.loads(stack.body(f"reports/{BATCH}/gate/{outcome.verdict.dataset}.json") or b"{}")
        assert (marker["verdict"]["rows"], marker["verdict"]["row_issues"]) == (case.rows, case.issues)
        assert stack.body(key) == case.content
        assert stack.alerts() == []
        return
    assert outcome.status == "rejected"
    assert stack.body(key) is None
    assert stack.body(f"quarantine/{BATCH}/{case.name}") == case.content
    report = json.loads(stack.body(f"quarantine/{BATCH}/{case.name}.report.json") or b"{}")
    assert (report["code"], report["line"], report["accepted"]) == (case.code, case.line, False)
    assert report["reason"] == outcome.reason
    [alert] = stack.alerts()
    assert key in alert["Subject"]
    assert outcome.reason in alert["Message"]


class ReadRecorder:
    """An S3 client that notes every object read, to show that a bad key is never opened."""

    def __init__(self, client: Any) -> None:
        self.client, self.reads = client, []

    def get_object(self, **kwargs: Any) -> Any:
        self.reads.append(kwargs["Key"])
        return self.client.get_object(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


@pytest.mark.parametrize(
    "key",
    [
        "raw/2024-06-01/..%2F..%2Fprocessed%2Frental_transactions.csv",
        "raw/../processed/rental_transactions.csv",
        "raw/2024-06-01/%252e%252e/users.csv",
        "raw//users.csv",
        "raw/2024-06-01//users.csv",
        "raw/2024-06-01/sub/users.csv",
        "raw/users.csv",
        "processed/2024-06-01/users.csv",
        "raw/-leading-dash/users.csv",
        "raw/2024-06-01/users.csv%00.txt",
        "raw/" + "b" * 300 + "/users.csv",
    ],
)
def test_keys_outside_the_contract_are_rejected_without_reading(stack: Stack, key: str):
    stack.aws.s3.put_object(Bucket=BUCKET, Key="raw/2024-06-01/users.csv", Body=b"user_id\nU1\n")
    recorder = ReadRecorder(stack.aws.s3)
    aws = AwsClients(recorder, stack.aws.stepfunctions, stack.aws.sns)
    outcome = admit_upload(Upload(BUCKET, key, "v1", "etag"), stack.settings, aws)

    assert outcome.status == "bad_key"
    assert recorder.reads == []
    [alert] = stack.alerts()
    assert "bad key" in alert["Subject"]
    report = json.loads(stack.body(outcome.details["report"]) or b"{}")
    assert report == {"bucket": BUCKET, "key": key, "reason": outcome.reason}


def test_an_unknown_dataset_is_quarantined_without_being_read(stack: Stack):
    upload = stack.put(f"raw/{BATCH}/payments.csv", b"whatever")
    recorder = ReadRecorder(stack.aws.s3)
    outcome = admit_upload(upload, stack.settings, AwsClients(recorder, stack.aws.stepfunctions, stack.aws.sns))

    assert (outcome.status, outcome.verdict.code) == ("rejected", "unknown_dataset")
    assert upload.key not in recorder.reads
    assert stack.body(f"quarantine/{BATCH}/payments.csv") == b"whatever"


def test_an_object_in_another_bucket_is_a_bad_key(stack: Stack):
    outcome = stack.admit(Upload("someone-elses-bucket", f"raw/{BATCH}/users.csv"))
    assert outcome.status == "bad_key"


@pytest.mark.parametrize(
    ("key", "batch_id", "file_name"),
    [
        ("raw/2024-06-01/users.csv", "2024-06-01", "users.csv"),
        ("raw/dt%3D2024-06-01/rental_transactions.csv.gz", "dt=2024-06-01", "rental_transactions.csv.gz"),
        ("raw/batch_7/notes+and+more.txt", "batch_7", "notes and more.txt"),
    ],
)
def test_keys_inside_the_contract_parse(key: str, batch_id: str, file_name: str):
    parsed = parse_upload_key(key)
    assert (parsed.batch_id, parsed.file_name, parsed.key) == (batch_id, file_name, f"raw/{batch_id}/{file_name}")


def test_a_bad_key_names_its_problem():
    with pytest.raises(BadKey, match=r"'\.\.'"):
        parse_upload_key("raw/a/..%2Fb/users.csv")


def test_execution_names_fit_step_functions_and_depend_on_versions():
    files = {"users": {"key": "raw/b/users.csv", "version_id": "v1", "etag": "e"}}
    name = execution_name("b" * 128, files)
    other = execution_name("b" * 128, {"users": {**files["users"], "version_id": "v2"}})
    assert len(name) <= 80 and name != other
    assert execution_name("b" * 128, files) == name


def test_settings_fail_fast_naming_what_is_missing():
    with pytest.raises(ConfigError, match="STATE_MACHINE_ARN, ALERT_TOPIC_ARN"):
        GateSettings.from_env({"DATA_BUCKET": "data"})


def test_the_handler_runs_the_sample_events(stack: Stack, monkeypatch: pytest.MonkeyPatch, capsys):
    app = load_handler(
        "validate_upload",
        monkeypatch,
        DATA_BUCKET=stack.settings.data_bucket,
        STATE_MACHINE_ARN=stack.settings.state_machine_arn,
        ALERT_TOPIC_ARN=stack.settings.alert_topic_arn,
    )
    responses = []
    for name, text in sample_batch.files().items():
        event = json.loads((EVENTS / f"s3_put_{name}.json").read_text())
        s3_object = event["Records"][0]["s3"]["object"]
        upload = stack.put(s3_object["key"], text.encode())
        s3_object.update(versionId=upload.version_id, eTag=upload.etag.strip('"'))
        responses.append(app.lambda_handler(event, FakeContext()))
    bad = app.lambda_handler(json.loads((EVENTS / "s3_put_bad_key.json").read_text()), FakeContext())

    assert [r["outcomes"][0]["status"] for r in responses] == ["accepted"] * 4
    assert responses[-1]["outcomes"][0]["start_requested"] is True
    assert len(stack.executions()) == 1
    assert bad["outcomes"][0]["status"] == "bad_key"
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    judged = [entry for entry in logged if entry.get("message") == "upload judged"]
    assert len(judged) == 5 and all(entry["correlation_id"] == "C3D13FE58DE4C810" for entry in judged)
    emitted = [entry for entry in logged if "_aws" in entry]

    def total(metric: str) -> float:
        values = [entry.get(metric, 0) for entry in emitted]
        return sum(sum(v) if isinstance(v, list) else v for v in values)

    assert (total("FilesAccepted"), total("FilesRejected")) == (4, 1)
    assert total("RowsChecked") == sum(text.count("\n") - 1 for text in sample_batch.files().values())
