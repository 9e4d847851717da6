"""The SAM template and the files it points at agree, so `sam build` and `sam local invoke -e` keep working."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from aws_lambda_powertools.utilities.parser.models import S3Model

ROOT = Path(__file__).resolve().parents[1]


class _CloudFormationLoader(yaml.SafeLoader):
    """Reads `!Ref`, `!Sub` and the other short forms as plain values."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return {suffix: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {suffix: loader.construct_sequence(node, deep=True)}
    return {suffix: loader.construct_mapping(node, deep=True)}  # type: ignore[arg-type]


_CloudFormationLoader.add_multi_constructor("!", _tag)
TEMPLATE = yaml.load((ROOT / "template.yaml").read_text(), Loader=_CloudFormationLoader)
FUNCTIONS = {
    name: resource["Properties"]
    for name, resource in TEMPLATE["Resources"].items()
    if resource["Type"] == "AWS::Serverless::Function"
}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_each_function_handler_exists_with_its_requirements(name: str):
    props = FUNCTIONS[name]
    module, function = props["Handler"].rsplit(".", 1)
    source = ROOT / props["CodeUri"] / f"{module}.py"
    assert f"def {function}(" in source.read_text()
    assert (ROOT / props["CodeUri"] / "requirements.txt").is_file()


def test_the_gate_listens_to_raw_uploads_of_the_data_bucket():
    [event] = FUNCTIONS["ValidateUploadFunction"]["Events"].values()
    assert event["Properties"]["Bucket"] == {"Ref": "DataBucket"}
    assert event["Properties"]["Filter"]["S3Key"]["Rules"] == [{"Name": "prefix", "Value": "raw/"}]


@pytest.mark.parametrize("path", sorted((ROOT / "events").glob("s3_put_*.json")), ids=lambda p: p.name)
def test_the_sample_events_parse_as_s3_notifications(path: Path):
    event = S3Model.model_validate(json.loads(path.read_text()))
    assert event.Records[0].s3.object is not None


def test_the_local_invoke_environment_covers_every_gate_variable():
    variables = set(FUNCTIONS["ValidateUploadFunction"]["Environment"]["Variables"]) - {"POWERTOOLS_SERVICE_NAME"}
    env = json.loads((ROOT / "events" / "env.json").read_text())
    assert variables <= set(env["ValidateUploadFunction"])
