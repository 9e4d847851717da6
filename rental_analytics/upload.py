"""The S3 upload gate: judge each object dropped under raw/, quarantine rejects, start one run per complete batch."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

from botocore.exceptions import ClientError

from rental_analytics.aws import AwsClients, read_text
from rental_analytics.config import require_env
from rental_analytics.contract import BATCH_ID_PATTERN, DATASETS, dataset_for_file_name
from rental_analytics.gate import FileVerdict, validate_stream

RAW_PREFIX = "raw/"
# Longer than any key the contract allows (a 128-character batch id and the longest file name).
MAX_KEY_CHARS = 200
# Step Functions allows 80 characters and no `/`, `%`, `:`, spaces or brackets; batch ids never hold those.
MAX_EXECUTION_NAME = 80
SNS_SUBJECT_CHARS = 100


@dataclass(frozen=True)
class GateSettings:
    """What the gate needs to know about its stack; every name comes from the template."""

    data_bucket: str
    state_machine_arn: str
    alert_topic_arn: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> GateSettings:
        """Read DATA_BUCKET, STATE_MACHINE_ARN and ALERT_TOPIC_ARN; fail naming any that is missing."""
        bucket, state_machine, topic = require_env(environ, "DATA_BUCKET", "STATE_MACHINE_ARN", "ALERT_TOPIC_ARN")
        return cls(bucket, state_machine, topic)


@dataclass(frozen=True)
class Upload:
    """One object-created notification, as S3 sends it (the key is URL-encoded)."""

    bucket: str
    key: str
    version_id: str | None = None
    etag: str | None = None

    @classmethod
    def from_record(cls, record: Any) -> Upload:
        """From a parsed S3 notification record (Powertools' `S3RecordModel`)."""
        s3_object = record.s3.object
        return cls(record.s3.bucket.name, s3_object.key, s3_object.versionId, s3_object.eTag)


class BadKey(ValueError):
    """The key is not `raw/<batch_id>/<file>`: the object is not read, moved or trusted."""


@dataclass(frozen=True)
class UploadKey:
    """A key the gate accepts the shape of; the file name may still name no dataset."""

    batch_id: str
    file_name: str

    @property
    def key(self) -> str:
        """The object's key in the bucket."""
        return f"{RAW_PREFIX}{self.batch_id}/{self.file_name}"

    @property
    def quarantine_key(self) -> str:
        """Where a rejected file goes, bytes unchanged."""
        return f"quarantine/{self.batch_id}/{self.file_name}"


def parse_upload_key(encoded_key: str) -> UploadKey:
    """Decode an event's key once and accept only `raw/<batch_id>/<file>`, as the contract's section 1 says."""
    if len(encoded_key) > 3 * MAX_KEY_CHARS:
        raise BadKey(f"the key is longer than {MAX_KEY_CHARS} characters")
    key = unquote_plus(encoded_key)
    if len(key) > MAX_KEY_CHARS:
        raise BadKey(f"the key is longer than {MAX_KEY_CHARS} characters")
    if "%" in key:
        raise BadKey("the key is URL-encoded more than once")
    if re.search(r"[\x00-\x1f\x7f\\]", key):
        raise BadKey("the key holds control characters or backslashes")
    if ".." in key:
        raise BadKey("the key holds '..'")
    if not key.startswith(RAW_PREFIX):
        raise BadKey(f"the key is not under {RAW_PREFIX}")
    parts = key.split("/")
    if any(not part for part in parts):
        raise BadKey("the key has an empty folder or file name")
    if len(parts) != 3:
        raise BadKey("the key must be raw/<batch_id>/<file name>, one folder deep")
    if not BATCH_ID_PATTERN.fullmatch(parts[1]):
        raise BadKey(f"the batch id must match {BATCH_ID_PATTERN.pattern}")
    return UploadKey(parts[1], parts[2])


@dataclass(frozen=True)
class UploadOutcome:
    """What the gate did with one notification."""

    key: str
    status: str  # accepted, rejected, bad_key, superseded (a newer upload or a move came after this event)
    reason: str | None = None
    verdict: FileVerdict | None = None
    execution_name: str | None = None
    # True when StartExecution succeeded; Step Functions answers a repeat of a running start the same way.
    start_requested: bool = False
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form for the handler's response and the logs."""
        return {
            "key": self.key,
            "status": self.status,
            "reason": self.reason,
            "verdict": self.verdict.as_dict() if self.verdict else None,
            "execution_name": self.execution_name,
            "start_requested": self.start_requested,
            "seconds": round(self.seconds, 3),
            **self.details,
        }

    def metrics(self) -> list[tuple[str, str, float]]:
        """(name, unit, value) for CloudWatch: files accepted and rejected, rows, bytes, latency, starts."""
        judged = self.status in ("accepted", "rejected", "bad_key")
        values = [
            ("FilesAccepted", "Count", float(self.status == "accepted")),
            ("FilesRejected", "Count", float(self.status in ("rejected", "bad_key"))),
            ("ExecutionStartRequests", "Count", float(self.start_requested)),
        ]
        if judged:
            values.append(("ValidationLatency", "Milliseconds", self.seconds * 1000))
        if self.verdict:
            values += [
                ("RowsChecked", "Count", float(self.verdict.rows)),
                ("RowsBreakingRules", "Count", float(sum(self.verdict.row_issues.values()))),
                ("BytesChecked", "Bytes", float(self.verdict.bytes_read)),
            ]
        return values


def _marker_key(batch_id: str, dataset: str) -> str:
    # The accepted-file state lives in the data bucket: S3 is strongly consistent, and no table to run.
    return f"reports/{batch_id}/gate/{dataset}.json"


def _current(aws: AwsClients, bucket: str, key: str) -> dict[str, Any] | None:
    try:
        head = aws.s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
    return {"key": key, "version_id": head.get("VersionId"), "etag": head["ETag"].strip('"')}


def _same_object(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    if a["key"] != b["key"]:
        return False
    if a.get("version_id") and b.get("version_id"):
        return bool(a["version_id"] == b["version_id"])
    return bool(a["etag"] == b["etag"])


def _read_json(aws: AwsClients, bucket: str, key: str) -> dict[str, Any] | None:
    text = read_text(aws.s3, bucket, key)
    return None if text is None else dict(json.loads(text))


def _put_json(aws: AwsClients, bucket: str, key: str, document: Mapping[str, Any]) -> None:
    aws.s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=json.dumps(document, indent=2, sort_keys=True).encode(),
        ContentType="application/json",
    )


def _alert(aws: AwsClients, settings: GateSettings, subject: str, lines: list[str]) -> None:
    printable = "".join(c if 32 <= ord(c) < 127 else "?" for c in subject)
    aws.sns.publish(
        TopicArn=settings.alert_topic_arn,
        Subject=printable[:SNS_SUBJECT_CHARS],
        Message="\n".join(lines),
    )


def _reject_bad_key(upload: Upload, reason: str, aws: AwsClients, settings: GateSettings) -> UploadOutcome:
    # The object stays where it is: a key built to escape its prefix is not one to copy anywhere.
    digest = hashlib.sha256(upload.key.encode()).hexdigest()[:16]
    report_key = f"quarantine/_bad_keys/{digest}.report.json"
    _put_json(aws, settings.data_bucket, report_key, {"bucket": upload.bucket, "key": upload.key, "reason": reason})
    _alert(
        aws,
        settings,
        "Rental analytics: upload ignored, bad key",
        [
            f"An object was written with a key the upload gate does not accept: {upload.key!r}",
            f"Reason: {reason}.",
            "Files must be written as raw/<batch_id>/<dataset>.csv or .csv.gz. The object was not read or moved.",
            f"Report: s3://{settings.data_bucket}/{report_key}",
        ],
    )
    return UploadOutcome(upload.key, "bad_key", reason, details={"report": report_key})


def _quarantine(
    target: UploadKey, source: Mapping[str, Any], verdict: FileVerdict, aws: AwsClients, settings: GateSettings
) -> dict[str, Any]:
    bucket = settings.data_bucket
    copy_source = {"Bucket": bucket, "Key": target.key}
    if source.get("version_id"):
        copy_source["VersionId"] = source["version_id"]
    aws.s3.copy(copy_source, bucket, target.quarantine_key)  # managed copy: multipart above 5 GB
    report_key = f"{target.quarantine_key}.report.json"
    _put_json(aws, bucket, report_key, {"source": dict(source), **verdict.as_dict()})
    if verdict.dataset:
        _withdraw_acceptance(target, verdict.dataset, aws, bucket)
    # Delete this version only: a newer upload of the same key, arriving meanwhile, must survive.
    delete = {"Bucket": bucket, "Key": target.key}
    if source.get("version_id"):
        delete["VersionId"] = source["version_id"]
    aws.s3.delete_object(**delete)
    where = f" at line {verdict.line}" if verdict.line else ""
    _alert(
        aws,
        settings,
        f"Rental analytics: rejected {target.key}",
        [
            f"The upload gate rejected s3://{bucket}/{target.key}{where}.",
            f"Reason: {verdict.reason}.",
            f"The file, byte for byte, is now s3://{bucket}/{target.quarantine_key}",
            f"Report: s3://{bucket}/{report_key}",
            f"Batch {target.batch_id} runs once a corrected file is uploaded.",
        ],
    )
    return {"quarantined_to": target.quarantine_key, "report": report_key}


def _withdraw_acceptance(target: UploadKey, dataset: str, aws: AwsClients, bucket: str) -> None:
    """A rejected re-upload replaces the file that was accepted: the batch is no longer complete."""
    marker_key = _marker_key(target.batch_id, dataset)
    marker = _read_json(aws, bucket, marker_key)
    if marker and marker["key"] == target.key:
        aws.s3.delete_object(Bucket=bucket, Key=marker_key)


def _duplicate_dataset(target: UploadKey, dataset: str, aws: AwsClients, settings: GateSettings) -> str | None:
    """The other file name of the same dataset, when it is in the batch too (`x.csv` beside `x.csv.gz`)."""
    for name in DATASETS[dataset].file_names:
        if name != target.file_name and _current(aws, settings.data_bucket, f"{RAW_PREFIX}{target.batch_id}/{name}"):
            return name
    return None


def execution_name(batch_id: str, files: Mapping[str, Mapping[str, Any]]) -> str:
    """A name that the same batch with the same object versions always gets.

    S3 delivers events at least once: the name is what makes a repeated or concurrent start a no-op.
    """
    identity = [batch_id] + [f"{d}={f['key']}@{f.get('version_id') or f['etag']}" for d, f in sorted(files.items())]
    digest = hashlib.sha256("\n".join(identity).encode()).hexdigest()
    prefix = batch_id[: MAX_EXECUTION_NAME - 33]
    return f"{prefix}-{digest[:32]}"


def _start_if_complete(batch_id: str, aws: AwsClients, settings: GateSettings) -> tuple[str | None, bool]:
    files: dict[str, dict[str, Any]] = {}
    for dataset in DATASETS:
        marker = _read_json(aws, settings.data_bucket, _marker_key(batch_id, dataset))
        if marker is None:
            return None, False
        current = _current(aws, settings.data_bucket, marker["key"])
        if current is None or not _same_object(current, marker):
            return None, False  # replaced or removed since it was accepted: its own event decides
        files[dataset] = {"key": marker["key"], "version_id": marker.get("version_id"), "etag": marker["etag"]}
    name = execution_name(batch_id, files)
    run_input = {
        "batch_id": batch_id,
        "bucket": settings.data_bucket,
        "input_prefix": f"{RAW_PREFIX}{batch_id}/",
        "files": files,
    }
    try:
        aws.stepfunctions.start_execution(
            stateMachineArn=settings.state_machine_arn,
            name=name,
            input=json.dumps(run_input, sort_keys=True),
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ExecutionAlreadyExists":
            return name, False
        raise
    return name, True


def admit_upload(upload: Upload, settings: GateSettings, aws: AwsClients) -> UploadOutcome:
    """Judge one uploaded object and, when its batch is complete and accepted, start the workflow once."""
    started = time.monotonic()
    try:
        if upload.bucket != settings.data_bucket:
            raise BadKey(f"the object is in bucket {upload.bucket!r}, not the data bucket")
        target = parse_upload_key(upload.key)
    except BadKey as bad:
        return _reject_bad_key(upload, str(bad), aws, settings)
    current = _current(aws, settings.data_bucket, target.key)
    event_object = {"key": target.key, "version_id": upload.version_id, "etag": (upload.etag or "").strip('"')}
    if current is None or ((upload.version_id or upload.etag) and not _same_object(current, event_object)):
        return UploadOutcome(target.key, "superseded", "a later upload or the gate itself has replaced this object")
    dataset = dataset_for_file_name(target.file_name)
    marker_key = _marker_key(target.batch_id, dataset.name) if dataset else ""
    marker = _read_json(aws, settings.data_bucket, marker_key) if dataset else None
    if marker and _same_object(marker, current):
        verdict = FileVerdict.from_dict(marker["verdict"])  # a repeated delivery: judged already
    elif dataset is None:
        verdict = validate_stream(target.key, io.BytesIO())  # the name alone decides; the bytes are not read
    else:
        body = aws.s3.get_object(Bucket=settings.data_bucket, Key=target.key, **_version_of(current))["Body"]
        verdict = validate_stream(target.key, body)
        other = _duplicate_dataset(target, dataset.name, aws, settings) if verdict.accepted else None
        if other:
            verdict = verdict.rejected_as(
                "duplicate_dataset", f"the batch already has {other} for {dataset.name}: send one file per dataset"
            )
    if not verdict.accepted:
        details = _quarantine(target, current, verdict, aws, settings)
        return UploadOutcome(
            target.key, "rejected", verdict.reason, verdict, seconds=time.monotonic() - started, details=details
        )
    assert dataset is not None
    _put_json(aws, settings.data_bucket, marker_key, {**current, "verdict": verdict.as_dict()})
    name, requested = _start_if_complete(target.batch_id, aws, settings)
    return UploadOutcome(
        target.key,
        "accepted",
        verdict=verdict,
        execution_name=name,
        start_requested=requested,
        seconds=time.monotonic() - started,
    )


def _version_of(current: Mapping[str, Any]) -> dict[str, str]:
    # Read exactly the object that was judged current, even if another upload lands while we read.
    if current.get("version_id"):
        return {"VersionId": current["version_id"]}
    return {"IfMatch": current["etag"]}
