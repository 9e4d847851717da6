"""The SAM templates and the files they point at agree, so `sam build` and `sam local invoke -e` keep working."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any, Callable

import pytest
from aws_lambda_powertools.utilities.parser.models import S3Model

from rental_analytics.car_rental.gate.ids import MAX_HASHED_ROWS
from rental_analytics.car_rental.sizing import ClusterSizing
from tests.repo import ROOT
from tests.templates import ALL, APARTMENTS, CAR_RENTAL, ROOT_STACK, Template

FUNCTIONS: dict[str, tuple[Template, dict[str, Any]]] = {
    name: (template, props) for template in ALL for name, props in template.of_type("AWS::Serverless::Function").items()
}


def _resource(name: str) -> dict[str, Any]:
    [found] = [t.resources[name] for t in ALL if name in t.resources]
    return found


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_each_function_handler_exists_with_its_requirements(name: str):
    template, props = FUNCTIONS[name]
    module, function = props["Handler"].rsplit(".", 1)
    if template.resources[name].get("Metadata", {}).get("BuildMethod") == "makefile":
        # Built by the Makefile's build-<Name> target, which copies the handler from its folder.
        recipe = (ROOT / "Makefile").read_text().split(f"build-{name}:", 1)[1].split("\n\n", 1)[0]
        [source_path] = [ROOT / word for word in recipe.split() if word.endswith(f"/{module}.py")]
        source = source_path
    else:
        # sam build resolves CodeUri from the folder of the template that names it.
        folder = (template.path.parent / props["CodeUri"]).resolve()
        source = folder / f"{module}.py"
        assert (folder / "requirements.txt").is_file()
    assert f"def {function}(" in source.read_text()


def test_the_gate_listens_to_raw_uploads_of_the_data_bucket():
    [event] = FUNCTIONS["ValidateUploadFunction"][1]["Events"].values()
    assert event["Properties"]["Bucket"] == {"Ref": "DataBucket"}
    assert event["Properties"]["Filter"]["S3Key"]["Rules"] == [{"Name": "prefix", "Value": "raw/"}]


def test_the_gate_has_memory_for_its_reader_and_every_id_hash_it_may_keep():
    # The reader peaks near 340 MiB whatever the file's size; the id check keeps 8 bytes a row, up to
    # MAX_HASHED_ROWS rows, and a byte a row more as it compares them (docs/benchmarks.md).
    needed_mib = 340 + MAX_HASHED_ROWS * 9 / 2**20
    assert FUNCTIONS["ValidateUploadFunction"][1]["MemorySize"] >= 1.25 * needed_mib


@pytest.mark.parametrize("path", sorted((ROOT / "events").glob("s3_put_*.json")), ids=lambda p: p.name)
def test_the_sample_events_parse_as_s3_notifications(path: Path):
    event = S3Model.model_validate(json.loads(path.read_text()))
    assert event.Records[0].s3.object is not None


def test_the_local_invoke_environment_covers_every_gate_variable():
    variables = set(FUNCTIONS["ValidateUploadFunction"][1]["Environment"]["Variables"]) - {"POWERTOOLS_SERVICE_NAME"}
    env = json.loads((ROOT / "events" / "env.json").read_text())
    assert variables <= set(env["ValidateUploadFunction"])


BUCKETS = [(t, name) for t in ALL for name in t.of_type("AWS::S3::Bucket")]


def _policy_of(template: Template, bucket: str) -> dict[str, Any]:
    [policy] = [
        props["PolicyDocument"]
        for props in template.of_type("AWS::S3::BucketPolicy").values()
        if props["Bucket"] == {"Ref": bucket}
    ]
    return policy


@pytest.mark.parametrize(("template", "bucket"), BUCKETS, ids=lambda v: v if isinstance(v, str) else v.path.name)
def test_every_bucket_is_encrypted_versioned_private_and_tls_only(template: Template, bucket: str):
    props = template.resources[bucket]["Properties"]
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert all(props["PublicAccessBlockConfiguration"].values()) and len(props["PublicAccessBlockConfiguration"]) == 4
    assert props["LifecycleConfiguration"]["Rules"]
    [deny] = [s for s in _policy_of(template, bucket)["Statement"] if s["Effect"] == "Deny"]
    assert (deny["Action"], deny["Principal"]) == ("s3:*", "*")
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def _statements() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for name, resource in [item for template in ALL for item in template.resources.items()]:
        props = resource.get("Properties", {})
        documents = [p for p in props.get("Policies", []) if isinstance(p, dict) and "Statement" in p]
        documents += [
            p["PolicyDocument"] for p in props.get("Policies", []) if isinstance(p, dict) and "PolicyDocument" in p
        ]
        for document in documents:
            found += [(name, statement) for statement in document["Statement"] for statement in _branches(statement)]
    return found


def _branches(statement: dict[str, Any]) -> list[dict[str, Any]]:
    """A statement, or each branch of an `!If` that gives one (not AWS::NoValue)."""
    if "If" not in statement:
        return [statement]
    return [branch for branch in statement["If"][1:] if branch != {"Ref": "AWS::NoValue"}]


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
    assert _resource("AlertTopic")["Properties"]["KmsMasterKeyId"] == {"Ref": "PipelineKey"}
    assert _resource("PipelineKey")["Properties"]["EnableKeyRotation"] is True
    # The nested stack gets the key's ARN under the same name.
    assert CAR_RENTAL.body["Parameters"]["PipelineKey"] and _passed(CAR_RENTAL)["PipelineKey"] == {
        "GetAtt": "PipelineKey.Arn"
    }
    encryption = _resource("EmrSecurityConfiguration")["Properties"]["SecurityConfiguration"]["EncryptionConfiguration"]
    assert encryption["EnableAtRestEncryption"] is True


def test_the_athena_workgroup_enforces_its_result_location_and_a_scan_limit():
    config = CAR_RENTAL.resources["AthenaWorkGroup"]["Properties"]["WorkGroupConfiguration"]
    assert config["EnforceWorkGroupConfiguration"] is True
    assert config["BytesScannedCutoffPerQuery"] == {"Ref": "AthenaBytesScannedCutoff"}
    assert config["ResultConfiguration"]["EncryptionConfiguration"]["EncryptionOption"] == "SSE_S3"


def test_the_named_queries_are_the_sql_files_the_local_run_uses():
    from rental_analytics.car_rental.contract import INSIGHT_QUERIES
    from rental_analytics.car_rental.insights import query_text

    mapped = CAR_RENTAL.body["Mappings"]["InsightQueries"]
    assert sorted(entry["Name"] for entry in mapped.values()) == sorted(INSIGHT_QUERIES)
    for entry in mapped.values():
        assert entry["Sql"] == query_text(entry["Name"]), (
            f"copy rental_analytics/car_rental/insights/{entry['Name']}.sql into the template"
        )
    named = CAR_RENTAL.of_type("AWS::Athena::NamedQuery")
    assert len(named) == len(INSIGHT_QUERIES)


@pytest.mark.parametrize(
    ("name", "metric"), [("JobFailureAlarm", "ExecutionsFailed"), ("JobStoppedAlarm", "ExecutionsAborted")]
)
def test_the_job_alarms_are_as_documented(name: str, metric: str):
    # A stopped execution runs no failure path of its own: only this alarm tells anyone.
    alarm = CAR_RENTAL.resources[name]["Properties"]
    assert (alarm["Threshold"], alarm["Period"], alarm["EvaluationPeriods"]) == (1, 300, 1)
    assert alarm["MetricName"] == metric and alarm["AlarmActions"] == [{"Ref": "AlertTopic"}]
    assert alarm["Dimensions"] == [{"Name": "StateMachineArn", "Value": {"Ref": "CarRentalStateMachine"}}]


def test_the_cluster_defaults_are_as_documented():
    params = CAR_RENTAL.parameters
    defaults = {name: params[name]["Default"] for name in params if "Default" in params[name]}
    assert defaults["EmrReleaseLabel"] == "emr-7.7.0"
    assert defaults["MasterInstanceType"] == "m5.xlarge"
    assert defaults["CoreInstanceTypes"] == "r6g.2xlarge,r7g.2xlarge,r5.2xlarge,r6i.2xlarge"
    sizing = ClusterSizing()
    assert (int(defaults["CoreBytesPerUnit"]), int(defaults["CoreMinUnits"]), int(defaults["CoreMaxUnits"])) == (
        sizing.bytes_per_unit,
        sizing.min_units,
        sizing.max_units,
    )
    assert int(defaults["CoreOnDemandUnits"]) == sizing.on_demand_units
    assert (defaults["SparkShufflePartitions"], defaults["SparkMemoryFraction"], defaults["SparkExecutorMemory"]) == (
        "200",
        "0.8",
        "8g",
    )
    assert "Default" not in params["SubnetId"] and params["SubnetId"]["Type"] == "AWS::EC2::Subnet::Id"


def test_warnings_go_to_their_own_topic_and_say_where_to_look():
    warnings = {
        name: props
        for template in ALL
        for name, props in template.of_type("AWS::CloudWatch::Alarm").items()
        if props["AlarmActions"] == [{"Ref": "WarningTopic"}]
    }
    assert set(warnings) == {
        "CarRentalSlowRunAlarm",
        "ApartmentsSlowRunAlarm",
        "ApartmentsUnusualDataAlarm",
        "EmrYarnMemoryAlarm",
        "RedshiftCpuAlarm",
        "RedshiftDiskAlarm",
    }
    assert all("Warning - " in json.dumps(alarm["AlarmDescription"]) for alarm in warnings.values())
    assert warnings["EmrYarnMemoryAlarm"]["Threshold"] == 20  # under 20% available is over 80% used
    assert _resource("WarningTopic")["Properties"]["KmsMasterKeyId"] == {"Ref": "PipelineKey"}
    report = _resource("PublishReportFunction")["Properties"]["Environment"]["Variables"]
    assert report["WARNING_TOPIC_ARN"] == {"Ref": "WarningTopic"}


def test_the_provisioned_warehouse_is_encrypted_private_and_backed_up():
    params = APARTMENTS.parameters
    assert (params["RedshiftNodeType"]["Default"], params["RedshiftNodeCount"]["Default"]) == ("ra3.xlplus", "2")
    assert params["WarehouseMode"]["AllowedValues"] == ["serverless", "provisioned", "existing"]
    cluster = APARTMENTS.resources["RedshiftCluster"]
    assert cluster["Condition"] == "ProvisionedWarehouse"
    props = cluster["Properties"]
    assert (props["Encrypted"], props["PubliclyAccessible"]) == (True, False)
    assert props["AutomatedSnapshotRetentionPeriod"] >= 1
    assert props["VpcSecurityGroupIds"] == [{"Ref": "DatabaseSecurityGroupId"}]


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def test_events_the_gate_fails_are_kept_in_an_encrypted_queue_that_alarms():
    failure = FUNCTIONS["ValidateUploadFunction"][1]["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]
    assert failure == {"Type": "SQS", "Destination": {"GetAtt": "GateFailedEventsQueue.Arn"}}
    queue = CAR_RENTAL.resources["GateFailedEventsQueue"]["Properties"]
    assert queue["KmsMasterKeyId"] == {"Ref": "PipelineKey"}
    alarm = CAR_RENTAL.resources["GateFailedEventsAlarm"]["Properties"]
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"GetAtt": "GateFailedEventsQueue.QueueName"}}]
    assert alarm["AlarmActions"] == [{"Ref": "AlertTopic"}]
    outputs = CAR_RENTAL.outputs
    assert outputs["GateFailedEventsQueueUrl"]["Value"] == {"Ref": "GateFailedEventsQueue"}
    assert outputs["UploadGateFunctionName"]["Value"] == {"Ref": "ValidateUploadFunction"}


def test_the_gate_may_stage_copies_and_the_job_may_read_them():
    gate = [s for name, s in _statements() if name == "ValidateUploadFunction"]
    staged_writes = [s for s in gate if "staged/*" in json.dumps(s["Resource"]) and "s3:PutObject" in _actions(s)]
    assert staged_writes
    assert any("s3:ListBucketVersions" in _actions(s) for s in gate)
    job = [s for name, s in _statements() if name == "EmrInstanceRole"]
    assert any("staged/*" in json.dumps(s["Resource"]) and "s3:GetObject" in _actions(s) for s in job)
    rules = CAR_RENTAL.resources["DataBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
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
    assert uses and uses[0]["Resource"] == {"Ref": "PipelineKey"}
    [grant] = [s for s in emr if _actions(s) == ["kms:CreateGrant"]]
    assert grant["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}


def test_the_workflow_may_create_emrs_service_linked_role_and_nothing_else():
    workflow = [s for name, s in _statements() if name == "CarRentalStateMachine"]
    [linked] = [s for s in workflow if "iam:CreateServiceLinkedRole" in _actions(s)]
    assert linked["Condition"] == {"StringLike": {"iam:AWSServiceName": "elasticmapreduce.amazonaws.com"}}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_each_function_logs_to_a_group_with_retention(name: str):
    template, props = FUNCTIONS[name]
    group = props["LoggingConfig"]["LogGroup"]["Ref"]
    assert template.resources[group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_replaced_table_versions_expire_soon_and_the_stack_is_tagged():
    rules = CAR_RENTAL.resources["DataBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    for prefix in ("processed/", "analytics/"):
        [rule] = [r for r in rules if r.get("Prefix") == prefix]
        assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": {"Ref": "ReplacedTableVersionDays"}}
    assert 'tags = "project=\\"rental-analytics\\""' in (ROOT / "samconfig.toml").read_text()


NESTED = {"CarRental": CAR_RENTAL, "Apartments": APARTMENTS}


def _passed(nested: Template) -> dict[str, Any]:
    [props] = [
        props
        for props in ROOT_STACK.of_type("AWS::Serverless::Application").values()
        if (ROOT_STACK.path.parent / props["Location"]).resolve() == nested.path.resolve()
    ]
    return props["Parameters"]


def test_the_root_nests_one_stack_per_pipeline_car_rental_on_and_apartments_off_by_default():
    applications = ROOT_STACK.of_type("AWS::Serverless::Application")
    assert {n: p["Location"] for n, p in applications.items()} == {
        "CarRental": "stacks/car_rental.yaml",
        "Apartments": "stacks/apartments.yaml",
    }
    conditions = ROOT_STACK.body["Conditions"]
    for name, switch in (("CarRental", "DeployCarRental"), ("Apartments", "DeployApartments")):
        condition = ROOT_STACK.resources[name]["Condition"]
        assert conditions[condition] == {"Equals": [{"Ref": switch}, "true"]}
    params = ROOT_STACK.parameters
    assert (params["DeployCarRental"]["Default"], params["DeployApartments"]["Default"]) == ("true", "false")
    assert "CAPABILITY_AUTO_EXPAND" in (ROOT / "samconfig.toml").read_text()


@pytest.mark.parametrize("nested", NESTED.values(), ids=NESTED)
def test_the_root_passes_every_parameter_of_a_nested_stack_with_the_same_default(nested: Template):
    passed = _passed(nested)
    assert set(passed) == set(nested.parameters)
    for name, value in passed.items():
        refs = re.findall(r"'Ref': '(\w+)'", str(value))
        for ref in refs:
            if ref in nested.parameters and "Default" in nested.parameters[name]:
                assert ROOT_STACK.parameters[ref].get("Default") == nested.parameters[name]["Default"], name


def test_a_pipeline_left_off_needs_none_of_its_parameters():
    """The root has a default for every setting; those a pipeline cannot do without are demanded by a rule
    only when that pipeline is deployed."""
    assert all("Default" in p for p in ROOT_STACK.parameters.values())
    demanded: dict[str, set[str]] = {}
    for rule in (r for r in ROOT_STACK.body["Rules"].values() if "RuleCondition" in r):  # not the rules on values
        [switch] = re.findall(r"Deploy\w+", str(rule["RuleCondition"]))
        if rule["RuleCondition"] == {"Equals": [{"Ref": switch}, "true"]}:  # not the narrower rules
            demanded.setdefault(switch, set()).update(re.findall(r"'Ref': '(\w+)'", str(rule["Assertions"])))
    for switch, nested in (("DeployCarRental", CAR_RENTAL), ("DeployApartments", APARTMENTS)):
        without_default = {
            value["Ref"]
            for name, value in _passed(nested).items()
            if "Default" not in nested.parameters[name] and value.get("Ref") in ROOT_STACK.parameters
        }
        empty = {name for name in without_default if ROOT_STACK.parameters[name]["Default"] == ""}
        assert demanded[switch] == empty, switch


def test_root_outputs_name_outputs_the_nested_stacks_have():
    for name, output in ROOT_STACK.outputs.items():
        value = json.dumps(output["Value"])
        for stack, nested_output in re.findall(r'"(\w+)\.Outputs\.(\w+)"', value):
            assert nested_output in NESTED[stack].outputs, name
            assert output["Condition"] == ROOT_STACK.resources[stack]["Condition"], name


def test_each_pipeline_owns_its_data_bucket_and_the_apartments_jobs_cannot_touch_car_rental_data():
    assert "DataBucket" in CAR_RENTAL.of_type("AWS::S3::Bucket")
    assert "DataBucket" in APARTMENTS.of_type("AWS::S3::Bucket")
    assert not ROOT_STACK.of_type("AWS::S3::Bucket").keys() & {"DataBucket"}
    # The gate listens to its own stack's bucket only, and nothing in the apartments stack names it.
    assert "raw/apartments" not in CAR_RENTAL.path.read_text()
    glue = json.dumps(APARTMENTS.resources["GlueJobRole"]["Properties"])
    for zone in ("raw", "processed", "quarantine", "curated"):
        assert f"${{DataBucket.Arn}}/{zone}/" in glue


def test_the_crawler_has_one_target_per_table_named_as_the_queries_read_it():
    from rental_analytics.car_rental.contract import ANALYTICS_SCHEMAS, INSIGHT_QUERIES, PROCESSED_SCHEMAS
    from rental_analytics.car_rental.insights import query_text

    crawler = CAR_RENTAL.resources["Crawler"]["Properties"]
    paths = [target["Path"]["Sub"] for target in crawler["Targets"]["S3Targets"]]
    tables = {path.rstrip("/").split("/")[-1]: path.rstrip("/").split("/")[-2] for path in paths}
    assert len(paths) == len(tables)
    assert tables == {**dict.fromkeys(PROCESSED_SCHEMAS, "processed"), **dict.fromkeys(ANALYTICS_SCHEMAS, "analytics")}
    # Tables at zone/table: a crawl can never merge sibling folders into one partitioned table.
    assert json.loads(crawler["Configuration"])["Grouping"] == {"TableLevelConfiguration": 2}
    read = {table for name in INSIGHT_QUERIES for table in re.findall(r"FROM (\w+)", query_text(name))}
    assert read <= set(tables)


def test_the_glue_jobs_log_to_stack_owned_groups_with_retention():
    """Glue 5.0 has no continuous logging options: a job logs to <prefix>/error and <prefix>/output."""
    from tests.deployed import deployment
    from tests.iam_calls import glue_log_groups

    apartments = deployment().apartments
    groups = {
        apartments.physical_name(name): APARTMENTS.resources[name]["Properties"]["RetentionInDays"]
        for name in apartments.of_type("AWS::Logs::LogGroup")
    }
    for name, job in APARTMENTS.of_type("AWS::Glue::Job").items():
        assert job["GlueVersion"] == "5.0", name
        assert not {"--enable-continuous-cloudwatch-log", "--continuous-log-logGroup"} & set(job["DefaultArguments"])
        for group in glue_log_groups(apartments, name):
            assert groups.get(group) == {"Ref": "LogRetentionDays"}, (name, group)


def test_every_bound_of_the_workflow_comes_from_a_template_setting():
    # No execution timeout (a timed-out execution would run none of its failure paths): each state that waits
    # has its own bound, filled from a parameter.
    machine = CAR_RENTAL.resources["CarRentalStateMachine"]["Properties"]["DefinitionSubstitutions"]
    for name in ("SparkStepTimeoutSeconds", "ClusterTerminationTimeoutSeconds", "AthenaQueryTimeoutSeconds",
                 "RunLockPollSeconds", "RunLockMaxPolls", "CrawlerPollSeconds", "CrawlerMaxPolls"):  # fmt: skip
        assert machine[name] == {"Ref": name}
        assert ROOT_STACK.resources["CarRental"]["Properties"]["Parameters"][name] == {"Ref": name}
    assert "ExecutionTimedOutAlarm" not in CAR_RENTAL.resources


def test_the_run_lock_table_is_the_one_the_workflow_locks():
    table = CAR_RENTAL.resources["RunLockTable"]["Properties"]
    assert table["KeySchema"] == [{"AttributeName": "data_root", "KeyType": "HASH"}]
    assert table["BillingMode"] == "PAY_PER_REQUEST" and table["SSESpecification"]["SSEEnabled"] is True
    machine = CAR_RENTAL.resources["CarRentalStateMachine"]["Properties"]["DefinitionSubstitutions"]
    assert machine["RunLockTable"] == {"Ref": "RunLockTable"}


def test_the_root_stack_exports_every_output_the_commands_read():
    """verify-deployment, redrive-uploads and `make invoke-gate` read the root stack's outputs by name."""
    from rental_analytics.car_rental.verify import REQUIRED_OUTPUTS

    read = {*REQUIRED_OUTPUTS, "UploadGateFunctionName", "GateFailedEventsQueueUrl", "AlertTopicArn"}
    assert read <= set(ROOT_STACK.outputs)


def test_an_existing_warehouse_must_come_with_its_login_and_the_role_its_copy_reads_with():
    rule = ROOT_STACK.body["Rules"]["AnExistingWarehouseNeedsItsLoginAndCopyRole"]
    assert {"Equals": [{"Ref": "WarehouseMode"}, "existing"]} in rule["RuleCondition"]["And"]
    demanded = set(re.findall(r"'Ref': '(\w+)'", str(rule["Assertions"])))
    assert demanded == {"ExistingWarehouseHost", "ExistingWarehouseSecretArn", "ExistingWarehouseCopyRoleArn"}
    load = APARTMENTS.resources["LoadJob"]["Properties"]["DefaultArguments"]
    assert load["--copy-role-arn"] == {
        "If": ["ManagedWarehouse", {"GetAtt": "RedshiftCopyRole.Arn"}, {"Ref": "ExistingWarehouseCopyRoleArn"}]
    }
    for warehouse in ("RedshiftNamespace", "RedshiftCluster"):
        assert APARTMENTS.resources[warehouse]["Properties"]["IamRoles"] == [{"GetAtt": "RedshiftCopyRole.Arn"}]


def test_the_extract_on_glue_uses_the_mysql_driver_glue_ships():
    from rental_analytics.apartments.db_url import MySqlDriver

    extract = APARTMENTS.resources["ExtractJob"]["Properties"]["DefaultArguments"]
    assert MySqlDriver(extract["--mysql-driver"]).driver_class == "com.mysql.cj.jdbc.Driver"


def _days_kept(rules: list[dict[str, Any]], key: str, days_of: Callable[[dict[str, Any]], Any]) -> int | None:
    """How long a key's versions live under a lifecycle: the shortest of the rules whose prefix it has."""
    found = [days_of(r) for r in rules if r["Status"] == "Enabled" and key.startswith(r.get("Prefix", ""))]
    return min((int(days) for days in found if days is not None), default=None)


def _current_days(rule: dict[str, Any]) -> Any:
    return rule.get("ExpirationInDays")


def _noncurrent_days(rule: dict[str, Any]) -> Any:
    return rule.get("NoncurrentVersionExpiration", {}).get("NoncurrentDays")


# A run's scratch: car-rental's job stages under tmp/publish/ (rental_analytics/car_rental/job.py), the
# apartments transform under curated/_next/ (rental_analytics/apartments/jobs.py); both delete it once moved.
SCRATCH = [
    ("CarRental", "tmp/publish/processed/users/part-0000.parquet"),
    ("Apartments", "curated/_next/dim/part-0.parquet"),
]


@pytest.mark.parametrize(("stack", "key"), SCRATCH, ids=[s for s, _ in SCRATCH])
def test_deleted_scratch_is_not_kept_as_noncurrent_versions(stack: str, key: str):
    from tests.deployed import deployment

    [nested] = [s for s in deployment().stacks if s.name == stack]
    rules = nested.properties("DataBucket")["LifecycleConfiguration"]["Rules"]
    assert _days_kept(rules, key, _noncurrent_days) == 1
    assert _days_kept(rules, key, _current_days) == 7
    # Tables a run replaced keep their older versions as long as the parameter says, not a day.
    table = "processed/users/part-0000.parquet" if stack == "CarRental" else "curated/dim/part-0.parquet"
    assert _days_kept(rules, table, _noncurrent_days) == 7


@pytest.mark.parametrize(
    ("user", "password"),
    [("reader", 'pa"ss\\word'), ('re"ader\\', '\\"'), ("reader", "plain-password"), ("reader", "ends in \\")],
)
def test_the_source_secret_is_json_whatever_the_login_holds(user: str, password: str):
    """The extract job reads the secret the stack makes (RDS layout) and gets the login exactly as given."""
    import boto3
    from moto import mock_aws

    from rental_analytics.apartments.db_url import resolve_database_url
    from tests.deployed import deployment

    apartments = deployment(SourceUser=user, SourcePassword=password).apartments
    text = apartments.properties("SourceSecret")["SecretString"]
    with mock_aws():
        secrets = boto3.client("secretsmanager", region_name="us-east-1")
        arn = secrets.create_secret(Name="source", SecretString=text)["ARN"]
        login = resolve_database_url("mysql", None, arn, "UNUSED_ENV", secrets)
    assert (login.user, login.password) == (user, password)
    assert (login.host, login.port, login.database) == (
        "source.cluster-abc.eu-west-1.rds.amazonaws.com",
        3306,
        "marketplace",
    )


def test_a_warehouse_the_stack_creates_needs_its_subnets():
    from tests.deployed import root_stack

    needs = "WarehouseSubnetIds"
    for mode in ("serverless", "provisioned"):
        refused = root_stack(WarehouseMode=mode, WarehouseSubnetIds="").rule_failures()
        assert [m for m in refused if needs in m], mode
        assert root_stack(WarehouseMode=mode, WarehouseSubnetIds="subnet-a,subnet-b,subnet-c").rule_failures() == []
        assert [
            m
            for m in root_stack(WarehouseMode=mode, WarehouseSubnetIds="subnet-a,,subnet-c").rule_failures()
            if needs in m
        ]
    assert root_stack(WarehouseMode="existing", WarehouseSubnetIds="").rule_failures() == []
    assert root_stack(DeployApartments="false", WarehouseSubnetIds="").rule_failures() == []


def test_the_rules_refuse_a_pipeline_without_its_parameters():
    from tests.deployed import root_stack

    assert root_stack().rule_failures() == []
    assert root_stack(SubnetId="").rule_failures() == [
        "The car-rental pipeline needs SubnetId (the EMR cluster's subnet)."
    ]
    assert root_stack(DeployCarRental="false", SubnetId="").rule_failures() == []


def test_emr_finds_the_instance_profile_under_its_roles_name():
    """EMR looks the role up under the profile's name: a profile named otherwise is an "invalid instance profile"
    (EMR management guide, emr-iam-role-for-ec2)."""
    from tests.deployed import deployment, filled_definition

    car = deployment().car_rental
    role_name = car.physical_name("EmrInstanceRole")
    assert car.physical_name("EmrInstanceProfile") == role_name
    create = filled_definition(car, "CarRentalStateMachine")["States"]["Create the cluster"]
    assert create["Parameters"]["JobFlowRole"] == role_name


def test_the_login_parameters_refuse_control_characters_the_secret_would_not_escape():
    for template in (ROOT_STACK, APARTMENTS):
        for name in ("SourceUser", "SourcePassword"):
            pattern = template.parameters[name]["AllowedPattern"]
            assert re.fullmatch(pattern, 'pa"ss\\word ok') and re.fullmatch(pattern, "")
            assert not re.fullmatch(pattern, "two\nlines") and not re.fullmatch(pattern, "tab\there")


def test_a_new_core_layer_version_replaces_the_old_one():
    """A deploy that changes the core publishes a layer version; the one it replaced is deleted with it, and
    `sam delete` leaves none (functions already published with an old version keep their copy of it)."""
    layer = ROOT_STACK.resources["CoreLayer"]["Properties"]
    assert layer["RetentionPolicy"] == "Delete"


def test_glue_crawlers_take_no_log_group_so_the_stack_cannot_own_theirs():
    """Glue's API has no log group for a crawler: every crawler logs to the shared /aws-glue/crawlers, which a
    stack cannot create beside another crawler's (docs/deployment.md, "What stays after the stack")."""
    import botocore.session

    glue = botocore.session.get_session().get_service_model("glue")
    members = glue.operation_model("CreateCrawler").input_shape.members
    assert not [m for m in members if "Log" in re.findall(r"[A-Z][a-z]*", m)]
    assert "LogGroup" in glue.shape_for("CrawlerHistory").members  # where a crawl's logs went, read-only


def test_serverless_mode_runs_the_clusters_release_on_an_application_that_starts_and_stops_itself():
    application = CAR_RENTAL.resources["SparkApplication"]
    assert application["Condition"] == "ServerlessMode" and application["Properties"]["Type"] == "SPARK"
    props = application["Properties"]
    assert props["ReleaseLabel"] == {"Ref": "EmrReleaseLabel"}
    assert props["AutoStartConfiguration"] == {"Enabled": True}
    assert props["AutoStopConfiguration"]["Enabled"] is True
    assert CAR_RENTAL.parameters["ComputeMode"]["Default"] == "cluster"
    assert ROOT_STACK.resources["CarRental"]["Properties"]["Parameters"]["ComputeMode"] == {"Ref": "ComputeMode"}


@pytest.mark.parametrize(
    ("parameter", "environ_name", "typos"),
    [
        ("InstancePrices", "INSTANCE_PRICES", ["m5.xlarge:0.192", "m5.xlarge:$0.192:0.048", "m5.xlarge:0.1.9:0.04"]),
        ("ServerlessPrices", "SERVERLESS_PRICES", ["0.05.2:1:1", ".:.:.", "1:2", "1e3:1:1"]),
    ],
)
def test_a_price_parameter_the_report_cannot_parse_is_refused_at_deploy(parameter, environ_name, typos):
    """The AllowedPattern (matched against the whole value, as CloudFormation does) is the parser's own."""
    from rental_analytics.car_rental.costs import PriceTable
    from rental_analytics.platform.config import ConfigError

    environ = {"PRICES_DATE": "2026-12-04", "SPOT_PRICE_SHARE": "0.4", "ATHENA_PRICE_PER_TB": "5",
               "CRAWLER_PRICE_PER_DPU_HOUR": "0.44"}  # fmt: skip
    for template in (ROOT_STACK, CAR_RENTAL):
        declared = template.parameters[parameter]
        pattern, default = declared["AllowedPattern"], str(declared["Default"])
        defaults = {"INSTANCE_PRICES": "", "SERVERLESS_PRICES": "1:1:1", environ_name: default}
        assert re.fullmatch(pattern, default) and PriceTable.from_env({**environ, **defaults})
        for typo in typos:
            assert not re.fullmatch(pattern, typo)
            with pytest.raises(ConfigError):
                PriceTable.from_env({**environ, **defaults, environ_name: typo})


# The only parameters that take decimals: shares and prices. Every other number is a count, a size, a port or
# a duration, which CloudFormation's Number type would take as 1.5 too (and which then failed a cold start, a
# States.StringToJson or a service's request), so it is a String whose pattern takes whole numbers in its range.
DECIMAL_PARAMETERS = {"SpotPriceShare", "AthenaPricePerTB", "CrawlerPricePerDpuHour", "MaxRejectRate"}
_WHOLE = re.compile(r"a whole number(?: of \w+)?(?:, (\d+) at least| from (\d+) to (\d+))")


def _whole_number_range(declared: dict[str, Any]) -> tuple[int, int | None] | None:
    matched = _WHOLE.fullmatch(str(declared.get("ConstraintDescription", "")))
    if not matched:
        return None
    at_least, low, high = matched.groups()
    return (int(at_least), None) if at_least else (int(low), int(high))


def _declared_parameters() -> list[tuple[str, str, dict[str, Any]]]:
    return [(t.path, name, p) for t in ALL for name, p in t.parameters.items()]


def test_only_shares_and_prices_are_numbers_every_other_number_is_a_whole_number_in_its_range():
    """A decimal (CoreMinUnits=1.5, SparkStepTimeoutSeconds=300.5) failed the gate's cold start, the workflow or a
    service's request after the deploy: the deploy refuses it."""
    numbers = {name for _, name, p in _declared_parameters() if p.get("Type") == "Number"}
    assert numbers <= DECIMAL_PARAMETERS
    whole = [(path, name, p) for path, name, p in _declared_parameters() if _whole_number_range(p)]
    assert {name for _, name, _ in whole} >= {
        "CoreMinUnits", "SpotTimeoutMinutes", "ServerlessJobTimeoutMinutes", "SparkStepTimeoutSeconds",
        "RunLockMaxPolls", "AthenaBytesScannedCutoff", "SourcePort", "RedshiftNodeCount", "ExpectedApartmentsMinutes",
    }  # fmt: skip
    samples = random.Random(31)
    for path, name, declared in whole:
        lowest, highest = _whole_number_range(declared)  # type: ignore[misc]
        pattern = declared["AllowedPattern"]
        top = highest if highest is not None else max(3 * lowest, 3000)
        values = {*range(3001), lowest - 1, lowest, lowest + 1, top - 1, top, top + 1, 10**12, 10**15 + 7}
        values |= {samples.randrange(2 * top + 10) for _ in range(2000)}
        wrong = [
            n for n in sorted(values)
            if n >= 0 and bool(re.fullmatch(pattern, str(n))) != (lowest <= n and (highest is None or n <= highest))
        ]  # fmt: skip
        assert wrong == [], (path, name)
        assert not any(re.fullmatch(pattern, text) for text in ("1.5", "30.0", "1e3", "", " 8", "08", "-1")), name
        assert re.fullmatch(pattern, str(declared["Default"])) if "Default" in declared else True, name
    retention = [p for _, name, p in _declared_parameters() if name == "LogRetentionDays"]
    assert all(p["Type"] == "String" and "30.0" not in p["AllowedValues"] for p in retention)


def test_the_rules_refuse_a_core_fleet_whose_smallest_is_above_its_largest():
    from tests.deployed import root_stack

    failures = {
        (low, high): root_stack(CoreMinUnits=str(low), CoreMaxUnits=str(high)).rule_failures()
        for low in range(1, 51)
        for high in range(1, 51)
    }
    assert {pair for pair, failed in failures.items() if failed} == {(lo, hi) for lo, hi in failures if lo > hi}
    assert failures[(5, 2)] == ["CoreMinUnits (5) must not be above CoreMaxUnits."]
