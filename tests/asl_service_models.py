"""Checking a workflow Task's Parameters against the botocore service model of the API it calls."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Callable

from botocore.model import OperationModel, Shape
from botocore.session import Session

from tests.asl_harness import state_tables

STATES_PREFIX = "arn:aws:states:::"
# The suffixes that choose an integration pattern; they do not change the request.
PATTERNS = (".sync:2", ".sync", ".waitForTaskToken")


@dataclass(frozen=True)
class Integration:
    """How one Step Functions integration's Parameters become the request of one service API.

    renames: an integration member name → (the API member it stands for, whether the API takes a list of what
    the integration takes one of). forbidden: API members the integration refuses. free_json: members whose
    JSON value Step Functions serializes itself, so any JSON is right. rules: checks of the documented
    differences no shape can express.
    """

    service: str
    operation: str
    renames: Mapping[str, tuple[str, bool]] = field(default_factory=dict)
    forbidden: frozenset[str] = frozenset()
    free_json: frozenset[str] = frozenset()
    rules: tuple[Callable[[dict[str, Any]], list[str]], ...] = ()


def _cluster_kept_alive(parameters: dict[str, Any]) -> list[str]:
    # connect-emr: createCluster requires Instances.KeepJobFlowAliveWhenNoSteps, and it must be true.
    instances = parameters.get("Instances")
    if "Instances.$" in parameters or not isinstance(instances, dict):
        return []
    if instances.get("KeepJobFlowAliveWhenNoSteps") is not True:
        return ["Parameters.Instances: createCluster needs KeepJobFlowAliveWhenNoSteps set to the literal true"]
    return []


# The optimized integrations, keyed by the Resource without its prefix and pattern suffix. Sources:
# - EMR, https://docs.aws.amazon.com/step-functions/latest/dg/connect-emr.html: the integration APIs wrap the
#   EMR APIs; createCluster takes RunJobFlow's request without Steps and with KeepJobFlowAliveWhenNoSteps true;
#   addStep takes ClusterId and one Step where AddJobFlowSteps takes JobFlowId and Steps; terminateCluster and
#   setClusterTerminationProtection take ClusterId where the API takes JobFlowIds; cancelStep takes one StepId.
# - Athena, https://docs.aws.amazon.com/step-functions/latest/dg/connect-athena.html: the integration APIs are
#   the Athena APIs unchanged.
# - Glue, https://docs.aws.amazon.com/step-functions/latest/dg/connect-glue.html: StartJobRun only (startCrawler
#   and getCrawler exist only as AWS SDK integrations); "Parameters in Step Functions are expressed in
#   PascalCase", the API's own member names.
# - SNS, https://docs.aws.amazon.com/step-functions/latest/dg/connect-parameters.html: its sns:publish example
#   passes Publish's own members (TopicArn, Message, MessageAttributes).
# - Lambda, https://docs.aws.amazon.com/step-functions/latest/dg/connect-lambda.html: Invoke's request members;
#   its example passes Payload as a JSON object, which Step Functions serializes into the blob.
OPTIMIZED: dict[str, Integration] = {
    "elasticmapreduce:createCluster": Integration(
        "emr", "RunJobFlow", forbidden=frozenset({"Steps"}), rules=(_cluster_kept_alive,)
    ),
    "elasticmapreduce:addStep": Integration(
        "emr", "AddJobFlowSteps", renames={"ClusterId": ("JobFlowId", False), "Step": ("Steps", True)}
    ),
    "elasticmapreduce:terminateCluster": Integration(
        "emr", "TerminateJobFlows", renames={"ClusterId": ("JobFlowIds", True)}
    ),
    "elasticmapreduce:setClusterTerminationProtection": Integration(
        "emr", "SetTerminationProtection", renames={"ClusterId": ("JobFlowIds", True)}
    ),
    "elasticmapreduce:cancelStep": Integration("emr", "CancelSteps", renames={"StepId": ("StepIds", True)}),
    "athena:startQueryExecution": Integration("athena", "StartQueryExecution"),
    "athena:stopQueryExecution": Integration("athena", "StopQueryExecution"),
    "athena:getQueryExecution": Integration("athena", "GetQueryExecution"),
    "athena:getQueryResults": Integration("athena", "GetQueryResults"),
    "glue:startJobRun": Integration("glue", "StartJobRun"),
    # https://docs.aws.amazon.com/step-functions/latest/dg/connect-emr-serverless.html: the EMR Serverless
    # APIs, their members in PascalCase.
    "emr-serverless:startJobRun": Integration("emr-serverless", "StartJobRun"),
    "sns:publish": Integration("sns", "Publish"),
    "lambda:invoke": Integration("lambda", "Invoke", free_json=frozenset({"Payload"})),
    # https://docs.aws.amazon.com/step-functions/latest/dg/connect-ddb.html: the four item APIs, unchanged.
    **{
        f"dynamodb:{api[:1].lower()}{api[1:]}": Integration("dynamodb", api)
        for api in ("GetItem", "PutItem", "UpdateItem", "DeleteItem")
    },
}

# AWS SDK integrations name the service as Step Functions spells it, which is botocore's name but for these.
SDK_SERVICES = {"sfn": "stepfunctions", "emrserverless": "emr-serverless"}


def _without_pattern(resource: str) -> str:
    for suffix in PATTERNS:
        if resource.endswith(suffix):
            return resource[: -len(suffix)]
    return resource


def integration_for(resource: str) -> Integration:
    """The integration a Task's Resource calls; ValueError for one this table does not know."""
    if not resource.startswith(STATES_PREFIX):
        raise ValueError(f"not a Step Functions service integration: {resource}")
    name = _without_pattern(resource[len(STATES_PREFIX) :])
    if name.startswith("aws-sdk:"):
        # supported-services-awssdk: "The API action will always be camel case, and parameter names will be
        # Pascal case", the API's own member names.
        _, service, action = name.split(":")
        return Integration(SDK_SERVICES.get(service, service), action[:1].upper() + action[1:])
    if name not in OPTIMIZED:
        raise ValueError(f"no service model known for the integration {resource}")
    return OPTIMIZED[name]


@cache
def operation_model(service: str, operation: str) -> OperationModel:
    model = Session().get_service_model(service)
    if operation not in model.operation_names:
        raise ValueError(f"{service} has no operation {operation}")
    return model.operation_model(operation)


def task_states(definition: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every Task state of a definition, inside Map and Parallel states too."""
    for states in state_tables(definition):
        yield from ((name, state) for name, state in states.items() if state["Type"] == "Task")


def _plausible(name: str) -> str:
    if name.endswith("Arn"):
        return f"arn:aws:sns:us-east-1:123456789012:{name}"
    if name.endswith(("Role", "Profile")):
        return f"arn:aws:iam::123456789012:role/{name}"
    if name.endswith(("Uri", "Package", "Script")):
        return f"s3://artifacts/{name}"
    if name.endswith(("Seconds", "Count", "Polls", "Partitions")):
        return "4"
    if name.endswith(("Rate", "Fraction")):
        return "0.5"
    return f"test-{name.lower()}"


_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|\$\{(\w+)\}')


def fill_placeholders(text: str) -> tuple[str, frozenset[str]]:
    """The definition with every ${Placeholder} filled, and the strings that hold a filled placeholder.

    A placeholder inside a JSON string gets a plausible string; one standing where a value goes gets a number,
    which is what DefinitionSubstitutions would have to put there for the definition to parse.
    """
    configured: set[str] = set()

    def fill(match: re.Match[str]) -> str:
        if match.group(1):
            return "4"
        filled = re.sub(r"\$\{(\w+)\}", lambda m: _plausible(m.group(1)), match.group(0))
        if filled != match.group(0):
            configured.add(json.loads(filled))
        return filled

    return _TOKEN.sub(fill, text), frozenset(configured)


# The JSON types a literal may have for each botocore type.
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "long": (int,),
    "boolean": (bool,),
    "float": (int, float),
    "double": (int, float),
    "timestamp": (str, int, float),
    "blob": (str,),
    "structure": (dict,),
    "list": (list,),
    "map": (dict,),
}


def _is_a(value: Any, kind: str) -> bool:
    # bool is an int in Python, and JSON true is no number.
    return isinstance(value, _JSON_TYPES[kind]) and (kind == "boolean" or not isinstance(value, bool))


def _member_name(key: str) -> tuple[str, bool]:
    """A Parameters key without its `.$` suffix, and whether its value is a path or intrinsic."""
    return (key[:-2], True) if key.endswith(".$") else (key, False)


@dataclass(frozen=True)
class _Check:
    configured: frozenset[str]  # strings that hold a value the stack fills in
    any_json: frozenset[str]  # paths whose JSON Step Functions serializes itself

    def value(self, value: Any, shape: Shape, path: str) -> list[str]:
        if path in self.any_json:
            return []
        kind = shape.type_name
        if not _is_a(value, kind):
            return [f"{path}: {type(value).__name__} literal where {shape.name} wants a {kind} value"]
        if kind == "structure":
            return self.members(value, shape.members, shape.required_members, path, shape.name)
        if kind == "list":
            return [p for i, item in enumerate(value) for p in self.value(item, shape.member, f"{path}[{i}]")]
        if kind == "map":
            problems = []
            for key, item in value.items():
                name, dynamic = _member_name(key)
                if not dynamic:
                    problems += self.value(item, shape.value, f"{path}.{name}")
            return problems
        # A configured value is the stack's to choose; only what the ASL itself writes is checked further.
        if value in self.configured:
            return []
        return self.bounds(value, shape, path)

    def bounds(self, value: Any, shape: Shape, path: str) -> list[str]:
        """A literal scalar against its shape's enum and its length or range."""
        problems = []
        if shape.type_name == "string" and shape.enum and value not in shape.enum:
            problems.append(f"{path}: {value!r} is not one of {shape.name}'s values {shape.enum}")
        size = len(value) if isinstance(value, str) else value
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if isinstance(size, bool) or not isinstance(size, (int, float)):
            return problems
        if (low is not None and size < low) or (high is not None and size > high):
            what = f"length {size}" if isinstance(value, str) else repr(value)
            problems.append(f"{path}: {what} is outside {shape.name}'s bounds [{low}, {high}]")
        return problems

    def members(
        self, value: dict[str, Any], members: Mapping[str, Shape], required: Iterable[str], path: str, where: str
    ) -> list[str]:
        problems = []
        present = set()
        for key, item in value.items():
            name, dynamic = _member_name(key)
            # supported-services-awssdk: parameters are PascalCase "even if the native service API is in
            # camelCase" (Step Functions' own API: ExecutionArn for executionArn).
            camel = name[:1].lower() + name[1:]
            name = camel if name not in members and camel in members else name
            present.add(name)
            if name not in members:
                problems.append(f"{path}: unknown member {name!r} (not in {where})")
            elif not dynamic:
                problems += self.value(item, members[name], f"{path}.{name}")
        problems += [f"{path}: missing required member {name!r} of {where}" for name in required if name not in present]
        return problems


def check_parameters(resource: str, parameters: dict[str, Any], configured: frozenset[str] = frozenset()) -> list[str]:
    """Every way the Parameters of a Task calling `resource` disagree with the API's request shape."""
    integration = integration_for(resource)
    shape = operation_model(integration.service, integration.operation).input_shape
    members: dict[str, Shape] = dict(shape.members) if shape else {}
    required = list(shape.required_members) if shape else []
    for own, (api, as_list) in integration.renames.items():
        api_shape = members.pop(api)
        members[own] = api_shape.member if as_list else api_shape
        required = [own if name == api else name for name in required]
    for name in integration.forbidden:
        members.pop(name)
    # An idempotency token the request leaves out is filled by the SDK (botocore's model marks it so).
    required = [name for name in required if not members[name].metadata.get("idempotencyToken")]
    check = _Check(configured, frozenset(f"Parameters.{name}" for name in integration.free_json))
    where = f"{integration.operation} (via {_without_pattern(resource[len(STATES_PREFIX) :])})"
    problems = check.members(parameters, members, required, "Parameters", where)
    for rule in integration.rules:
        problems += rule(parameters)
    return problems
