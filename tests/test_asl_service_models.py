"""Every workflow Task's Parameters, placeholders filled, against the botocore model of the API it calls."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.asl_harness import asl_text
from tests.asl_service_models import check_parameters, fill_placeholders, integration_for, task_states

DEFINITIONS = ("car_rental_pipeline", "apartments_pipeline")

# Where the check finds a fault in a definition that is not fixed yet: (definition, state) → the fault.
KNOWN_FAULTS: dict[tuple[str, str], str] = {}


def _task_cases() -> list[Any]:
    cases = []
    for definition in DEFINITIONS:
        text, configured = fill_placeholders(asl_text(definition))
        for name, state in task_states(json.loads(text)):
            fault = KNOWN_FAULTS.get((definition, name))
            marks = [pytest.mark.xfail(strict=True, reason=fault)] if fault else []
            cases.append(pytest.param(state, configured, id=f"{definition}: {name}", marks=marks))
    return cases


TASK_CASES = _task_cases()


@pytest.mark.parametrize(("state", "configured"), TASK_CASES)
def test_task_parameters_match_the_service_model(state: dict[str, Any], configured: frozenset[str]) -> None:
    problems = check_parameters(state["Resource"], state.get("Parameters", {}), configured)
    assert not problems, "\n".join(problems)


def test_the_cases_reach_into_map_states() -> None:
    ids = {case.id for case in TASK_CASES}
    assert {"car_rental_pipeline: Read the query", "car_rental_pipeline: Run the query"} <= ids
    assert "apartments_pipeline: Extract from the source" in ids


@pytest.mark.parametrize("definition", DEFINITIONS)
def test_every_placeholder_is_filled_and_the_definition_parses(definition: str) -> None:
    text, _ = fill_placeholders(asl_text(definition))
    assert "${" not in text
    json.loads(text)


def test_a_placeholder_in_a_number_position_becomes_a_number() -> None:
    text, configured = fill_placeholders('{"Count": ${CoreCount}, "Name": "car-${Project}", "Fixed": "x"}')
    filled = json.loads(text)
    assert isinstance(filled["Count"], int)
    assert isinstance(filled["Name"], str) and filled["Name"].startswith("car-")
    assert configured == {filled["Name"]}


def test_task_states_include_parallel_branches_and_map_iterators() -> None:
    task = {"Type": "Task", "Resource": "arn:aws:states:::sns:publish", "End": True}
    definition = {
        "States": {
            "Fan out": {
                "Type": "Parallel",
                "Branches": [{"StartAt": "In branch", "States": {"In branch": task}}],
                "End": True,
            },
            "Each": {"Type": "Map", "Iterator": {"StartAt": "In map", "States": {"In map": task}}, "End": True},
        }
    }
    assert [name for name, _ in task_states(definition)] == ["In branch", "In map"]


# The check itself must be able to fail: each broken request below names its fault.
ADD_STEP = "arn:aws:states:::elasticmapreduce:addStep.sync"
STEP = {"Name": "job", "ActionOnFailure": "CONTINUE", "HadoopJarStep": {"Jar": "command-runner.jar", "Args": ["a"]}}


def test_a_well_formed_request_passes() -> None:
    assert check_parameters(ADD_STEP, {"ClusterId.$": "$.cluster.ClusterId", "Step": STEP}) == []


@pytest.mark.parametrize(
    ("resource", "parameters", "expected"),
    [
        pytest.param(
            "arn:aws:states:::sns:publish",
            {"TopicArn": "arn:aws:sns:us-east-1:123456789012:t", "Mesage": "hi"},
            ["Parameters: unknown member 'Mesage'", "Parameters: missing required member 'Message'"],
            id="misspelled member",
        ),
        pytest.param(
            ADD_STEP,
            {"ClusterId": "j-1", "Step": {**STEP, "HadoopJarStep": {"Jarr": "command-runner.jar"}}},
            ["Parameters.Step.HadoopJarStep: unknown member 'Jarr'", "missing required member 'Jar'"],
            id="misspelled nested member",
        ),
        pytest.param(ADD_STEP, {"Step": STEP}, ["missing required member 'ClusterId'"], id="missing required member"),
        pytest.param(
            "arn:aws:states:::glue:startJobRun.sync",
            {"JobName": "job", "Arguments": {"--load-date": 20240601}},
            ["Parameters.Arguments.--load-date: int literal where GenericString wants a string value"],
            id="number for a string",
        ),
        pytest.param(
            "arn:aws:states:::aws-sdk:ssm:putParameter",
            {"Name": "p", "Value": "v", "Overwrite": "true"},
            ["Parameters.Overwrite: str literal where Boolean wants a boolean value"],
            id="string for a boolean",
        ),
        pytest.param(
            ADD_STEP,
            {"ClusterId": "j-1", "Step": [STEP]},
            ["Parameters.Step: list literal where StepConfig wants a structure value"],
            id="list for a structure",
        ),
        pytest.param(
            ADD_STEP,
            {"ClusterId": "j-1", "Step": {**STEP, "ActionOnFailure": "TERMINATE"}},
            ["Parameters.Step.ActionOnFailure: 'TERMINATE' is not one of ActionOnFailure's values"],
            id="value outside the enum",
        ),
        pytest.param(
            ADD_STEP,
            {"ClusterId": "j-1", "Step": {**STEP, "Name": "x" * 300}},
            ["Parameters.Step.Name: length 300 is outside XmlStringMaxLen256's bounds [0, 256]"],
            id="string longer than the model allows",
        ),
        pytest.param(
            "arn:aws:states:::elasticmapreduce:createCluster.sync",
            {"Name": "c", "Instances": {"KeepJobFlowAliveWhenNoSteps": False}, "Steps": [STEP]},
            ["Parameters: unknown member 'Steps'", "KeepJobFlowAliveWhenNoSteps set to the literal true"],
            id="createCluster's own rules",
        ),
        pytest.param(
            "arn:aws:states:::elasticmapreduce:terminateCluster",
            {"JobFlowIds": ["j-1"]},
            ["unknown member 'JobFlowIds'", "missing required member 'ClusterId'"],
            id="the API's name where the integration renames it",
        ),
    ],
)
def test_the_check_names_each_fault(resource: str, parameters: dict[str, Any], expected: list[str]) -> None:
    problems = check_parameters(resource, parameters)
    for fault in expected:
        assert any(fault in problem for problem in problems), f"{fault!r} not among {problems}"


def test_a_path_counts_as_the_member_and_its_value_is_not_typed() -> None:
    parameters = {"JobName.$": "$.job", "Arguments": {"--load-date.$": "$.load_date"}, "Timeout.$": "$.limit"}
    assert check_parameters("arn:aws:states:::glue:startJobRun", parameters) == []


def test_lambda_payload_may_be_any_json() -> None:
    parameters = {"FunctionName": "f", "Payload": {"batch_id.$": "$.batch_id", "nested": [1, {"a": True}]}}
    assert check_parameters("arn:aws:states:::lambda:invoke", parameters) == []


@pytest.mark.parametrize(
    "resource",
    [
        "arn:aws:states:::glue:startCrawler",  # an AWS SDK integration only, not an optimized one
        "arn:aws:states:::aws-sdk:glue:startCrawlr",
        "arn:aws:lambda:us-east-1:123456789012:function:f",
    ],
)
def test_an_unknown_integration_or_operation_is_an_error(resource: str) -> None:
    with pytest.raises(ValueError):
        check_parameters(resource, {})


def test_sdk_integrations_map_the_camel_case_action_to_the_operation() -> None:
    integration = integration_for("arn:aws:states:::aws-sdk:sfn:describeExecution")
    assert (integration.service, integration.operation) == ("stepfunctions", "DescribeExecution")
