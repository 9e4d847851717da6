"""The S3 upload gate under moto: verdicts, quarantine, alerts and exactly one workflow start per batch."""

from __future__ import annotations

import dataclasses
import gzip
import json
import threading
from typing import Any

import pytest

from rental_analytics.car_rental.gate.admission import (
    BadKey,
    GateSettings,
    Upload,
    admit_upload,
    execution_name,
    parse_upload_key,
    withdrawn_key,
)
from rental_analytics.car_rental.sizing import ClusterSizing
from rental_analytics.platform.aws import AwsClients
from rental_analytics.platform.config import ConfigError
from tests.car_rental import sample_batch
from tests.car_rental.gate_corpus import CORPUS, Case
from tests.car_rental.gate_stack import BATCH, BUCKET, EVENTS, Stack, version_of
from tests.lambda_handlers import FakeContext


def test_a_complete_batch_starts_one_execution_with_the_right_input(stack: Stack):
    uploads = stack.put_batch()
    outcomes = [stack.admit(upload) for upload in uploads]

    assert [o.status for o in outcomes] == ["accepted"] * 4
    assert [o.start_requested for o in outcomes] == [False, False, False, True]
    [execution] = stack.executions()
    assert execution["name"] == outcomes[-1].execution_name
    rows = {name: text.count("\n") - 1 for name, text in sample_batch.files().items()}
    sizes = {name: len(text.encode()) for name, text in sample_batch.files().items()}
    files = {
        name: {
            "key": u.key,
            "version_id": u.version_id,
            "etag": u.etag.strip('"'),
            "rows": rows[name],
            "bytes": sizes[name],
        }
        for name, u in zip(sample_batch.files(), uploads)
    }
    assert json.loads(execution["input"]) == {
        "batch_id": BATCH,
        "bucket": BUCKET,
        "input_path": f"s3://{BUCKET}/staged/{BATCH}/{execution['name']}/",
        "files": files,
        "core_capacity": {"on_demand_units": 1, "spot_units": 0},  # a small batch, the smallest cluster
    }
    assert stack.alerts() == []


def test_the_run_input_sizes_the_cluster_by_the_rule_from_the_bytes_the_gate_read(stack: Stack):
    batch_bytes = sum(len(text.encode()) for text in sample_batch.files().values())
    sizing = ClusterSizing(bytes_per_unit=batch_bytes // 4 + 1, min_units=1, max_units=10, on_demand_units=2)
    stack.settings = dataclasses.replace(stack.settings, sizing=sizing)
    for upload in stack.put_batch():
        stack.admit(upload)

    [execution] = stack.executions()
    # Three units hold less than the batch, four more: 4 units, 2 On-Demand and 2 on Spot.
    assert json.loads(execution["input"])["core_capacity"] == {"on_demand_units": 2, "spot_units": 2}


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
    assert stack.marker(first, "users") is None


def test_a_rejected_reupload_withdraws_the_accepted_file(stack: Stack):
    uploads = stack.put_batch()
    for upload in uploads[:3]:
        stack.admit(upload)
    broken = stack.put(f"raw/{BATCH}/users.csv", b"first_name\nAma\n")
    assert stack.admit(broken).status == "rejected"
    outcome = stack.admit(uploads[3])

    users = next(u for u in uploads if u.key.endswith("/users.csv"))
    assert stack.body(withdrawn_key(parse_upload_key(users.key), "users", version_of(users))) is not None
    assert (outcome.status, outcome.execution_name) == ("accepted", None)
    assert stack.executions() == []


def test_a_dataset_sent_twice_under_both_names_is_rejected(stack: Stack):
    stack.admit(stack.put(f"raw/{BATCH}/users.csv", sample_batch.USERS.encode()))
    # Compressed once: gzip stamps the current second into its header, so two calls can differ.
    compressed = gzip.compress(sample_batch.USERS.encode())
    second = stack.put(f"raw/{BATCH}/users.csv.gz", compressed)
    outcome = stack.admit(second)

    assert (outcome.status, outcome.verdict.code) == ("rejected", "duplicate_dataset")
    assert stack.body(stack.quarantined(second)) == compressed


@pytest.mark.parametrize("case", CORPUS, ids=lambda c: c.label)
def test_every_corpus_file_gets_its_verdict_and_keeps_its_bytes(stack: Stack, case: Case):
    key = f"raw/{BATCH}/{case.name}"
    upload = stack.put(key, case.content)
    outcome = stack.admit(upload)

    if case.code is None:
        assert outcome.status == "accepted"
        marker = stack.marker(upload, outcome.verdict.dataset) or {}
        assert (marker["verdict"]["rows"], marker["verdict"]["row_issues"]) == (case.rows, case.issues)
        assert stack.body(key) == case.content
        assert stack.alerts() == []
        return
    assert outcome.status == "rejected"
    assert stack.body(key) is None
    assert stack.body(stack.quarantined(upload)) == case.content
    report = json.loads(stack.body(f"{stack.quarantined(upload)}.report.json") or b"{}")
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
        "raw/2024-06-01/../users.csv",
        "raw/2024-06-01/./users.csv",
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
    assert stack.body(stack.quarantined(upload)) == b"whatever"


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


class ContextNearItsEnd(FakeContext):
    """An invocation with no time left for checking once the reserve is kept."""

    def get_remaining_time_in_millis(self) -> int:
        return int(GateSettings.reserve_seconds * 1000)


def test_a_file_the_handler_has_no_time_to_check_gets_a_verdict_and_an_alert(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
):
    # A timeout would give no verdict, retry the same work twice and end in the failed-events queue.
    app = stack.gate_handler(monkeypatch)
    event = json.loads((EVENTS / "s3_put_users.json").read_text())
    s3_object = event["Records"][0]["s3"]["object"]
    upload = stack.put(s3_object["key"], sample_batch.files()["users"].encode())
    s3_object.update(versionId=upload.version_id, eTag=upload.etag.strip('"'))
    [outcome] = app.lambda_handler(event, ContextNearItsEnd())["outcomes"]

    assert (outcome["status"], outcome["verdict"]["code"]) == ("rejected", "too_slow_to_check")
    assert stack.body(stack.quarantined(upload)) == sample_batch.files()["users"].encode()
    [alert] = stack.alerts()
    assert "ran out of time" in alert["Message"]


def test_a_batch_id_with_dots_inside_runs_through_the_handler(stack: Stack, monkeypatch: pytest.MonkeyPatch):
    # `..` is a path segment only when it is the whole segment; the contract's batch pattern allows dots inside.
    app = stack.gate_handler(monkeypatch)
    batch = "2024-06-01..2024-06-07"
    statuses = []
    for name, text in sample_batch.files().items():
        event = json.loads((EVENTS / f"s3_put_{name}.json").read_text())
        s3_object = event["Records"][0]["s3"]["object"]
        upload = stack.put(f"raw/{batch}/{name}.csv", text.encode())
        s3_object.update(key=f"raw/{batch}/{name}.csv", versionId=upload.version_id, eTag=upload.etag.strip('"'))
        statuses.append(app.lambda_handler(event, FakeContext())["outcomes"][0]["status"])

    assert statuses == ["accepted"] * 4
    [execution] = stack.executions()
    assert execution["name"].startswith(batch)


def test_the_handler_runs_the_sample_events(stack: Stack, monkeypatch: pytest.MonkeyPatch, capsys):
    app = stack.gate_handler(monkeypatch)
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
