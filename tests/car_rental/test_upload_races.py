"""The upload gate under races and faults: slow old versions, repeated deliveries, a failure in each AWS call."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from rental_analytics.car_rental.gate.admission import GateSettings, Upload, UploadOutcome, admit_upload
from rental_analytics.platform.aws import AwsClients
from tests.car_rental import sample_batch
from tests.car_rental.gate_stack import BATCH, BUCKET, Stack, moto_stack

BAD_USERS = b"first_name\nAma\n"  # no user_id: rejected as a whole


class Interleaved:
    """A client whose first matching call of one operation lets something else happen first: a slow caller."""

    def __init__(self, client: Any, operation: str, meanwhile: Callable[[], Any], when: Callable[[dict], bool]):
        self._client, self._operation, self._meanwhile, self._when = client, operation, meanwhile, when
        self.happened = False

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name != self._operation:
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            if not self.happened and self._when(kwargs):
                self.happened = True
                self._meanwhile()
            return attribute(*args, **kwargs)

        return call


def _slow_s3(stack: Stack, operation: str, meanwhile: Callable[[], Any], when: Callable[[dict], bool]) -> AwsClients:
    slow = Interleaved(stack.aws.s3, operation, meanwhile, when)
    return AwsClients(slow, stack.aws.stepfunctions, stack.aws.sns)


def _by_name(uploads: list[Upload]) -> dict[str, Upload]:
    return {u.key.rsplit("/", 1)[1].removesuffix(".csv"): u for u in uploads}


def _started_files(stack: Stack) -> list[dict[str, Any]]:
    return [json.loads(e["input"])["files"] for e in stack.executions()]


def _is_marker(kwargs: dict) -> bool:
    return "/gate/" in kwargs.get("Key", "")


def test_a_slow_rejection_of_an_old_version_leaves_the_newer_accepted_one(stack: Stack):
    files = _by_name(stack.put_batch())
    stack.admit(files["locations"])
    stack.admit(files["vehicles"])
    old = stack.put(f"raw/{BATCH}/users.csv", BAD_USERS)
    newer: list[Upload] = []

    def upload_a_good_version() -> None:
        newer.append(stack.put(f"raw/{BATCH}/users.csv", sample_batch.USERS.encode()))
        assert stack.admit(newer[0]).status == "accepted"

    aws = _slow_s3(stack, "delete_object", upload_a_good_version, lambda kwargs: kwargs["Key"].endswith("users.csv"))
    assert admit_upload(old, stack.settings, aws).status == "rejected"
    last = stack.admit(files["rental_transactions"])

    assert last.start_requested
    [started] = _started_files(stack)
    assert started["users"]["version_id"] == newer[0].version_id


def test_a_slow_acceptance_of_an_old_version_does_not_hide_the_newer_one(stack: Stack):
    files = _by_name(stack.put_batch())
    stack.admit(files["locations"])
    stack.admit(files["vehicles"])
    newer: list[Upload] = []

    def upload_a_newer_version() -> None:
        newer.append(stack.put(f"raw/{BATCH}/users.csv", sample_batch.USERS.encode()))
        assert stack.admit(newer[0]).status == "accepted"

    aws = _slow_s3(stack, "put_object", upload_a_newer_version, _is_marker)
    assert admit_upload(files["users"], stack.settings, aws).status == "accepted"
    stack.admit(files["rental_transactions"])

    [started] = _started_files(stack)
    assert started["users"]["version_id"] == newer[0].version_id


def test_a_slow_acceptance_of_an_old_version_does_not_outlive_a_newer_rejection(stack: Stack):
    files = _by_name(stack.put_batch())
    for name in ("locations", "vehicles", "rental_transactions"):
        stack.admit(files[name])

    def upload_a_bad_version() -> None:
        bad = stack.put(f"raw/{BATCH}/users.csv", BAD_USERS)
        assert stack.admit(bad).status == "rejected"

    aws = _slow_s3(stack, "put_object", upload_a_bad_version, _is_marker)
    admit_upload(files["users"], stack.settings, aws)

    # The bad version is gone and the old one is current again, but the uploader meant to replace it.
    assert stack.executions() == []
    [alert] = stack.alerts()
    assert "users.csv" in alert["Subject"]
    corrected = stack.put(f"raw/{BATCH}/users.csv", sample_batch.USERS.encode())
    assert stack.admit(corrected).start_requested
    [started] = _started_files(stack)
    assert started["users"]["version_id"] == corrected.version_id


def test_the_run_reads_the_accepted_versions_not_a_later_upload(stack: Stack):
    uploads = stack.put_batch()
    for upload in uploads:
        stack.admit(upload)
    stack.put(f"raw/{BATCH}/users.csv", b"user_id\nnot judged yet\n")

    [execution] = stack.executions()
    staged = json.loads(execution["input"])["input_path"].removeprefix(f"s3://{BUCKET}/")
    for name, text in sample_batch.files().items():
        assert stack.body(f"{staged}{name}.csv") == text.encode()
    manifest = json.loads(stack.body(f"{staged}_manifest.json") or b"{}")
    assert {d: f["verdict"]["rows"] for d, f in manifest["files"].items()} == {
        name: text.count("\n") - 1 for name, text in sample_batch.files().items()
    }


def test_two_rejected_uploads_of_one_name_are_both_kept(stack: Stack):
    first = stack.put(f"raw/{BATCH}/users.csv", BAD_USERS)
    stack.admit(first)
    second = stack.put(f"raw/{BATCH}/users.csv", BAD_USERS + b"Kofi\n")
    stack.admit(second)

    assert stack.quarantined(first) != stack.quarantined(second)
    assert stack.body(stack.quarantined(first)) == BAD_USERS
    assert stack.body(stack.quarantined(second)) == BAD_USERS + b"Kofi\n"


def test_an_event_for_an_object_that_is_not_there_says_not_found(stack: Stack):
    outcome = stack.admit(Upload(BUCKET, f"raw/{BATCH}/users.csv", None, "0123"))
    assert (outcome.status, outcome.reason) == (
        "not_found",
        "this version of the object is not in the bucket (quarantined or deleted)",
    )


@pytest.mark.parametrize("attempt", range(3))
def test_concurrent_deliveries_of_one_rejection_send_one_alert(stack: Stack, attempt: int):
    # The twin must wait longer than the first delivery takes from claiming the report to marking it alerted:
    # on a loaded machine that took more than the stack's 0.2 s. The wait ends as soon as the alert is marked.
    stack = dataclasses.replace(stack, settings=dataclasses.replace(stack.settings, alert_wait_seconds=10.0))
    bad = stack.put(f"raw/{BATCH}/users.csv", BAD_USERS)
    together = threading.Barrier(2)
    outcomes: list[UploadOutcome] = []

    def deliver() -> None:
        together.wait()
        outcomes.append(stack.admit(bad))

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(o.status for o in outcomes) in (["rejected", "rejected"], ["not_found", "rejected"])
    assert len(stack.alerts()) == 1
    assert stack.body(stack.quarantined(bad)) == BAD_USERS


class InjectedFault:
    """Counts every AWS call the gate makes and fails the one whose turn it is, as a throttled API would."""

    def __init__(self, fail_at: int | None) -> None:
        self.fail_at, self.calls = fail_at, []

    def wrap(self, client: Any, service: str) -> Any:
        fault = self

        class Faulty:
            def __getattr__(self, name: str) -> Any:
                attribute = getattr(client, name)
                if not callable(attribute) or name.startswith("_"):
                    return attribute

                def call(*args: Any, **kwargs: Any) -> Any:
                    fault.calls.append(f"{service}.{name}")
                    if len(fault.calls) - 1 == fault.fail_at:
                        raise ClientError({"Error": {"Code": "InternalError", "Message": "injected"}}, name)
                    return attribute(*args, **kwargs)

                return call

        return Faulty()

    def clients(self, aws: AwsClients) -> AwsClients:
        return AwsClients(self.wrap(aws.s3, "s3"), self.wrap(aws.stepfunctions, "sfn"), self.wrap(aws.sns, "sns"))


def _admit_as_lambda_retries(upload: Upload, settings: GateSettings, aws: AwsClients) -> UploadOutcome:
    """Lambda runs a failed asynchronous invocation twice more with the same event."""
    for attempt in range(3):
        try:
            return admit_upload(upload, settings, aws)
        except ClientError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _last_file_of_a_batch(stack: Stack) -> Upload:
    files = _by_name(stack.put_batch())
    for name in ("locations", "vehicles", "users"):
        stack.admit(files[name])
    return files["rental_transactions"]


def _bad_file(stack: Stack) -> Upload:
    return stack.put(f"raw/{BATCH}/users.csv", BAD_USERS)


def _calls_of_a_clean_run(prepare: Callable[[Stack], Upload]) -> list[str]:
    with mock_aws():
        stack = moto_stack()
        upload = prepare(stack)
        fault = InjectedFault(None)
        admit_upload(upload, stack.settings, fault.clients(stack.aws))
        return fault.calls


def test_a_failure_in_any_call_of_the_accepting_path_still_starts_exactly_one_run():
    calls = _calls_of_a_clean_run(_last_file_of_a_batch)
    assert "sfn.start_execution" in calls
    for index, call in enumerate(calls):
        with mock_aws():
            stack = moto_stack()
            upload = _last_file_of_a_batch(stack)
            outcome = _admit_as_lambda_retries(upload, stack.settings, InjectedFault(index).clients(stack.aws))

            assert outcome.status == "accepted", call
            [execution] = stack.executions()
            run_input = json.loads(execution["input"])
            staged = run_input["input_path"].removeprefix(f"s3://{BUCKET}/")
            assert stack.body(f"{staged}_manifest.json") is not None, call
            assert run_input["files"]["rental_transactions"]["version_id"] == upload.version_id, call
            assert stack.alerts() == [], call


def test_a_failure_in_any_call_of_the_rejecting_path_still_alerts_and_keeps_the_file():
    calls = _calls_of_a_clean_run(_bad_file)
    assert {"sns.publish", "s3.copy", "s3.delete_object"} <= set(calls)
    for index, call in enumerate(calls):
        with mock_aws():
            stack = moto_stack()
            upload = _bad_file(stack)
            outcome = _admit_as_lambda_retries(upload, stack.settings, InjectedFault(index).clients(stack.aws))

            assert outcome.status in ("rejected", "not_found"), call
            assert 1 <= len(stack.alerts()) <= 2, call  # a repeat is tolerable; silence is not
            assert stack.body(stack.quarantined(upload)) == BAD_USERS, call
            assert stack.body(upload.key) is None, call
            assert stack.executions() == [], call
