"""Code shipping: the content-versioned upload of the Spark side and the custom resource around it."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import pytest

from rental_analytics.platform.ship import code_files, core_zip, handle_custom_resource, ship
from tests.repo import ROOT


def test_code_is_shipped_under_a_content_version(s3):
    files = code_files(ROOT)
    first = ship(s3, "artifacts", files)
    again = ship(s3, "artifacts", code_files(ROOT))
    changed = ship(s3, "artifacts", {**files, "car_rental_job.py": files["car_rental_job.py"] + b"\n# changed\n"})

    assert first == again and first["Version"] != changed["Version"]
    key = first["CarRentalJobScript"].removeprefix("s3://artifacts/")
    assert (
        s3.get_object(Bucket="artifacts", Key=key)["Body"].read()
        == (ROOT / "spark_scripts/car_rental_job.py").read_bytes()
    )
    names = zipfile.ZipFile(io.BytesIO(files["rental_analytics.zip"])).namelist()
    assert (
        "rental_analytics/car_rental/job.py" in names
        and "rental_analytics/car_rental/insights/daily_revenue_trend.sql" in names
    )
    assert core_zip(ROOT / "rental_analytics") == files["rental_analytics.zip"]


def _request(kind: str) -> dict[str, Any]:
    return {"RequestType": kind, "StackId": "stack", "RequestId": "r1", "LogicalResourceId": "ShippedCode",
            "ResponseURL": "https://cloudformation.invalid/response", "ResourceProperties": {"Bucket": "artifacts"},
            "PhysicalResourceId": "s3://artifacts/code/old"}  # fmt: skip


def test_the_custom_resource_answers_cloudformation_every_time(s3):
    answers: list[dict[str, Any]] = []

    def respond(url: str, body: Any) -> None:
        answers.append({"url": url, **body})

    handle_custom_resource(_request("Create"), lambda bucket: ship(s3, bucket, code_files(ROOT)), respond)
    handle_custom_resource(_request("Delete"), lambda bucket: pytest.fail("delete must not ship"), respond)

    def broken(bucket: str) -> dict[str, str]:
        raise PermissionError("AccessDenied")

    handle_custom_resource(_request("Update"), broken, respond)

    assert [a["Status"] for a in answers] == ["SUCCESS", "SUCCESS", "FAILED"]
    assert answers[0]["Data"]["CorePackage"].endswith("/rental_analytics.zip")
    assert answers[1]["PhysicalResourceId"] == "s3://artifacts/code/old"
    assert answers[2]["Reason"] == "PermissionError: AccessDenied"
