"""The stacks as CloudFormation would deploy them: intrinsics resolved with fixed test values, conditions decided."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from tests.templates import APARTMENTS, CAR_RENTAL, ROOT_STACK, Template

ACCOUNT, REGION, PARTITION = "123456789012", "eu-west-1", "aws"
ROOT_STACK_NAME = "rental-analytics"
# The first group of a stack id's UUID is the suffix the templates name their resources with.
STACK_UUIDS = {
    ROOT_STACK_NAME: "0a1b2c3d-0000-4000-8000-000000000000",
    "CarRental": "1b2c3d4e-0000-4000-8000-000000000000",
    "Apartments": "2c3d4e5f-0000-4000-8000-000000000000",
}
# Which shipped file each attribute of the ShippedCode custom resource names (rental_analytics/platform/ship.py).
CODE_VERSION = "0123456789abcdef"
# The root stack's parameters as a deployment with both pipelines gives them; the rest keep their defaults.
ROOT_PARAMETERS: dict[str, Any] = {
    "DeployCarRental": "true",
    "DeployApartments": "true",
    "SubnetId": "subnet-0emr0000000000000",
    "DatabaseSubnetId": "subnet-0glue000000000000",
    "DatabaseAvailabilityZone": "eu-west-1a",
    "DatabaseSecurityGroupId": "sg-0glue000000000000",
    "SourceHost": "source.cluster-abc.eu-west-1.rds.amazonaws.com",
    "SourceDatabase": "marketplace",
    "SourceUser": "reader",
    "SourcePassword": "not-a-real-password",
    "WarehouseSubnetIds": ["subnet-0wa", "subnet-0wb", "subnet-0wc"],
    "ExistingWarehouseHost": "warehouse.example.internal",
    "ExistingWarehouseSecretArn": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:existing-warehouse-AbCdEf",
    "ExistingWarehouseCopyRoleArn": f"arn:aws:iam::{ACCOUNT}:role/existing-warehouse-copy",
}
NO_VALUE = object()  # AWS::NoValue: the property or list item is left out


def _arn(service: str, rest: str, region: str = REGION, account: str = ACCOUNT) -> str:
    return f"arn:{PARTITION}:{service}:{region}:{account}:{rest}"


def _snake(camel: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", camel).lower()


def _nested(props: Mapping[str, Any], *path: str) -> Any:
    for key in path:
        props = props.get(key, {}) if isinstance(props, Mapping) else {}
    return props or None


# The property that names a resource, where the template names it; otherwise CloudFormation makes a name up.
_NAME_PROPERTY: dict[str, tuple[str, ...]] = {
    "AWS::S3::Bucket": ("BucketName",),
    "AWS::IAM::Role": ("RoleName",),
    "AWS::IAM::InstanceProfile": ("InstanceProfileName",),
    "AWS::Logs::LogGroup": ("LogGroupName",),
    "AWS::Glue::Job": ("Name",),
    "AWS::Glue::SecurityConfiguration": ("Name",),
    "AWS::Glue::Database": ("DatabaseInput", "Name"),
    "AWS::Glue::Connection": ("ConnectionInput", "Name"),
    "AWS::Athena::WorkGroup": ("Name",),
    "AWS::Serverless::StateMachine": ("Name",),
    "AWS::CloudWatch::Alarm": ("AlarmName",),
    "AWS::RedshiftServerless::Namespace": ("NamespaceName",),
    "AWS::RedshiftServerless::Workgroup": ("WorkgroupName",),
    "AWS::DynamoDB::Table": ("TableName",),
}


@dataclass
class Stack:
    """One stack of the deployment, its parameters resolved; resources are resolved when first asked for."""

    name: str
    template: Template
    parameters: dict[str, Any]
    stack_name: str
    _resolved: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def stack_id(self) -> str:
        return _arn("cloudformation", f"stack/{self.stack_name}/{STACK_UUIDS[self.name]}")

    @property
    def suffix(self) -> str:
        return STACK_UUIDS[self.name].split("-")[0]

    def condition(self, name: str) -> bool:
        return bool(self._value(self.template.body["Conditions"][name]))

    def exists(self, logical: str) -> bool:
        condition = self.template.resources[logical].get("Condition")
        return condition is None or self.condition(condition)

    def rule_failures(self) -> list[str]:
        """The AssertDescription of every assertion of the Rules that would refuse these parameters."""
        return [
            assertion["AssertDescription"]
            for rule in self.template.body.get("Rules", {}).values()
            if self._value(rule.get("RuleCondition", True))
            for assertion in rule["Assertions"]
            if not self._value(assertion["Assert"])
        ]

    def properties(self, logical: str) -> dict[str, Any]:
        """A resource's properties with every intrinsic function resolved."""
        if logical not in self._resolved:
            if not self.exists(logical):
                raise LookupError(f"{self.name}: {logical} is not created in this deployment")
            self._resolved[logical] = self._value(self.template.resources[logical].get("Properties", {}))
        return self._resolved[logical]

    def of_type(self, resource_type: str) -> list[str]:
        """The logical ids of the created resources of one type."""
        return [n for n, r in self.template.resources.items() if r["Type"] == resource_type and self.exists(n)]

    def physical_name(self, logical: str) -> str:
        resource = self.template.resources[logical]
        path = _NAME_PROPERTY.get(resource["Type"])
        named = _nested(resource.get("Properties", {}), *path) if path else None
        if named is not None:
            return str(self._value(named))
        generated = f"{self.stack_name}-{logical}-TESTID"[:63]
        return generated.lower() if resource["Type"] == "AWS::S3::Bucket" else generated

    def ref(self, logical: str) -> str:
        """What `!Ref` of a resource or parameter gives."""
        if logical in self.parameters:
            return self.parameters[logical]  # type: ignore[no-any-return]
        pseudo = {
            "AWS::AccountId": ACCOUNT,
            "AWS::Region": REGION,
            "AWS::Partition": PARTITION,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackId": self.stack_id,
            "AWS::StackName": self.stack_name,
        }
        if logical in pseudo:
            return pseudo[logical]
        kind = self.template.resources[logical]["Type"]
        name = self.physical_name(logical)
        by_arn = {
            "AWS::SNS::Topic": _arn("sns", name),
            "AWS::Serverless::StateMachine": _arn("states", f"stateMachine:{name}"),
            "AWS::SecretsManager::Secret": _arn("secretsmanager", f"secret:{name}-AbCdEf"),
            "AWS::SQS::Queue": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}",
            "AWS::Serverless::LayerVersion": _arn("lambda", f"layer:{name}:1"),
            "AWS::KMS::Key": "0000aaaa-bbbb-4ccc-8ddd-eeeeffff0000",
            "AWS::EMRServerless::Application": "00fabcdefghijk0l",  # an application id, as EMR Serverless makes them
        }
        return by_arn.get(kind, name)

    def get_att(self, logical: str, attribute: str) -> str:
        """What `!GetAtt logical.attribute` gives."""
        kind = self.template.resources[logical]["Type"]
        name, ref = self.physical_name(logical), self.ref(logical)
        if kind == "Custom::ShippedCode":
            prefix = f"s3://{self.ref('ArtifactsBucket')}/code/{CODE_VERSION}"
            if attribute == "Prefix":
                return prefix
            if attribute == "CorePackage":
                return f"{prefix}/rental_analytics.zip"
            return f"{prefix}/{_snake(attribute.removesuffix('Script'))}.py"
        attributes: dict[tuple[str, str], str] = {
            ("AWS::S3::Bucket", "Arn"): f"arn:{PARTITION}:s3:::{name}",
            ("AWS::KMS::Key", "Arn"): _arn("kms", f"key/{ref}"),
            ("AWS::IAM::Role", "Arn"): f"arn:{PARTITION}:iam::{ACCOUNT}:role/{name}",
            ("AWS::IAM::InstanceProfile", "Arn"): f"arn:{PARTITION}:iam::{ACCOUNT}:instance-profile/{name}",
            ("AWS::Logs::LogGroup", "Arn"): _arn("logs", f"log-group:{name}:*"),
            ("AWS::SQS::Queue", "Arn"): _arn("sqs", name),
            ("AWS::DynamoDB::Table", "Arn"): _arn("dynamodb", f"table/{name}"),
            ("AWS::EMRServerless::Application", "Arn"): _arn("emr-serverless", f"/applications/{ref}"),
            ("AWS::SQS::Queue", "QueueName"): name,
            ("AWS::Serverless::Function", "Arn"): _arn("lambda", f"function:{name}"),
            ("AWS::Serverless::StateMachine", "Name"): name,
            ("AWS::SNS::Topic", "TopicName"): name,
            ("AWS::Redshift::Cluster", "Endpoint.Address"): f"{name}.abc.{REGION}.redshift.amazonaws.com",
            ("AWS::RedshiftServerless::Workgroup", "Workgroup.Endpoint.Address"): (
                f"{name}.{ACCOUNT}.{REGION}.redshift-serverless.amazonaws.com"
            ),
        }
        if (kind, attribute) == ("AWS::Serverless::Function", "Version"):
            return f"{attributes[(kind, 'Arn')]}:1"
        return attributes[(kind, attribute)]

    def arn(self, logical: str) -> str:
        return self.get_att(logical, "Arn")

    def _sub(self, text: str, variables: Mapping[str, Any]) -> str:
        def replace(match: re.Match[str]) -> str:
            expression = match.group(1)
            if expression.startswith("!"):
                return "${" + expression[1:] + "}"  # ${!Literal} stands for the text ${Literal}
            if expression in variables:
                return str(variables[expression])
            if "." in expression and not expression.startswith("AWS::"):
                logical, attribute = expression.split(".", 1)
                return self.get_att(logical, attribute)
            return str(self.ref(expression))

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    def _value(self, node: Any) -> Any:
        if isinstance(node, list):
            items = [self._value(item) for item in node]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            [(key, argument)] = node.items()
            function = key.removeprefix("Fn::")
            if function == "Ref":
                return NO_VALUE if argument == "AWS::NoValue" else self.ref(argument)
            if function == "GetAtt":
                logical, attribute = argument.split(".", 1) if isinstance(argument, str) else argument
                return self.get_att(logical, attribute)
            if function == "Sub":
                text, variables = (argument, {}) if isinstance(argument, str) else argument
                return self._sub(text, {k: self._value(v) for k, v in variables.items()})
            if function == "Join":
                separator, items = argument
                return separator.join(str(item) for item in self._value(items))
            if function == "Select":
                index, items = self._value(argument)
                return items[int(index)]
            if function == "Split":
                separator, text = self._value(argument)
                return text.split(separator)
            if function == "If":
                condition, when_true, when_false = argument
                return self._value(when_true if self.condition(condition) else when_false)
            if function == "Equals":
                left, right = self._value(argument)
                return str(left) == str(right)
            if function == "Not":
                return not self._value(argument[0])
            if function == "And":
                return all(self._value(item) for item in argument)
            if function == "Or":
                return any(self._value(item) for item in argument)
            if function == "Condition":
                return self.condition(argument)
            if function == "Contains":  # a rule function: whether the list holds the string
                values, item = self._value(argument)
                return item in values
            if function == "FindInMap":
                mapping, top, second = self._value(argument)
                return self.template.body["Mappings"][mapping][top][second]
        resolved = {key: self._value(value) for key, value in node.items()}
        return {key: value for key, value in resolved.items() if value is not NO_VALUE}


def _stack_name(logical: str) -> str:
    return f"{ROOT_STACK_NAME}-{logical}-1ABCDEFGHIJK"


@dataclass(frozen=True)
class Deployment:
    """The root stack and both nested stacks, for one choice of the warehouse."""

    root: Stack
    car_rental: Stack
    apartments: Stack

    @property
    def stacks(self) -> tuple[Stack, ...]:
        return (self.root, self.car_rental, self.apartments)


def _parameters(template: Template, given: Mapping[str, Any]) -> dict[str, Any]:
    values = {name: spec.get("Default") for name, spec in template.parameters.items()}
    values.update(given)
    for name, spec in template.parameters.items():
        if spec["Type"] == "CommaDelimitedList" and isinstance(values[name], str):
            values[name] = values[name].split(",") if values[name] else [""]
        if values[name] is None:
            raise ValueError(f"{template.path.name}: no value for the parameter {name}")
    return values


def root_stack(**overrides: Any) -> Stack:
    """The root stack with ROOT_PARAMETERS and these overrides (a CommaDelimitedList given as its text)."""
    return Stack(
        ROOT_STACK_NAME, ROOT_STACK, _parameters(ROOT_STACK, {**ROOT_PARAMETERS, **overrides}), ROOT_STACK_NAME
    )


@cache
def deployment(warehouse_mode: str = "serverless", **overrides: str) -> Deployment:
    """Both pipelines deployed, with the warehouse created as `warehouse_mode` says and these root parameters."""
    root = root_stack(WarehouseMode=warehouse_mode, **overrides)

    def nested(logical: str, template: Template) -> Stack:
        passed = root.properties(logical)["Parameters"]
        return Stack(logical, template, _parameters(template, passed), _stack_name(logical))

    return Deployment(root, nested("CarRental", CAR_RENTAL), nested("Apartments", APARTMENTS))


@dataclass(frozen=True)
class Role:
    """An IAM role of the deployment: its ARN, its inline policy documents and the managed policies it attaches."""

    arn: str
    documents: tuple[Mapping[str, Any], ...]
    managed: tuple[str, ...]


# What SAM adds to the role it makes for a function: basic logging and, with Tracing: Active, X-Ray.
SAM_FUNCTION_MANAGED = ("AWSLambdaBasicExecutionRole", "AWSXrayWriteOnlyAccess")


def _managed_name(arn: str) -> str:
    return arn.rsplit("/", 1)[1]


def role(d: Deployment, who: str) -> Role:
    """The role `<stack>/<logical id>` names: an AWS::IAM::Role, or the one SAM makes for a function or workflow."""
    stack_name, logical = who.split("/")
    [stack] = [s for s in d.stacks if s.name == stack_name]
    kind = stack.template.resources[logical]["Type"]
    props = stack.properties(logical)
    if kind == "AWS::IAM::Role":
        documents = tuple(p["PolicyDocument"] for p in props.get("Policies", []))
        managed = tuple(_managed_name(arn) for arn in props.get("ManagedPolicyArns", []))
        return Role(stack.arn(logical), documents, managed)
    if kind in ("AWS::Serverless::Function", "AWS::Serverless::StateMachine"):
        policies = props.get("Policies", [])
        if not all(isinstance(p, dict) and "Statement" in p for p in policies):
            raise NotImplementedError(f"{who}: only inline policy documents are read, not SAM policy templates")
        name = f"{stack.stack_name}-{logical}Role-TESTID"
        managed = SAM_FUNCTION_MANAGED if kind == "AWS::Serverless::Function" else ()
        return Role(f"arn:{PARTITION}:iam::{ACCOUNT}:role/{name}", tuple(policies), managed)
    raise ValueError(f"{who} is a {kind}, which has no role")


def default_topic_policy(topic_arn: str) -> dict[str, Any]:
    """The access policy SNS gives a topic created without one (SNS developer guide, sns-access-policy-use-cases):
    every principal may use it on behalf of the owner's account."""
    actions = ["GetTopicAttributes", "SetTopicAttributes", "AddPermission", "RemovePermission", "DeleteTopic"]
    actions += ["Subscribe", "ListSubscriptionsByTopic", "Publish"]
    return {
        "Statement": [
            {
                "Sid": "__default_statement_ID",
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": [f"SNS:{a}" for a in actions],
                "Resource": topic_arn,
                "Condition": {"StringEquals": {"AWS:SourceOwner": ACCOUNT}},
            }
        ]
    }


def resource_policy(d: Deployment, resource_arn: str) -> tuple[Mapping[str, Any], bool] | None:
    """The policy of the resource an ARN names, and whether it is a KMS key policy; None where there is none."""
    for stack in d.stacks:
        for logical in stack.of_type("AWS::S3::BucketPolicy"):
            props = stack.properties(logical)
            bucket = f"arn:{PARTITION}:s3:::{props['Bucket']}"
            if resource_arn == bucket or resource_arn.startswith(bucket + "/"):
                return props["PolicyDocument"], False
        for logical in stack.of_type("AWS::KMS::Key"):
            if resource_arn == stack.arn(logical):
                return stack.properties(logical)["KeyPolicy"], True
        for logical in stack.of_type("AWS::SNS::Topic"):
            if resource_arn == stack.ref(logical):
                return default_topic_policy(resource_arn), False
    return None


def filled_definition(stack: Stack, machine: str) -> dict[str, Any]:
    """A workflow's definition with its DefinitionSubstitutions as the deployment fills them."""
    props = stack.properties(machine)
    text = (stack.template.path.parent / props["DefinitionUri"]).resolve().read_text()
    for name, value in props["DefinitionSubstitutions"].items():
        text = text.replace("${" + name + "}", str(value))
    return dict(json.loads(text))
