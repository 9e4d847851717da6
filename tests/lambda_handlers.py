"""Loading a Lambda handler module the way the runtime does: environment first, then a fresh import."""

from __future__ import annotations

import importlib.util
import uuid
from types import ModuleType

import pytest

from tests.repo import ROOT


class FakeContext:
    function_name = "TestFunction"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:TestFunction"
    aws_request_id = "2f7c5a7e-0000-4000-8000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


def load_handler(folder: str, monkeypatch: pytest.MonkeyPatch, **environment: str) -> ModuleType:
    """Import functions/<folder>/app.py after setting its environment; each call makes new boto3 clients."""
    for name, value in {
        "POWERTOOLS_METRICS_NAMESPACE": "RentalAnalyticsTests",
        "POWERTOOLS_TRACE_DISABLED": "true",
        # Loggers of one service share a handler bound to the first test's captured output.
        "POWERTOOLS_SERVICE_NAME": f"{folder}-{uuid.uuid4().hex[:6]}",
        **environment,
    }.items():
        monkeypatch.setenv(name, value)
    import rental_analytics.platform.aws

    rental_analytics.platform.aws.clients.cache_clear()
    spec = importlib.util.spec_from_file_location(f"{folder}_app", ROOT / "functions" / folder / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
