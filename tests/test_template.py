"""The SAM template and the files it points at agree, so `sam build` and `sam local invoke -e` keep working."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from aws_lambda_powertools.utilities.parser.models import S3Model

from tests.repo import ROOT


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
    if TEMPLATE["Resources"][name].get("Metadata", {}).get("BuildMethod") == "makefile":
        # Built by the Makefile's build-<Name> target, which copies the handler from its folder.
        recipe = (ROOT / "Makefile").read_text().split(f"build-{name}:", 1)[1].split("\n\n", 1)[0]
        [source_path] = [ROOT / word for word in recipe.split() if word.endswith(f"/{module}.py")]
        source = source_path
    else:
        source = ROOT / props["CodeUri"] / f"{module}.py"
        assert (ROOT / props["CodeUri"] / "requirements.txt").is_file()
    assert f"def {function}(" in source.read_text()


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


BUCKETS = [name for name, r in TEMPLATE["Resources"].items() if r["Type"] == "AWS::S3::Bucket"]


def _policy_of(bucket: str) -> dict[str, Any]:
    [policy] = [
        r["Properties"]["PolicyDocument"]
        for r in TEMPLATE["Resources"].values()
        if r["Type"] == "AWS::S3::BucketPolicy" and r["Properties"]["Bucket"] == {"Ref": bucket}
    ]
    return policy


@pytest.mark.parametrize("bucket", BUCKETS)
def test_every_bucket_is_encrypted_versioned_private_and_tls_only(bucket: str):
    props = TEMPLATE["Resources"][bucket]["Properties"]
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert all(props["PublicAccessBlockConfiguration"].values()) and len(props["PublicAccessBlockConfiguration"]) == 4
    assert props["LifecycleConfiguration"]["Rules"]
    [deny] = [s for s in _policy_of(bucket)["Statement"] if s["Effect"] == "Deny"]
    assert (deny["Action"], deny["Principal"]) == ("s3:*", "*")
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def _statements() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for name, resource in TEMPLATE["Resources"].items():
        props = resource.get("Properties", {})
        documents = [p for p in props.get("Policies", []) if isinstance(p, dict) and "Statement" in p]
        documents += [
            p["PolicyDocument"] for p in props.get("Policies", []) if isinstance(p, dict) and "PolicyDocument" in p
        ]
        for document in documents:
            found += [(name, statement) for statement in document["Statement"]]
    return found


def test_no_policy_allows_every_action_on_every_resource():
    statements = _statements()
    assert len(statements) > 20
    for name, statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        assert not any(a == "*" or a.endswith(":*") for a in actions), name
        if "*" in resources:
            # A few AWS actions take no resource ARN; they must stay few and named.
            assert len(actions) <= 8 and statement["Effect"] == "Allow", name


def test_the_topic_and_the_cluster_disks_are_encrypted_with_a_rotated_key():
    resources = TEMPLATE["Resources"]
    assert resources["AlertTopic"]["Properties"]["KmsMasterKeyId"] == {"Ref": "PipelineKey"}
    assert resources["PipelineKey"]["Properties"]["EnableKeyRotation"] is True
    encryption = resources["EmrSecurityConfiguration"]["Properties"]["SecurityConfiguration"]["EncryptionConfiguration"]
    assert encryption["EnableAtRestEncryption"] is True


def test_the_athena_workgroup_enforces_its_result_location_and_a_scan_limit():
    config = TEMPLATE["Resources"]["AthenaWorkGroup"]["Properties"]["WorkGroupConfiguration"]
    assert config["EnforceWorkGroupConfiguration"] is True
    assert config["BytesScannedCutoffPerQuery"] == {"Ref": "AthenaBytesScannedCutoff"}
    assert config["ResultConfiguration"]["EncryptionConfiguration"]["EncryptionOption"] == "SSE_S3"


def test_the_named_queries_are_the_sql_files_the_local_run_uses():
    from rental_analytics.car_rental.contract import INSIGHT_QUERIES
    from rental_analytics.car_rental.insights import query_text

    mapped = TEMPLATE["Mappings"]["InsightQueries"]
    assert sorted(entry["Name"] for entry in mapped.values()) == sorted(INSIGHT_QUERIES)
    for entry in mapped.values():
        assert entry["Sql"] == query_text(entry["Name"]), (
            f"copy rental_analytics/car_rental/insights/{entry['Name']}.sql into the template"
        )
    named = [r for r in TEMPLATE["Resources"].values() if r["Type"] == "AWS::Athena::NamedQuery"]
    assert len(named) == len(INSIGHT_QUERIES)


def test_the_job_failure_alarm_is_as_documented():
    alarm = TEMPLATE["Resources"]["JobFailureAlarm"]["Properties"]
    assert (alarm["Threshold"], alarm["Period"], alarm["EvaluationPeriods"]) == (1, 300, 1)
    assert alarm["MetricName"] == "ExecutionsFailed" and alarm["AlarmActions"] == [{"Ref": "AlertTopic"}]


def test_the_cluster_defaults_are_as_documented():
    params = TEMPLATE["Parameters"]
    defaults = {name: params[name]["Default"] for name in params if "Default" in params[name]}
    assert defaults["EmrReleaseLabel"] == "emr-7.7.0"
    assert (defaults["MasterInstanceType"], defaults["CoreInstanceType"], defaults["CoreInstanceCount"]) == (
        "m5.xlarge",
        "r5.2xlarge",
        2,
    )
    assert (defaults["SparkShufflePartitions"], defaults["SparkMemoryFraction"], defaults["SparkExecutorMemory"]) == (
        "200",
        "0.8",
        "8g",
    )
    assert "Default" not in params["SubnetId"]


def test_warnings_go_to_their_own_topic_and_say_where_to_look():
    resources = TEMPLATE["Resources"]
    warnings = {
        name: r["Properties"]
        for name, r in resources.items()
        if r["Type"] == "AWS::CloudWatch::Alarm" and r["Properties"]["AlarmActions"] == [{"Ref": "WarningTopic"}]
    }
    assert set(warnings) == {
        "CarRentalSlowRunAlarm",
        "ApartmentsSlowRunAlarm",
        "ApartmentsUnusualDataAlarm",
        "EmrYarnMemoryAlarm",
        "RedshiftCpuAlarm",
        "RedshiftDiskAlarm",
    }
    assert all("Warning - " in alarm["AlarmDescription"] for alarm in warnings.values())
    assert warnings["EmrYarnMemoryAlarm"]["Threshold"] == 20  # under 20% available is over 80% used
    assert resources["WarningTopic"]["Properties"]["KmsMasterKeyId"] == {"Ref": "PipelineKey"}
    report = resources["PublishReportFunction"]["Properties"]["Environment"]["Variables"]
    assert report["WARNING_TOPIC_ARN"] == {"Ref": "WarningTopic"}


def test_the_provisioned_warehouse_is_encrypted_private_and_backed_up():
    params = TEMPLATE["Parameters"]
    assert (params["RedshiftNodeType"]["Default"], params["RedshiftNodeCount"]["Default"]) == ("ra3.xlplus", 2)
    assert params["WarehouseMode"]["AllowedValues"] == ["serverless", "provisioned", "existing"]
    cluster = TEMPLATE["Resources"]["RedshiftCluster"]
    assert cluster["Condition"] == "ProvisionedWarehouse"
    props = cluster["Properties"]
    assert (props["Encrypted"], props["PubliclyAccessible"]) == (True, False)
    assert props["AutomatedSnapshotRetentionPeriod"] >= 1
    assert props["VpcSecurityGroupIds"] == [{"Ref": "DatabaseSecurityGroupId"}]


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def test_events_the_gate_fails_are_kept_in_an_encrypted_queue_that_alarms():
    failure = FUNCTIONS["ValidateUploadFunction"]["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]
    assert failure == {"Type": "SQS", "Destination": {"GetAtt": "GateFailedEventsQueue.Arn"}}
    queue = TEMPLATE["Resources"]["GateFailedEventsQueue"]["Properties"]
    assert queue["KmsMasterKeyId"] == {"Ref": "PipelineKey"}
    alarm = TEMPLATE["Resources"]["GateFailedEventsAlarm"]["Properties"]
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"GetAtt": "GateFailedEventsQueue.QueueName"}}]
    assert alarm["AlarmActions"] == [{"Ref": "AlertTopic"}]
    outputs = TEMPLATE["Outputs"]
    assert outputs["GateFailedEventsQueueUrl"]["Value"] == {"Ref": "GateFailedEventsQueue"}
    assert outputs["UploadGateFunctionName"]["Value"] == {"Ref": "ValidateUploadFunction"}


def test_the_gate_may_stage_copies_and_the_job_may_read_them():
    gate = [s for name, s in _statements() if name == "ValidateUploadFunction"]
    staged_writes = [s for s in gate if "staged/*" in json.dumps(s["Resource"]) and "s3:PutObject" in _actions(s)]
    assert staged_writes
    assert any("s3:ListBucketVersions" in _actions(s) for s in gate)
    job = [s for name, s in _statements() if name == "EmrInstanceRole"]
    assert any("staged/*" in json.dumps(s["Resource"]) and "s3:GetObject" in _actions(s) for s in job)
    rules = TEMPLATE["Resources"]["DataBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    [staged_rule] = [r for r in rules if r.get("Prefix") == "staged/"]
    assert staged_rule["ExpirationInDays"] == {"Ref": "StagedRetentionDays"}


def test_every_pass_role_names_the_service_it_passes_to():
    passes = [(name, s) for name, s in _statements() if "iam:PassRole" in _actions(s)]
    assert passes
    for name, statement in passes:
        assert "iam:PassedToService" in statement["Condition"]["StringEquals"], name


def test_emr_may_use_the_key_that_encrypts_the_cluster_disks():
    emr = [s for name, s in _statements() if name == "EmrServiceRole"]
    uses = [s for s in emr if {"kms:Decrypt", "kms:GenerateDataKey*", "kms:DescribeKey"} <= set(_actions(s))]
    assert uses and uses[0]["Resource"] == {"GetAtt": "PipelineKey.Arn"}
    [grant] = [s for s in emr if _actions(s) == ["kms:CreateGrant"]]
    assert grant["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}


def test_the_workflow_may_create_emrs_service_linked_role_and_nothing_else():
    workflow = [s for name, s in _statements() if name == "CarRentalStateMachine"]
    [linked] = [s for s in workflow if "iam:CreateServiceLinkedRole" in _actions(s)]
    assert linked["Condition"] == {"StringLike": {"iam:AWSServiceName": "elasticmapreduce.amazonaws.com"}}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_each_function_logs_to_a_group_with_retention(name: str):
    group = FUNCTIONS[name]["LoggingConfig"]["LogGroup"]["Ref"]
    assert TEMPLATE["Resources"][group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_replaced_table_versions_expire_soon_and_the_stack_is_tagged():
    rules = TEMPLATE["Resources"]["DataBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    for prefix in ("processed/", "analytics/"):
        [rule] = [r for r in rules if r.get("Prefix") == prefix]
        assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": {"Ref": "ReplacedTableVersionDays"}}
    assert 'tags = "project=\\"rental-analytics\\""' in (ROOT / "samconfig.toml").read_text()
