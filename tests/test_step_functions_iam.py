"""required_actions: the IAM actions a workflow definition's Tasks need, on small hand-written definitions."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.asl_harness import asl_text
from tests.asl_service_models import integration_for
from tests.step_functions_iam import INTEGRATION_ACTIONS, required_actions


def _task(resource: str, **fields: Any) -> dict[str, Any]:
    return {"Type": "Task", "Resource": resource, "End": True, **fields}


def _definition(*resources: str) -> str:
    """A definition whose Tasks call the resources in turn."""
    names = [f"Step {i}" for i in range(len(resources))]
    states = {}
    for i, (name, resource) in enumerate(zip(names, resources)):
        state = _task(resource)
        if i + 1 < len(names):
            del state["End"]
            state["Next"] = names[i + 1]
        states[name] = state
    return json.dumps({"StartAt": names[0], "States": states})


def test_a_synchronous_glue_job_also_needs_to_watch_and_stop_its_run() -> None:
    assert required_actions(_definition("arn:aws:states:::glue:startJobRun.sync")) == {
        "glue:StartJobRun",
        "glue:GetJobRun",
        "glue:GetJobRuns",
        "glue:BatchStopJobRun",
    }


def test_request_response_and_callback_need_only_the_call() -> None:
    assert required_actions(_definition("arn:aws:states:::glue:startJobRun")) == {"glue:StartJobRun"}
    assert required_actions(_definition("arn:aws:states:::lambda:invoke.waitForTaskToken")) == {"lambda:InvokeFunction"}


def test_the_emr_lifecycle() -> None:
    actions = required_actions(
        _definition(
            "arn:aws:states:::elasticmapreduce:createCluster.sync",
            "arn:aws:states:::elasticmapreduce:addStep.sync",
            "arn:aws:states:::elasticmapreduce:terminateCluster.sync",
        )
    )
    assert {"elasticmapreduce:RunJobFlow", "iam:PassRole", "iam:CreateServiceLinkedRole"} <= actions
    assert {
        "elasticmapreduce:AddJobFlowSteps",
        "elasticmapreduce:DescribeStep",
        "elasticmapreduce:CancelSteps",
    } <= actions
    assert {"elasticmapreduce:TerminateJobFlows", "elasticmapreduce:DescribeCluster"} <= actions


def test_an_athena_query_reaches_its_data_and_the_catalog() -> None:
    asynchronous = required_actions(_definition("arn:aws:states:::athena:startQueryExecution"))
    synchronous = required_actions(_definition("arn:aws:states:::athena:startQueryExecution.sync"))
    assert {
        "athena:StartQueryExecution",
        "s3:PutObject",
        "glue:GetTable",
        "lakeformation:GetDataAccess",
    } <= asynchronous
    assert synchronous - asynchronous == {"athena:StopQueryExecution", "athena:GetQueryExecution"}


@pytest.mark.parametrize(
    ("resource", "action"),
    [
        ("arn:aws:states:::aws-sdk:ssm:getParameter", "ssm:GetParameter"),
        ("arn:aws:states:::aws-sdk:glue:startCrawler", "glue:StartCrawler"),
        ("arn:aws:states:::aws-sdk:athena:getNamedQuery", "athena:GetNamedQuery"),
        ("arn:aws:states:::aws-sdk:sfn:describeExecution", "states:DescribeExecution"),
        ("arn:aws:states:::aws-sdk:emr:listClusters", "elasticmapreduce:ListClusters"),
    ],
)
def test_an_sdk_integration_needs_its_own_action_under_the_iam_prefix(resource: str, action: str) -> None:
    assert required_actions(_definition(resource)) == {action}


def test_a_lambda_function_arn_as_resource_invokes_the_function() -> None:
    assert required_actions(_definition("arn:aws:lambda:us-east-1:123456789012:function:report")) == {
        "lambda:InvokeFunction"
    }


def test_tasks_inside_map_and_parallel_states_count() -> None:
    definition = {
        "StartAt": "Fan out",
        "States": {
            "Fan out": {
                "Type": "Parallel",
                "Branches": [
                    {"StartAt": "Tell", "States": {"Tell": _task("arn:aws:states:::sns:publish")}},
                    {
                        "StartAt": "Each",
                        "States": {
                            "Each": {
                                "Type": "Map",
                                "ItemProcessor": {
                                    "StartAt": "Read",
                                    "States": {"Read": _task("arn:aws:states:::aws-sdk:s3:getObject")},
                                },
                                "End": True,
                            }
                        },
                    },
                ],
                "End": True,
            }
        },
    }
    assert required_actions(json.dumps(definition)) == {"sns:Publish", "s3:GetObject"}


def test_placeholders_anywhere_are_filled_before_parsing() -> None:
    text = (
        '{"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": ${PollSeconds}, "Next": "Tell"},'
        ' "Tell": {"Type": "Task", "Resource": "arn:aws:states:::sns:publish",'
        ' "Parameters": {"TopicArn": "${AlertTopicArn}", "Message": "m"}, "End": true}}}'
    )
    assert required_actions(text) == {"sns:Publish"}


def test_an_unknown_integration_names_its_state() -> None:
    with pytest.raises(ValueError, match=r"Step 0: no IAM actions known for the integration .*glue:startCrawler"):
        required_actions(_definition("arn:aws:states:::glue:startCrawler"))


@pytest.mark.parametrize("resource", sorted(INTEGRATION_ACTIONS))
def test_every_integration_in_the_table_has_a_service_model(resource: str) -> None:
    # The two tables describe the same integrations: an entry here the parameter check cannot model is a typo.
    integration_for(resource)


def test_the_car_rental_workflow_needs_each_service_it_calls() -> None:
    actions = required_actions(asl_text("car_rental_pipeline"))
    expected = {
        "elasticmapreduce:RunJobFlow",
        "elasticmapreduce:AddJobFlowSteps",
        "elasticmapreduce:TerminateJobFlows",
        "glue:StartCrawler",
        "glue:GetCrawler",
        "athena:GetNamedQuery",
        "athena:StartQueryExecution",
        "lambda:InvokeFunction",
        "sns:Publish",
    }
    assert expected <= actions


def test_a_dynamodb_item_task_needs_its_own_action() -> None:
    assert required_actions(_definition("arn:aws:states:::dynamodb:putItem")) == {"dynamodb:PutItem"}
    assert required_actions(_definition("arn:aws:states:::dynamodb:deleteItem")) == {"dynamodb:DeleteItem"}
