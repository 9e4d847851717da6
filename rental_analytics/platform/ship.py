"""Shipping the Spark side to the artifacts bucket, once per version of the code, from a stack custom resource."""

from __future__ import annotations

import hashlib
import io
import json
import urllib.request
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable

# A fixed timestamp for every zip entry: the same code gives the same bytes, hence the same version.
ZIP_TIME = (2020, 1, 1, 0, 0, 0)
CORE_SUFFIXES = (".py", ".sql", ".typed")


def core_zip(package: Path) -> bytes:
    """The core package as a zip for `spark-submit --py-files`, byte-identical for identical sources."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in package.rglob("*") if p.is_file() and p.suffix in CORE_SUFFIXES):
            entry = zipfile.ZipInfo(f"{package.name}/{path.relative_to(package).as_posix()}", ZIP_TIME)
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, path.read_bytes())
    return buffer.getvalue()


def code_files(root: Path) -> dict[str, bytes]:
    """What EMR and Glue run: the entry scripts and the zipped core package."""
    files = {path.name: path.read_bytes() for path in sorted((root / "spark_scripts").glob("*.py"))}
    files["rental_analytics.zip"] = core_zip(root / "rental_analytics")
    return files


def ship(s3: Any, bucket: str, files: Mapping[str, bytes]) -> dict[str, str]:
    """Upload under `code/<content hash>/` and return where each piece is; new code never overwrites old."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    version = digest.hexdigest()[:16]
    prefix = f"s3://{bucket}/code/{version}"
    for name, body in files.items():
        s3.put_object(Bucket=bucket, Key=f"code/{version}/{name}", Body=body)
    shipped = {"Version": version, "Prefix": prefix, "CorePackage": f"{prefix}/rental_analytics.zip"}
    for name in files:
        if name.endswith(".py") and not name.startswith("_"):
            # car_rental_job.py -> CarRentalJobScript: the attribute the template reads with !GetAtt.
            shipped["".join(part.capitalize() for part in name[: -len(".py")].split("_")) + "Script"] = (
                f"{prefix}/{name}"
            )
    return shipped


Responder = Callable[[str, Mapping[str, Any]], None]


def put_response(url: str, body: Mapping[str, Any]) -> None:
    """Answer CloudFormation on the pre-signed URL of the request."""
    data = json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="PUT", headers={"Content-Type": ""})
    with urllib.request.urlopen(request, timeout=30):
        pass


def handle_custom_resource(
    event: Mapping[str, Any], shipper: Callable[[str], dict[str, str]], respond: Responder
) -> None:
    """Create and Update ship the code; Delete keeps it, since older stack versions may still point at it."""
    reply: dict[str, Any] = {
        "StackId": event["StackId"],
        "RequestId": event["RequestId"],
        "LogicalResourceId": event["LogicalResourceId"],
        "PhysicalResourceId": event.get("PhysicalResourceId", "shipped-code"),
        "Status": "SUCCESS",
    }
    try:
        if event["RequestType"] in ("Create", "Update"):
            shipped = shipper(event["ResourceProperties"]["Bucket"])
            reply.update(PhysicalResourceId=shipped["Prefix"], Data=shipped)
    except Exception as error:  # every failure must reach CloudFormation, or the stack waits an hour
        reply.update(Status="FAILED", Reason=f"{type(error).__name__}: {error}"[:500])
    respond(event["ResponseURL"], reply)
