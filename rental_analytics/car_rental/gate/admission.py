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

from rental_analytics.car_rental.contract import (
    BATCH_ID_PATTERN,
    DATASETS,
    MANIFEST_NAME,
    dataset_for_file_name,
    quarantine_folder,
)
from rental_analytics.car_rental.gate.files import FileVerdict, validate_stream
from rental_analytics.car_rental.sizing import ClusterSizing, batch_bytes
from rental_analytics.platform.aws import AwsClients, read_text
from rental_analytics.platform.config import require_env
from rental_analytics.platform.text import printable

RAW_PREFIX = "raw/"
# The accepted versions of a batch, copied for one execution; the job reads these and nothing else.
STAGED_PREFIX = "staged/"
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
    # How long a repeated delivery of a rejection waits for its twin's alert before sending one itself.
    alert_wait_seconds: float = 10.0
    # The cluster's core capacity for the batch the gate starts (the workflow language cannot divide).
    sizing: ClusterSizing = field(default_factory=ClusterSizing)
    # The time an invocation keeps, once a file is judged, to quarantine it (a managed copy of up to 20 GiB)
    # and send the alert; the checks have the rest (`check_deadline`).
    reserve_seconds: float = 120.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> GateSettings:
        """Read DATA_BUCKET, STATE_MACHINE_ARN and ALERT_TOPIC_ARN (failing on any missing) and CORE_* (sizing)."""
        bucket, state_machine, topic = require_env(environ, "DATA_BUCKET", "STATE_MACHINE_ARN", "ALERT_TOPIC_ARN")
        return cls(bucket, state_machine, topic, sizing=ClusterSizing.from_env(environ))

    def check_deadline(self, seconds_left: float) -> float:
        """The `time.monotonic()` by which a file must be judged, for an invocation with `seconds_left`.

        A file not judged by then is rejected as `too_slow_to_check`: a verdict, a quarantine and an alert,
        where a timeout would retry the same work twice and leave the event in the failed-events queue.
        """
        return time.monotonic() + seconds_left - self.reserve_seconds


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


@dataclass(frozen=True)
class ObjectVersion:
    """One version of an object: what the gate judges, notes and hands to the workflow."""

    key: str
    version_id: str | None
    etag: str

    @property
    def token(self) -> str:
        """The version id, or the ETag in a bucket without versioning."""
        return self.version_id or self.etag

    def as_dict(self) -> dict[str, Any]:
        """The JSON form kept in markers, reports and the execution input."""
        return {"key": self.key, "version_id": self.version_id, "etag": self.etag}


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
    parts = key.split("/")
    # A dot segment climbs or stays; dots inside a name (a batch id `2024-06-01..2024-06-07`) are just text.
    if any(part in (".", "..") for part in parts):
        raise BadKey("the key holds a '.' or '..' path segment")
    if not key.startswith(RAW_PREFIX):
        raise BadKey(f"the key is not under {RAW_PREFIX}")
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
    status: str  # accepted, rejected, bad_key, superseded (a newer upload came), not_found (gone)
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


def _version_tag(version: ObjectVersion) -> str:
    # S3 version ids may hold `/` and `+`: a digest makes a key part of any of them.
    return hashlib.sha256(version.token.encode()).hexdigest()[:20]


def _gate_key(target: UploadKey, dataset: str, version: ObjectVersion, suffix: str) -> str:
    # The gate's state lives in the data bucket, one object per version: S3 is strongly consistent, and a
    # state that belongs to a version can never be overwritten or deleted by the judging of another version.
    return f"reports/{target.batch_id}/gate/{dataset}/{target.file_name}@{_version_tag(version)}.{suffix}"


def marker_key(target: UploadKey, dataset: str, version: ObjectVersion) -> str:
    """Where the gate notes that this version of the file was accepted, with its verdict."""
    return _gate_key(target, dataset, version, "accepted.json")


def withdrawn_key(target: UploadKey, dataset: str, version: ObjectVersion) -> str:
    """Where the gate notes that a newer upload of the same key was rejected, so this version no longer counts."""
    return _gate_key(target, dataset, version, "withdrawn.json")


def quarantine_key(target: UploadKey, version: ObjectVersion) -> str:
    """Where a rejected version goes, bytes unchanged: one folder per name and version (`quarantine_folder`).

    The folder digests the name too: in a bucket without versioning two files of the same bytes share an ETag.
    """
    return f"{quarantine_folder(target.batch_id, target.file_name, version.token)}/{target.file_name}"


def _current(aws: AwsClients, bucket: str, key: str, version_id: str | None = None) -> ObjectVersion | None:
    try:
        head = aws.s3.head_object(Bucket=bucket, Key=key, **({"VersionId": version_id} if version_id else {}))
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code")
        # A version id S3 cannot parse answers 400: no such version either.
        if code in ("404", "NoSuchKey", "NotFound", "NoSuchVersion") or (version_id and code == "400"):
            return None
        raise
    return ObjectVersion(key, head.get("VersionId"), head["ETag"].strip('"'))


def _read_json(aws: AwsClients, bucket: str, key: str) -> dict[str, Any] | None:
    text = read_text(aws.s3, bucket, key)
    return None if text is None else dict(json.loads(text))


def _json_body(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, indent=2, sort_keys=True).encode()


def _put_json(aws: AwsClients, bucket: str, key: str, document: Mapping[str, Any]) -> None:
    aws.s3.put_object(Bucket=bucket, Key=key, Body=_json_body(document), ContentType="application/json")


def _create_json(aws: AwsClients, bucket: str, key: str, document: Mapping[str, Any]) -> bool:
    """Write the object only if there is none yet; False when another writer was first."""
    try:
        aws.s3.put_object(
            Bucket=bucket, Key=key, Body=_json_body(document), ContentType="application/json", IfNoneMatch="*"
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("PreconditionFailed", "ConditionalRequestConflict"):
            return False
        raise
    return True


def _alert(aws: AwsClients, settings: GateSettings, subject: str, lines: list[str]) -> None:
    ascii_subject = "".join(c if 32 <= ord(c) < 127 else "?" for c in subject)
    aws.sns.publish(
        TopicArn=settings.alert_topic_arn,
        Subject=ascii_subject[:SNS_SUBJECT_CHARS],
        Message="\n".join(printable(line) for line in lines),  # a key may hold a line break
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


def _twin_alerted(aws: AwsClients, bucket: str, report_key: str, wait_seconds: float) -> bool:
    """Whether another delivery of this rejection has sent its alert, waiting a little for it to do so."""
    deadline = time.monotonic() + wait_seconds
    while True:
        report = _read_json(aws, bucket, report_key)
        if report and report.get("alerted"):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(min(0.2, wait_seconds))


def _quarantine(
    target: UploadKey,
    dataset: str | None,
    version: ObjectVersion,
    verdict: FileVerdict,
    aws: AwsClients,
    settings: GateSettings,
) -> dict[str, Any]:
    bucket = settings.data_bucket
    moved_to = quarantine_key(target, version)
    report_key = f"{moved_to}.report.json"
    report = {"source": version.as_dict(), **verdict.as_dict()}
    # The alert goes out before anything moves: if a later step fails, the retry still knows to send it.
    # The report is the claim that keeps concurrent deliveries of one rejection to one alert.
    first = _create_json(aws, bucket, report_key, {**report, "alerted": False})
    if first or not _twin_alerted(aws, bucket, report_key, settings.alert_wait_seconds):
        where = f" at line {verdict.line}" if verdict.line else ""
        _alert(
            aws,
            settings,
            f"Rental analytics: rejected {target.key}",
            [
                f"The upload gate rejected s3://{bucket}/{target.key}{where}.",
                f"Reason: {verdict.reason}.",
                f"The file, byte for byte, is now s3://{bucket}/{moved_to}",
                f"Report: s3://{bucket}/{report_key}",
                f"Batch {target.batch_id} runs once a corrected file is uploaded.",
            ],
        )
        _put_json(aws, bucket, report_key, {**report, "alerted": True})
    try:
        aws.s3.copy(_copy_source(bucket, version), bucket, moved_to)  # managed copy: multipart above 5 GB
    except ClientError:
        if _current(aws, bucket, moved_to) is None:
            raise  # a twin delivery that moved the version first leaves its copy; otherwise nothing is safe yet
    if dataset:
        _withdraw_older_versions(target, dataset, version, aws, bucket)
    # Delete this version only: a newer upload of the same key, arriving meanwhile, must survive.
    aws.s3.delete_object(
        Bucket=bucket, Key=target.key, **({"VersionId": version.version_id} if version.version_id else {})
    )
    return {"quarantined_to": moved_to, "report": report_key}


def _withdraw_older_versions(
    target: UploadKey, dataset: str, rejected: ObjectVersion, aws: AwsClients, bucket: str
) -> None:
    """A rejected re-upload replaces the versions before it: once it is removed they must not count again.

    Only versions older than the rejected one are withdrawn, so a slow rejection never touches a newer upload.
    """
    if not rejected.version_id:
        return
    older = False
    for page in aws.s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=target.key):
        for entry in page.get("Versions", []):  # newest first, as S3 lists a key's versions
            if entry["Key"] != target.key:
                continue
            if older:
                earlier = ObjectVersion(target.key, entry["VersionId"], entry["ETag"].strip('"'))
                _put_json(aws, bucket, withdrawn_key(target, dataset, earlier), {"withdrawn_by": rejected.as_dict()})
            older = older or entry["VersionId"] == rejected.version_id


def _duplicate_dataset(target: UploadKey, dataset: str, aws: AwsClients, settings: GateSettings) -> str | None:
    """The other file name of the same dataset, when it is in the batch too (`x.csv` beside `x.csv.gz`)."""
    for name in DATASETS[dataset].file_names:
        if name != target.file_name and _current(aws, settings.data_bucket, f"{RAW_PREFIX}{target.batch_id}/{name}"):
            return name
    return None


def _copy_source(bucket: str, version: ObjectVersion) -> dict[str, str]:
    source = {"Bucket": bucket, "Key": version.key}
    if version.version_id:
        source["VersionId"] = version.version_id
    return source


def execution_name(batch_id: str, files: Mapping[str, Mapping[str, Any]]) -> str:
    """A name that the same batch with the same object versions always gets.

    S3 delivers events at least once: the name is what makes a repeated or concurrent start a no-op.
    """
    identity = [batch_id] + [f"{d}={f['key']}@{f.get('version_id') or f['etag']}" for d, f in sorted(files.items())]
    digest = hashlib.sha256("\n".join(identity).encode()).hexdigest()
    prefix = batch_id[: MAX_EXECUTION_NAME - 33]
    return f"{prefix}-{digest[:32]}"


def _accepted_current_file(batch_id: str, dataset: str, aws: AwsClients, bucket: str) -> dict[str, Any] | None:
    """A dataset's current file and verdict, when the gate accepted that version and nothing withdrew it."""
    present = [
        version
        for version in (
            _current(aws, bucket, f"{RAW_PREFIX}{batch_id}/{name}") for name in DATASETS[dataset].file_names
        )
        if version is not None
    ]
    if len(present) != 1:
        return None  # missing, or both names of one dataset: that upload's own verdict says so
    version = present[0]
    target = UploadKey(batch_id, version.key.rsplit("/", 1)[1])
    marker = _read_json(aws, bucket, marker_key(target, dataset, version))
    if marker is None or read_text(aws.s3, bucket, withdrawn_key(target, dataset, version)) is not None:
        return None
    return {**version.as_dict(), "verdict": marker["verdict"]}


def _stage(batch_id: str, name: str, files: dict[str, dict[str, Any]], aws: AwsClients, bucket: str) -> str:
    """Copy exactly the accepted versions to a folder of their own, so the job never reads a later upload."""
    prefix = f"{STAGED_PREFIX}{batch_id}/{name}/"
    manifest = f"{prefix}{MANIFEST_NAME}"
    if read_text(aws.s3, bucket, manifest) is None:  # the manifest goes last: when it is there, so is the rest
        for file in files.values():
            version = ObjectVersion(file["key"], file.get("version_id"), file["etag"])
            extra = {} if version.version_id else {"ExtraArgs": {"CopySourceIfMatch": version.etag}}
            aws.s3.copy(_copy_source(bucket, version), bucket, prefix + version.key.rsplit("/", 1)[1], **extra)
        _put_json(aws, bucket, manifest, {"batch_id": batch_id, "files": files})
    return f"s3://{bucket}/{prefix}"


def _without_verdict(file: Mapping[str, Any]) -> dict[str, Any]:
    verdict = file["verdict"]
    return {
        **{k: v for k, v in file.items() if k != "verdict"},
        "rows": verdict["rows"],
        "bytes": verdict.get("bytes_read", 0),
    }


def _start_if_complete(batch_id: str, aws: AwsClients, settings: GateSettings) -> tuple[str | None, bool]:
    bucket = settings.data_bucket
    files: dict[str, dict[str, Any]] = {}
    for dataset in DATASETS:
        accepted = _accepted_current_file(batch_id, dataset, aws, bucket)
        if accepted is None:
            return None, False
        files[dataset] = accepted
    name = execution_name(batch_id, files)
    summaries = {dataset: _without_verdict(file) for dataset, file in files.items()}
    run_input = {
        "batch_id": batch_id,
        "bucket": bucket,
        "input_path": _stage(batch_id, name, files, aws, bucket),
        # The verdicts stay in the manifest: an execution's input is limited to 256 KiB.
        "files": summaries,
        "core_capacity": settings.sizing.capacity(batch_bytes(summaries)).as_dict(),
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


def _judge(
    target: UploadKey,
    dataset: str | None,
    version: ObjectVersion,
    aws: AwsClients,
    settings: GateSettings,
    deadline: float | None,
) -> tuple[FileVerdict, bool]:
    """The verdict on this version, and whether an earlier delivery already noted it as accepted."""
    bucket = settings.data_bucket
    if dataset is None:
        return validate_stream(target.key, io.BytesIO()), False  # the name alone decides; the bytes are not read
    marker = _read_json(aws, bucket, marker_key(target, dataset, version))
    if marker:
        return FileVerdict.from_dict(marker["verdict"]), True  # a repeated delivery: judged already
    report = _read_json(aws, bucket, f"{quarantine_key(target, version)}.report.json")
    if report:
        return FileVerdict.from_dict(report), False  # a retry of a rejection that did not finish
    body = aws.s3.get_object(Bucket=bucket, Key=target.key, **_version_of(version))["Body"]
    verdict = validate_stream(target.key, body, deadline=deadline)
    other = _duplicate_dataset(target, dataset, aws, settings) if verdict.accepted else None
    if other:
        verdict = verdict.rejected_as(
            "duplicate_dataset", f"the batch already has {other} for {dataset}: send one file per dataset"
        )
    return verdict, False


def admit_upload(
    upload: Upload, settings: GateSettings, aws: AwsClients, deadline: float | None = None
) -> UploadOutcome:
    """Judge one uploaded object and, when its batch is complete and accepted, start the workflow once.

    `deadline` (`GateSettings.check_deadline`) bounds the checks of the file's bytes.
    """
    started = time.monotonic()
    try:
        if upload.bucket != settings.data_bucket:
            raise BadKey(f"the object is in bucket {upload.bucket!r}, not the data bucket")
        target = parse_upload_key(upload.key)
    except BadKey as bad:
        return _reject_bad_key(upload, str(bad), aws, settings)
    version = _current(aws, settings.data_bucket, target.key, upload.version_id)
    current = version if not upload.version_id else _current(aws, settings.data_bucket, target.key)
    if version is None:
        return UploadOutcome(
            target.key, "not_found", "this version of the object is not in the bucket (quarantined or deleted)"
        )
    replaced = not upload.version_id and upload.etag and version.etag != upload.etag.strip('"')
    if replaced or current != version:
        return UploadOutcome(target.key, "superseded", "a later upload or a delete has replaced this object")
    dataset = dataset_for_file_name(target.file_name)
    verdict, noted = _judge(target, dataset.name if dataset else None, version, aws, settings, deadline)
    if not verdict.accepted:
        details = _quarantine(target, dataset.name if dataset else None, version, verdict, aws, settings)
        return UploadOutcome(
            target.key, "rejected", verdict.reason, verdict, seconds=time.monotonic() - started, details=details
        )
    assert dataset is not None
    if not noted:
        document = {**version.as_dict(), "verdict": verdict.as_dict()}
        _put_json(aws, settings.data_bucket, marker_key(target, dataset.name, version), document)
    name, requested = _start_if_complete(target.batch_id, aws, settings)
    return UploadOutcome(
        target.key,
        "accepted",
        verdict=verdict,
        execution_name=name,
        start_requested=requested,
        seconds=time.monotonic() - started,
    )


def _version_of(version: ObjectVersion) -> dict[str, str]:
    # Read exactly the version that was judged current, even if another upload lands while we read.
    if version.version_id:
        return {"VersionId": version.version_id}
    return {"IfMatch": version.etag}
