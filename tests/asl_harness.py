"""Running an ASL definition under moto's interpreter with the states moto cannot run scripted per scenario.

A scripted state is either a Pass with the state's result (keeping its ResultPath and Next), or, for FAIL, a
Task that moto rejects, keeping the original Catch: the failure travels the definition's own failure path.
A `Raise` fails with a named error, as an integration reports it, under the state's own Retry and Catch.
"""

from __future__ import annotations

import functools
import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import boto3
import botocore.session
from moto.sns.models import sns_backends
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk import (
    StateTaskServiceAwsSdk,
)

from tests.repo import ROOT

ACCOUNT, REGION = "123456789012", "us-east-1"
FAIL = "fail"


@functools.cache
def _service_model(service: str) -> Any:
    return botocore.session.get_session().get_service_model(service)


def _operation(task: Any, boto_service_name: str | None, service_action_name: str | None) -> Any:
    service = task._get_boto_service_name(boto_service_name)
    action = service_action_name or task.resource.api_action
    return _service_model(service).operation_model(action[0].upper() + action[1:])


def _parameters_as_aws_reads_them(
    task: Any, parameters: dict[str, Any], boto_service_name: str | None = None, service_action_name: str | None = None
) -> None:
    task._to_boto_request(parameters, _operation(task, boto_service_name, service_action_name).input_shape)


def _response_as_aws_writes_it(
    task: Any, response: Any, boto_service_name: str | None = None, service_action_name: str | None = None
) -> None:
    task._from_boto_response(response, _operation(task, boto_service_name, service_action_name).output_shape)


# AWS SDK integrations take and give the API's members in PascalCase (supported-services-awssdk: "parameter
# names will be Pascal case"), whatever the API's own casing; moto passes them to boto3 as written, which only
# works for APIs whose members are PascalCase already (S3, Glue), not Step Functions' own (executionArn). The
# harness gives moto's interpreter the conversion AWS makes, from botocore's model.
StateTaskServiceAwsSdk._normalise_parameters = _parameters_as_aws_reads_them  # type: ignore[method-assign]
StateTaskServiceAwsSdk._normalise_response = _response_as_aws_writes_it  # type: ignore[method-assign]


def asl_text(name: str) -> str:
    return (ROOT / "statemachine" / f"{name}.asl.json").read_text()


def placeholders(text: str) -> set[str]:
    return set(re.findall(r"\$\{(\w+)\}", text))


def _failing_task(original: dict[str, Any]) -> dict[str, Any]:
    state = {
        "Type": "Task",
        "Resource": "arn:aws:states:::aws-sdk:sfn:describeExecution",
        "Parameters": {"ExecutionArn": f"arn:aws:states:{REGION}:{ACCOUNT}:execution:missing:missing"},
    }
    for key in ("Catch", "Next", "End"):
        if key in original:
            state[key] = original[key]
    return state


@dataclass(frozen=True)
class Raise:
    """A scripted state that fails with `error` (the first `times` attempts, or every attempt when None).

    It becomes a Parallel whose branch ends in a Fail state: the Parallel reports the branch's error name, and
    unlike a Fail state it keeps the original Retry and Catch. A limited failure counts its attempts in SSM
    parameters (one per attempt, named after the execution), so a later attempt can succeed.
    """

    error: str
    cause: str = "scripted failure"
    times: int | None = None

    def __post_init__(self) -> None:
        # A Fail state may not raise the interpreter's own errors; FAIL stands in for those.
        if self.error.startswith("States."):
            raise ValueError(f"a scripted error cannot be one of Step Functions' own: {self.error}")


def _attempt_parameter(state_name: str, attempt: int) -> dict[str, Any]:
    slug = re.sub(r"[^A-Za-z0-9_.-]", "_", state_name)
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::aws-sdk:ssm:putParameter",
        "Parameters": {
            "Name.$": f"States.Format('/harness/{{}}/{slug}/{attempt}', $.execution)",
            "Value": "attempted",
            "Type": "String",
            "Overwrite": False,
        },
        "ResultPath": None,
    }


def _raising_state(name: str, original: dict[str, Any], script: Raise) -> dict[str, Any]:
    states: dict[str, Any] = {"Fail": {"Type": "Fail", "Error": script.error, "Cause": script.cause}}
    start = "Fail"
    if script.times is not None:
        # Attempt k creates parameter k and fails; when k exists already this is a later attempt: try k + 1.
        # Once `times` attempts have failed, the next one succeeds.
        states["Succeed"] = {"Type": "Succeed"}
        for attempt in range(1, script.times + 1):
            later = f"Attempt {attempt + 1}" if attempt < script.times else "Succeed"
            states[f"Attempt {attempt}"] = {
                **_attempt_parameter(name, attempt),
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": None, "Next": later}],
                "Next": "Fail",
            }
        start = "Attempt 1"
    state: dict[str, Any] = {
        "Type": "Parallel",
        "Branches": [{"StartAt": start, "States": states}],
        # The context object is not there inside a branch: the execution's name comes in as the branch's input.
        "Parameters": {"execution.$": "$$.Execution.Name"},
        "ResultPath": None,
    }
    for key in ("Catch", "Next", "End"):
        if key in original:
            state[key] = original[key]
    # Real backoff would keep a test waiting for minutes: the retriers keep their errors and counts, not their waits.
    state["Retry"] = [{**r, "IntervalSeconds": 1, "BackoffRate": 1.0} for r in original.get("Retry", [])]
    return state


@dataclass(frozen=True)
class Compose:
    """A scripted state that is a Pass with these Parameters (paths and intrinsic functions allowed), keeping the
    state's ResultPath and Next: a stand-in whose result depends on the state's input."""

    parameters: dict[str, Any]


def _scripted_pass(original: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    state: dict[str, Any] = {"Type": "Pass", **body}
    for key in ("ResultPath", "Next", "End"):
        if key in original:
            state[key] = original[key]
    return state


def state_tables(definition: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The States of a definition and of every Map (ItemProcessor or the older Iterator) and Parallel in it."""
    yield definition["States"]
    for state in definition["States"].values():
        for inner in (state.get("ItemProcessor"), state.get("Iterator"), *state.get("Branches", [])):
            if inner:
                yield from state_tables(inner)


def scripted_definition(text: str, substitutions: dict[str, str], script: dict[str, Any]) -> str:
    """The definition with its placeholders filled and the named states scripted."""
    for name, value in substitutions.items():
        text = text.replace("${" + name + "}", value)
    definition = json.loads(text)
    # Walked before anything is replaced: a Raise stand-in is a Parallel whose branch must not be scripted.
    for states in list(state_tables(definition)):
        for name in list(states):
            if name in script:
                result = script[name]
                if isinstance(result, Raise):
                    states[name] = _raising_state(name, states[name], result)
                elif isinstance(result, Hold):
                    states[name] = _holding_state(states[name], result)
                elif isinstance(result, Compose):
                    states[name] = _scripted_pass(states[name], {"Parameters": result.parameters})
                elif result == FAIL:
                    states[name] = _failing_task(states[name])
                else:
                    states[name] = _scripted_pass(states[name], {"Result": result})
    return json.dumps(definition)


@dataclass
class Run:
    status: str
    entered: list[str]
    alerts: list[tuple[str, str]]
    output: Any
    inputs: dict[str, Any]  # the input each state was last entered with
    attempts: dict[str, int]  # how often each `Raise` state ran, retries included
    entered_at: list[tuple[str, datetime]]  # each state entered, with the time it was


@dataclass(frozen=True)
class Hold:
    """A scripted state that takes `seconds` and passes its input on, as a long Spark step would (ResultPath null)."""

    seconds: int


def _holding_state(original: dict[str, Any], script: Hold) -> dict[str, Any]:
    state: dict[str, Any] = {"Type": "Wait", "Seconds": script.seconds}
    for key in ("Next", "End"):
        if key in original:
            state[key] = original[key]
    return state


def create_machine(definition: str) -> str:
    """A new state machine of the definition; its ARN."""
    sfn = boto3.client("stepfunctions", region_name=REGION)
    return sfn.create_state_machine(
        name=f"machine-{len(sfn.list_state_machines()['stateMachines'])}",
        definition=definition,
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/workflow",
    )["stateMachineArn"]


def start(machine: str, execution_input: dict[str, Any], name: str | None = None) -> str:
    """Start one execution (named `name`, or at random); its ARN."""
    sfn = boto3.client("stepfunctions", region_name=REGION)
    name = name or uuid.uuid4().hex  # moto names every unnamed execution alike
    return sfn.start_execution(stateMachineArn=machine, name=name, input=json.dumps(execution_input))["executionArn"]


def finish(execution: str, topic_arn: str, seconds: float = 30) -> Run:
    """Wait for the execution to end, and read its history and the topic."""
    sfn = boto3.client("stepfunctions", region_name=REGION)
    deadline = time.monotonic() + seconds
    while (described := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the execution did not finish"
        time.sleep(0.05)
    events = sfn.get_execution_history(executionArn=execution, maxResults=1000)["events"]
    entered_events = [e for e in events if "stateEnteredEventDetails" in e]
    entered = [e["stateEnteredEventDetails"]["name"] for e in entered_events]
    inputs = {
        e["stateEnteredEventDetails"]["name"]: json.loads(e["stateEnteredEventDetails"].get("input") or "null")
        for e in entered_events
    }
    attempts: dict[str, int] = {}
    parallel = ""
    for event in events:
        if event["type"] == "ParallelStateEntered":
            parallel = event["stateEnteredEventDetails"]["name"]
        elif event["type"] == "ParallelStateStarted":  # once per attempt
            attempts[parallel] = attempts.get(parallel, 0) + 1
    topic = sns_backends[ACCOUNT][REGION].topics[topic_arn]
    alerts = [(subject or "", message) for _, message, subject, *_ in topic.sent_notifications]
    output = json.loads(described["output"]) if described.get("output") else None
    entered_at = [(e["stateEnteredEventDetails"]["name"], e["timestamp"]) for e in entered_events]
    return Run(described["status"], entered, alerts, output, inputs, attempts, entered_at)


def run(definition: str, topic_arn: str, execution_input: dict[str, Any], name: str | None = None) -> Run:
    """Create the state machine, run one execution to its end, and read its history and the topic."""
    return finish(start(create_machine(definition), execution_input, name), topic_arn)


def run_lock_table() -> str:
    """Inside a moto context: the run lock table, with the key schema the template gives it."""
    from tests.templates import CAR_RENTAL

    table = CAR_RENTAL.resources["RunLockTable"]["Properties"]
    boto3.client("dynamodb", region_name=REGION).create_table(
        TableName="run-lock",
        KeySchema=table["KeySchema"],
        AttributeDefinitions=table["AttributeDefinitions"],
        BillingMode=table["BillingMode"],
    )
    return "run-lock"


def car_rental_stand_ins(data_bucket: str) -> dict[str, str]:
    """Inside a moto context: the crawler, named queries and topic the car-rental workflow uses, and every
    placeholder's value (the real resources where moto runs them, test strings elsewhere)."""
    from rental_analytics.car_rental.contract import INSIGHT_QUERIES

    glue = boto3.client("glue", region_name=REGION)
    glue.create_database(DatabaseInput={"Name": "catalog"})
    glue.create_crawler(
        Name="crawler", Role=f"arn:aws:iam::{ACCOUNT}:role/crawler", DatabaseName="catalog",
        Targets={"S3Targets": [{"Path": f"s3://{data_bucket}/processed/"}]},
    )  # fmt: skip
    athena = boto3.client("athena", region_name=REGION)
    values = {name: f"test-{name.lower()}" for name in placeholders(asl_text("car_rental_pipeline"))}
    for name in INSIGHT_QUERIES:
        camel = "".join(p.capitalize() for p in name.split("_"))
        values[f"{camel}QueryId"] = athena.create_named_query(
            Name=name, Database="catalog", QueryString=f"SELECT '{name}'", WorkGroup="primary"
        )["NamedQueryId"]
    topic = boto3.client("sns", region_name=REGION).create_topic(Name="alerts")["TopicArn"]
    values.update(
        AlertTopicArn=topic, CrawlerName="crawler", CrawlerPollSeconds="0", CrawlerMaxPolls="3",
        ComputeMode="cluster", ServerlessJobTimeoutMinutes="240", CoreMaxUnits="3", SpotTimeoutMinutes="10", EmrIdleTimeoutSeconds="3600", DataBucket=data_bucket, AthenaWorkGroup="primary",
        SparkStepTimeoutSeconds="14400", ClusterTerminationTimeoutSeconds="1800", AthenaQueryTimeoutSeconds="1800",
        RunLockPollSeconds="1", RunLockMaxPolls="3", RunLockTable=run_lock_table(),
    )  # fmt: skip
    return values
