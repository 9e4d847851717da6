"""Every AWS call each role of the stacks makes: the action, the resource ARN and the condition keys AWS sets.

A row is a `Call`. To add one, append it to the list of the role that makes it (or start a list for a new role and
add it to `calls`): name the role as `<stack>/<logical id>`, the action as the Service Authorization Reference
spells it, the resource ARN through `d` (the deployment, so the names are the stacks' own), and in `context` the
condition keys AWS puts in that request. `state` names the workflow Task that makes the call, `api` the boto3
method; tests/test_iam_evaluation.py checks that every Task and every boto3 call of the handlers has its rows,
that each row is allowed, and that action, ARN and keys are real. A run lock's conditional put, for instance:
`Call("CarRental/CarRentalStateMachine", "dynamodb:PutItem", d.car_rental.arn("RunLockTable"),
{"dynamodb:LeadingKeys": [bucket]}, state="Take the run lock")`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from tests.deployed import ACCOUNT, PARTITION, REGION, Deployment, Stack, filled_definition
from tests.iam_evaluator import ContextValue

WAREHOUSE_MODES = ("serverless", "provisioned", "existing")
COMPUTE_MODES = ("cluster", "serverless")
# The deployments the table is evaluated for: each warehouse mode with the default compute, and the car-rental
# pipeline's serverless compute once.
DEPLOYMENTS = [*((mode, "cluster") for mode in WAREHOUSE_MODES), ("serverless", "serverless")]
# Test values for what a run names: a batch, the execution the gate starts, a cluster, a load date.
BATCH = "2024-06-01"
EXECUTION = f"{BATCH}-0123456789abcdef"
CLUSTER_ID = "j-TESTCLUSTER0"
LOAD_DATE = "2024-06-01"


@dataclass(frozen=True)
class Call:
    """One request a role makes, as IAM sees it."""

    role: str  # `<stack>/<logical id>` of the role (or the function or workflow SAM makes it for), or a service
    action: str
    resource: str
    context: Mapping[str, ContextValue] = field(default_factory=dict)
    by: str = ""  # who makes the call and why, for the failure message
    state: str | None = None  # the workflow Task state that makes it
    api: str | None = None  # the boto3 method (`s3.head_object`) that makes it
    managed: str | None = None  # the AWS managed policy that grants it: not evaluated offline
    warehouse_modes: tuple[str, ...] = WAREHOUSE_MODES  # the WarehouseMode values under which the call happens
    compute_modes: tuple[str, ...] = COMPUTE_MODES  # the car-rental ComputeMode values under which it happens

    @property
    def service_principal(self) -> bool:
        return "/" not in self.role


def _via(service: str) -> dict[str, ContextValue]:
    """The keys KMS sees when a service calls it on the caller's behalf."""
    return {"kms:ViaService": f"{service}.{REGION}.amazonaws.com", "kms:CallerAccount": ACCOUNT}


def _encrypted_publish(
    role: str, topic: str, key: str, by: str, state: str | None = None, api: str | None = None
) -> list[Call]:
    """Publishing to an encrypted topic: the publisher also needs GenerateDataKey* and Decrypt on its key, which
    SNS uses on its behalf (SNS developer guide, sns-key-management); `api` names the boto3 call of the publish."""
    return [
        Call(role, "sns:Publish", topic, by=by, state=state, api=api),
        Call(role, "kms:GenerateDataKey", key, _via("sns"), by=f"{by} (SNS encrypts the message)", state=state),
        Call(role, "kms:Decrypt", key, _via("sns"), by=f"{by} (SNS encrypts the message)", state=state),
    ]


def _pass_role(role: str, passed: str, service: str, by: str, state: str | None = None) -> Call:
    return Call(role, "iam:PassRole", passed, {"iam:PassedToService": f"{service}.amazonaws.com"}, by=by, state=state)


def _execution_logs(role: str) -> list[Call]:
    # Step Functions delivers a workflow's logs with the workflow's role (step-functions cw-logs).
    actions = ("CreateLogDelivery", "GetLogDelivery", "UpdateLogDelivery", "PutResourcePolicy")
    return [Call(role, f"logs:{a}", "*", by="delivering execution logs") for a in actions]


def _object(bucket_arn: str, key: str) -> str:
    return f"{bucket_arn}/{key}"


def _upload_gate(d: Deployment) -> list[Call]:
    role, car = "CarRental/ValidateUploadFunction", d.car_rental
    bucket = car.arn("DataBucket")
    raw = _object(bucket, f"raw/{BATCH}/rental_transactions.csv")
    gate_state = _object(bucket, f"reports/{BATCH}/gate/rental_transactions/rental_transactions.csv@0a1b.accepted.json")
    quarantined = _object(bucket, f"quarantine/{BATCH}/0a1b/rental_transactions.csv")
    staged = _object(bucket, f"staged/{BATCH}/{EXECUTION}/rental_transactions.csv")
    return [
        Call(role, "s3:GetObjectVersion", raw, by="the version the event names", api="s3.head_object"),
        Call(
            role, "s3:GetObject", raw, by="the current version, and a bucket without versioning", api="s3.head_object"
        ),
        Call(role, "s3:ListBucket", bucket, by="a key that is gone answers 404, not 403 (S3 needs ListBucket)"),
        Call(role, "s3:GetObjectVersion", raw, by="reading the judged version", api="s3.get_object"),
        Call(role, "s3:GetObject", gate_state, by="a repeated delivery reads its marker", api="s3.get_object"),
        Call(role, "s3:GetObject", f"{quarantined}.report.json", by="a retried rejection", api="s3.get_object"),
        Call(role, "s3:PutObject", gate_state, by="noting the accepted version", api="s3.put_object"),
        Call(role, "s3:PutObject", f"{quarantined}.report.json", by="the claim of the rejection", api="s3.put_object"),
        Call(role, "s3:PutObject", _object(bucket, "quarantine/_bad_keys/0a1b.report.json"), by="a bad key's report"),
        Call(role, "s3:GetObjectVersion", raw, by="copying the rejected version", api="s3.copy"),
        Call(role, "s3:PutObject", quarantined, by="moving a rejected version to the quarantine", api="s3.copy"),
        Call(role, "s3:PutObject", staged, by="staging the accepted versions", api="s3.copy"),
        Call(
            role, "s3:GetObject", raw, by="staging from a bucket without versioning (CopySourceIfMatch)", api="s3.copy"
        ),
        # boto3's managed copy goes multipart above its threshold and aborts the upload when a part fails.
        Call(role, "s3:AbortMultipartUpload", staged, by="a failed multipart copy", api="s3.copy"),
        Call(role, "s3:AbortMultipartUpload", quarantined, by="a failed multipart copy", api="s3.copy"),
        Call(role, "s3:GetObject", _object(bucket, f"staged/{BATCH}/{EXECUTION}/_manifest.json"), by="is it staged?"),
        Call(role, "s3:PutObject", _object(bucket, f"staged/{BATCH}/{EXECUTION}/_manifest.json"), by="the manifest"),
        Call(role, "s3:DeleteObjectVersion", raw, by="removing the rejected version only", api="s3.delete_object"),
        Call(role, "s3:DeleteObject", raw, by="removing a rejection in a bucket without versioning"),
        Call(
            role,
            "s3:ListBucketVersions",
            bucket,
            {"s3:prefix": f"raw/{BATCH}/rental_transactions.csv"},
            by="the versions before a rejected re-upload",
            api="s3.get_paginator:list_object_versions",
        ),
        Call(
            role,
            "states:StartExecution",
            car.ref("CarRentalStateMachine"),
            by="a complete batch starts the workflow",
            api="stepfunctions.start_execution",
        ),
        *_encrypted_publish(
            role, car.parameters["AlertTopic"], car.parameters["PipelineKey"], "alerts", api="sns.publish"
        ),
    ]


def _report_function(d: Deployment) -> list[Call]:
    role, car = "CarRental/PublishReportFunction", d.car_rental
    bucket, artifacts = car.arn("DataBucket"), f"arn:{PARTITION}:s3:::{car.parameters['ArtifactsBucket']}"
    report = f"reports/{BATCH}"
    return [
        Call(
            role,
            "s3:GetObject",
            _object(artifacts, "athena-results/0123-abcd.csv"),
            by="a query's result",
            api="s3.get_object",
        ),
        Call(role, "s3:GetObject", _object(bucket, f"{report}/job_outcome.json"), by="the job's outcome"),
        Call(role, "s3:GetObject", _object(bucket, "reports/_history/row_counts.json"), by="the row-count history"),
        Call(role, "s3:GetObject", _object(bucket, f"staged/{BATCH}/{EXECUTION}/_manifest.json"), by="the verdicts"),
        Call(role, "s3:ListBucket", bucket, by="the first run's missing history answers 404, not 403"),
        Call(role, "s3:PutObject", _object(bucket, f"{report}/insights/top_spending_users.csv"), api="s3.put_object"),
        Call(role, "s3:PutObject", _object(bucket, f"{report}/summary.json"), by="the summary"),
        Call(role, "s3:PutObject", _object(bucket, f"{report}/report.html"), by="the page"),
        Call(role, "s3:PutObject", _object(bucket, "reports/_history/row_counts.json"), by="the history"),
        *_encrypted_publish(
            role, car.parameters["WarningTopic"], car.parameters["PipelineKey"], "warnings", api="sns.publish"
        ),
        # What the run cost and where its time went (rental_analytics/car_rental/costs.py).
        *[
            Call(
                role,
                f"elasticmapreduce:{action}",
                f"arn:{PARTITION}:elasticmapreduce:{REGION}:{ACCOUNT}:cluster/{CLUSTER_ID}",
                _tag_context(cluster_tags(d), "ResourceTag"),
                by="the cluster's timeline and instance-hours",
                api=api,
                compute_modes=("cluster",),
            )
            for action, api in (
                ("DescribeCluster", "emr.describe_cluster"),
                ("ListInstances", "emr.get_paginator:list_instances"),
            )
        ],
        Call(
            role,
            "emr-serverless:ListJobRuns",
            f"arn:{PARTITION}:emr-serverless:{REGION}:{ACCOUNT}:/applications/{car.ref('SparkApplication')}",
            by="the job run named after the execution",
            api="emrserverless.get_paginator:list_job_runs",
            compute_modes=("serverless",),
        ),
        Call(
            role,
            "emr-serverless:GetJobRun",
            f"arn:{PARTITION}:emr-serverless:{REGION}:{ACCOUNT}:/applications/{car.ref('SparkApplication')}"
            + "/jobruns/00fabcdefghijk1m",
            by="the job run's billed resources",
            api="emrserverless.get_job_run",
            compute_modes=("serverless",),
        ),
        Call(
            role,
            "glue:ListCrawls",
            f"arn:{PARTITION}:glue:{REGION}:{ACCOUNT}:crawler/{car.ref('Crawler')}",
            by="the crawls' DPU-hours",
            api="glue.list_crawls",
        ),
        Call(
            role,
            "states:GetExecutionHistory",
            f"arn:{PARTITION}:states:{REGION}:{ACCOUNT}:execution:{car.ref('CarRentalStateMachine').rsplit(':', 1)[-1]}:{EXECUTION}",
            by="the stage times of the run",
            api="stepfunctions.get_paginator:get_execution_history",
        ),
    ]


def _ship_code(d: Deployment) -> list[Call]:
    artifacts = d.root.arn("ArtifactsBucket")
    return [
        Call(
            "rental-analytics/ShipCodeFunction",
            "s3:PutObject",
            _object(artifacts, "code/0123456789abcdef/rental_analytics.zip"),
            by="shipping the code per deploy",
            api="s3.put_object",
        )
    ]


def cluster_tags(d: Deployment) -> dict[str, str]:
    """The tags the workflow's createCluster task puts on the cluster (a batch id stands for the input's)."""
    states = filled_definition(d.car_rental, "CarRentalStateMachine")["States"]
    tags = states["Create the cluster"]["Parameters"]["Tags"]
    return {tag["Key"]: tag.get("Value", BATCH) for tag in tags}


def _tag_context(tags: Mapping[str, str], kind: str) -> dict[str, ContextValue]:
    """The keys EMR puts in a request for tags on the request (RequestTag) or on the cluster (ResourceTag)."""
    context: dict[str, ContextValue] = {}
    for key, value in tags.items():
        context[f"aws:{kind}/{key}"] = value
        context[f"elasticmapreduce:{kind}/{key}"] = value
    if kind == "RequestTag":
        context["aws:TagKeys"] = list(tags)
    return context


def _car_rental_workflow(d: Deployment) -> list[Call]:
    role, car = "CarRental/CarRentalStateMachine", d.car_rental
    tags = cluster_tags(d)
    cluster = f"arn:{PARTITION}:elasticmapreduce:{REGION}:{ACCOUNT}:cluster/{CLUSTER_ID}"
    on_cluster = _tag_context(tags, "ResourceTag")
    cleanup_role = f"arn:{PARTITION}:iam::{ACCOUNT}:role/aws-service-role/elasticmapreduce.amazonaws.com/AWSServiceRoleForEMRCleanup"
    workgroup = f"arn:{PARTITION}:athena:{REGION}:{ACCOUNT}:workgroup/{car.ref('AthenaWorkGroup')}"
    database = car.ref("GlueDatabase")
    glue = f"arn:{PARTITION}:glue:{REGION}:{ACCOUNT}"
    bucket, artifacts = car.arn("DataBucket"), f"arn:{PARTITION}:s3:::{car.parameters['ArtifactsBucket']}"
    results = _object(artifacts, "athena-results/0123-abcd.csv")
    create, step, query = "Create the cluster", "Run the Spark job", "Run the query"
    cluster_calls = [
        Call(role, "elasticmapreduce:RunJobFlow", "*", _tag_context(tags, "RequestTag"), state=create),
        _pass_role(role, car.arn("EmrServiceRole"), "elasticmapreduce", "RunJobFlow's ServiceRole", create),
        # emr-managed-policy-fullaccess-v2: the role of the instance profile is passed to EC2.
        _pass_role(role, car.arn("EmrInstanceRole"), "ec2", "RunJobFlow's JobFlowRole (the instance profile)", create),
        Call(
            role,
            "iam:CreateServiceLinkedRole",
            cleanup_role,
            {"iam:AWSServiceName": "elasticmapreduce.amazonaws.com"},
            by="the first cluster of an account creates EMR's cleanup role",
            state=create,
        ),
        # using-service-linked-roles-cleanup: creating that role needs PutRolePolicy on it too.
        Call(role, "iam:PutRolePolicy", cleanup_role, by="creating EMR's cleanup role", state=create),
        *[
            Call(role, f"elasticmapreduce:{a}", cluster, on_cluster, state=create)
            for a in ("DescribeCluster", "TerminateJobFlows")
        ],
        *[
            Call(role, f"elasticmapreduce:{a}", cluster, on_cluster, state=step)
            for a in ("AddJobFlowSteps", "DescribeStep", "CancelSteps")
        ],
        *[
            Call(role, f"elasticmapreduce:{a}", cluster, on_cluster, state=name)
            for name in ("Terminate the cluster", "Terminate the cluster after the failure")
            for a in ("TerminateJobFlows", "DescribeCluster")
        ],
    ]
    application = f"arn:{PARTITION}:emr-serverless:{REGION}:{ACCOUNT}:/applications/{car.ref('SparkApplication')}"
    serverless, job_run = "Run the Spark job on EMR Serverless", f"{application}/jobruns/00fabcdefghijk1m"
    serverless_calls = [
        Call(role, "emr-serverless:StartJobRun", application, state=serverless),
        *[Call(role, f"emr-serverless:{a}", job_run, state=serverless) for a in ("GetJobRun", "CancelJobRun")],
        _pass_role(role, car.arn("EmrInstanceRole"), "emr-serverless", "StartJobRun's ExecutionRoleArn", serverless),
        *[
            Call(
                role,
                f"events:{a}",
                f"arn:{PARTITION}:events:{REGION}:{ACCOUNT}:rule/StepFunctionsGetEventsForEMRServerlessJobRule",
                by="the rule Step Functions keeps for the .sync wait",
                state=serverless,
            )
            for a in ("PutTargets", "PutRule", "DescribeRule")
        ],
    ]
    # What a run left is ended by what its lock names, in either mode: a cluster of cluster mode, or the job runs
    # on an application of serverless mode (the stack's, or one of before ComputeMode was switched), all tagged
    # for the project.
    project = {"aws:ResourceTag/project": tags["project"]}
    former = f"arn:{PARTITION}:emr-serverless:{REGION}:{ACCOUNT}:/applications/00fformerapp"
    left_calls = [
        *[
            Call(
                role,
                f"elasticmapreduce:{a}",
                cluster,
                on_cluster,
                state="End the cluster the ended run left",
                compute_modes=(mode,),
            )
            for a in ("TerminateJobFlows", "DescribeCluster")
            for mode in ("cluster", "serverless")
        ],
        *[
            Call(role, action, resource, project, state=state, compute_modes=(mode,))
            for mode, app in (("serverless", application), ("cluster", former))
            for action, resource, state in (
                ("emr-serverless:ListJobRuns", app, "Find the job runs left running"),
                ("emr-serverless:CancelJobRun", f"{app}/jobruns/00fabcdefghijk1m", "Cancel the job run"),
                (
                    "emr-serverless:GetJobRun",
                    f"{app}/jobruns/00fabcdefghijk1m",
                    "Has the job run ended since it was listed?",
                ),
            )
        ],
    ]
    calls = [
        *[replace(c, compute_modes=("cluster",)) for c in cluster_calls],
        *[replace(c, compute_modes=("serverless",)) for c in serverless_calls],
        *left_calls,
        # The run lock: one item of the stack's table, keyed by the data bucket's name.
        *[
            Call(
                role,
                f"dynamodb:{a}",
                car.arn("RunLockTable"),
                {"dynamodb:LeadingKeys": [car.ref("DataBucket")]},
                state=name,
            )
            for a, names in (
                ("PutItem", ("Take the run lock", "Take over the lock", "Take over a lock that names no run")),
                ("GetItem", ("Read who holds the lock",)),
                ("UpdateItem", ("Note the cluster in the lock",)),
                ("DeleteItem", ("Release the run lock", "Release the run lock after the failure")),
            )
            for name in names
        ],
        Call(
            role,
            "states:DescribeExecution",
            f"arn:{PARTITION}:states:{REGION}:{ACCOUNT}:execution:{car.ref('CarRentalStateMachine').rsplit(':', 1)[-1]}:2024-06-01-0123",
            by="whether the run that holds the lock still runs",
            state="Ask whether the holder still runs",
        ),
        Call(
            role,
            "states:ListExecutions",
            car.ref("CarRentalStateMachine"),
            by="which runs started before this one still run",
            state="Find the runs started before this one",
        ),
        Call(role, "glue:StartCrawler", f"{glue}:crawler/{car.ref('Crawler')}", state="Start the crawler"),
        Call(role, "glue:GetCrawler", f"{glue}:crawler/{car.ref('Crawler')}", state="Check the crawler"),
        Call(role, "athena:GetNamedQuery", workgroup, state="Read the query"),
        *[
            Call(role, f"athena:{a}", workgroup, state=query)
            for a in ("StartQueryExecution", "GetQueryExecution", "StopQueryExecution")
        ],
        Call(
            role,
            "athena:GetDataCatalog",
            f"arn:{PARTITION}:athena:{REGION}:{ACCOUNT}:datacatalog/AwsDataCatalog",
            by="Athena reads the default catalog",
            state=query,
        ),
        # glue-specifying-resource-arns: a call on a table is authorized on its catalog, database and table.
        *[
            Call(role, f"glue:{a}", resource, by="Athena reads the catalog", state=query)
            for a in ("GetDatabase", "GetDatabases")
            for resource in (f"{glue}:catalog", f"{glue}:database/{database}")
        ],
        *[
            Call(role, f"glue:{a}", resource, by="Athena reads the table", state=query)
            for a in ("GetTable", "GetTables", "GetPartition", "GetPartitions", "BatchGetPartition")
            for resource in (f"{glue}:catalog", f"{glue}:database/{database}", f"{glue}:table/{database}/users")
        ],
        Call(role, "s3:GetObject", _object(bucket, "processed/users/part-0000.parquet"), state=query),
        Call(role, "s3:GetObject", _object(bucket, "analytics/user_metrics/part-0000.parquet"), state=query),
        Call(role, "s3:ListBucket", bucket, {"s3:prefix": "analytics/user_metrics/"}, state=query),
        Call(role, "s3:GetBucketLocation", bucket, state=query),
        Call(role, "s3:GetBucketLocation", artifacts, state=query),
        Call(role, "s3:ListBucket", artifacts, {"s3:prefix": "athena-results/"}, state=query),
        Call(role, "s3:ListBucketMultipartUploads", artifacts, state=query),
        *[
            Call(role, f"s3:{a}", results, by="the result file", state=query)
            for a in ("PutObject", "GetObject", "AbortMultipartUpload", "ListMultipartUploadParts")
        ],
        *[
            Call(role, "lambda:InvokeFunction", car.arn("PublishReportFunction"), state=name)
            for name in ("Publish the report", "Publish the failure report")
        ],
        *[
            call
            for name in ("Tell people it succeeded", "Alert the failure")
            for call in _encrypted_publish(
                role, car.parameters["AlertTopic"], car.parameters["PipelineKey"], name, name
            )
        ],
        *_execution_logs(role),
    ]
    return calls


def _emr_service_role(d: Deployment) -> list[Call]:
    role, car = "CarRental/EmrServiceRole", d.car_rental
    key = car.parameters["PipelineKey"]
    subnet = car.parameters["SubnetId"]
    ec2 = f"arn:{PARTITION}:ec2:{REGION}:{ACCOUNT}"
    for_managed = {"aws:ResourceTag/for-use-with-amazon-emr-managed-policies": "true"}
    return [
        _pass_role(role, car.arn("EmrInstanceRole"), "ec2", "EMR launching the nodes with the instance profile"),
        Call(
            role,
            "kms:CreateGrant",
            key,
            {**_via("ec2"), "kms:GrantIsForAWSResource": True},
            by="EC2 attaching the encrypted EBS volumes",
        ),
        *[
            Call(role, f"kms:{a}", key, _via("ec2"), by="EBS encryption")
            for a in ("GenerateDataKeyWithoutPlaintext", "Decrypt", "DescribeKey")
        ],
        # emr-managed-iam-policies: the v2 policy acts only on tagged networks and on the groups it made.
        Call(role, "ec2:RunInstances", f"{ec2}:subnet/{subnet}", for_managed, managed="AmazonEMRServicePolicy_v2"),
        Call(
            role,
            "ec2:CreateSecurityGroup",
            f"{ec2}:vpc/vpc-0emr0000000000000",
            for_managed,
            by="EMR's default security groups, in a tagged VPC only",
            managed="AmazonEMRServicePolicy_v2",
        ),
        Call(
            role,
            "ec2:AuthorizeSecurityGroupIngress",
            f"{ec2}:security-group/sg-0elasticmapreduce0",
            for_managed,
            by="an existing ElasticMapReduce-* group, tagged",
            managed="AmazonEMRServicePolicy_v2",
        ),
    ]


ZONES_THE_JOB_WRITES = ("processed", "analytics", "quarantine", "reports", "tmp")


def _emr_instance_role(d: Deployment) -> list[Call]:
    role, car = "CarRental/EmrInstanceRole", d.car_rental
    bucket, artifacts = car.arn("DataBucket"), f"arn:{PARTITION}:s3:::{car.parameters['ArtifactsBucket']}"
    code = car.parameters["CorePackage"].rsplit("/", 1)[0].removeprefix("s3://").split("/", 1)[1]
    written = {
        "processed": "processed/rental_transactions/rental_date=2024-06-01/part-0000.parquet",
        "analytics": "analytics/location_performance/part-0000.parquet",
        "quarantine": f"quarantine/{BATCH}/rows/rental_transactions/part-0000.parquet",
        "reports": f"reports/{BATCH}/job_outcome.json",
        "tmp": "tmp/publish/processed/users/part-0000.parquet",
    }
    calls = [
        Call(
            role, "s3:GetObject", _object(artifacts, f"{code}/car_rental_job.py"), by="spark-submit fetches the script"
        ),
        Call(role, "s3:GetObject", _object(artifacts, f"{code}/rental_analytics.zip"), by="--py-files"),
        Call(role, "s3:ListBucket", artifacts, {"s3:prefix": f"{code}/"}, by="EMRFS"),
        Call(role, "s3:GetBucketLocation", artifacts, by="EMRFS"),
        Call(
            role, "s3:PutObject", _object(artifacts, f"logs/emr/{CLUSTER_ID}/steps/s-1/stderr.gz"), by="the log pusher"
        ),
        Call(role, "s3:GetObject", _object(bucket, f"staged/{BATCH}/{EXECUTION}/rental_transactions.csv"), by="input"),
        Call(role, "s3:GetObject", _object(bucket, f"raw/{BATCH}/rental_transactions.csv"), by="a run started by hand"),
        Call(role, "s3:ListBucket", bucket, {"s3:prefix": f"staged/{BATCH}/{EXECUTION}/"}, by="EMRFS lists the input"),
        Call(role, "s3:GetBucketLocation", bucket, by="EMRFS"),
        # EMR 7 nodes encrypt their local disks with a key from KMS (emr-data-encryption-options).
        Call(role, "kms:GenerateDataKey", car.parameters["PipelineKey"], by="local disk encryption"),
        Call(role, "kms:Decrypt", car.parameters["PipelineKey"], by="local disk encryption"),
    ]
    for zone, key in written.items():
        calls += [
            Call(role, f"s3:{a}", _object(bucket, key), by=f"the job writes {zone}/")
            for a in ("GetObject", "PutObject", "DeleteObject")
        ]
        calls.append(Call(role, "s3:ListBucket", bucket, {"s3:prefix": f"{zone}/"}, by="EMRFS lists a folder"))
        # EMRFS (EMR before 7.10) marks a folder it creates with an empty `<folder>_$folder$` object and
        # probes a path as a file, then as a marker, then as a prefix (knowledge center, emr-s3-empty-files).
        calls += [
            Call(role, f"s3:{a}", _object(bucket, f"{zone}_$folder$"), by="EMRFS's folder marker of the zone")
            for a in ("GetObject", "PutObject", "DeleteObject")
        ]
        calls.append(Call(role, "s3:GetObject", _object(bucket, zone), by="EMRFS probes the zone as a file"))
    calls.append(Call(role, "s3:PutObject", _object(bucket, "tmp/publish_$folder$"), by="a marker inside a zone"))
    return calls


def _crawler_role(d: Deployment) -> list[Call]:
    role, car = "CarRental/CrawlerRole", d.car_rental
    bucket = car.arn("DataBucket")
    glue = f"arn:{PARTITION}:glue:{REGION}:{ACCOUNT}"
    database = car.ref("GlueDatabase")
    return [
        Call(role, "s3:GetObject", _object(bucket, "processed/users/part-0000.parquet"), by="the crawl"),
        Call(role, "s3:GetObject", _object(bucket, "analytics/daily_metrics/part-0000.parquet"), by="the crawl"),
        Call(role, "s3:ListBucket", bucket, {"s3:prefix": "processed/users/"}, by="the crawl"),
        Call(role, "glue:CreateTable", f"{glue}:table/{database}/users", managed="AWSGlueServiceRole"),
        Call(
            role,
            "glue:BatchCreatePartition",
            f"{glue}:table/{database}/rental_transactions",
            managed="AWSGlueServiceRole",
        ),
        Call(
            role,
            "logs:PutLogEvents",
            f"arn:{PARTITION}:logs:{REGION}:{ACCOUNT}:log-group:/aws-glue/crawlers:log-stream:{car.ref('Crawler')}",
            by="crawlers log to Glue's shared group, which no stack can own",
            managed="AWSGlueServiceRole",
        ),
    ]


def _alarms(d: Deployment) -> list[Call]:
    """CloudWatch, on behalf of the alarms, publishing to the encrypted topics: the key's and topic's policies."""
    car = d.car_rental
    alarm = f"arn:{PARTITION}:cloudwatch:{REGION}:{ACCOUNT}:alarm:{car.physical_name('JobFailureAlarm')}"
    source = {"aws:SourceAccount": ACCOUNT, "aws:SourceArn": alarm}
    key = d.root.arn("PipelineKey")
    calls = [
        Call(
            "cloudwatch.amazonaws.com",
            "sns:Publish",
            d.root.ref(topic),
            {**source, "aws:SourceOwner": ACCOUNT},
            by="an alarm action",
        )
        for topic in ("AlertTopic", "WarningTopic")
    ]
    calls += [
        Call("cloudwatch.amazonaws.com", f"kms:{a}", key, {**source, **_via("sns")}, by="an alarm action, encrypted")
        for a in ("GenerateDataKey", "Decrypt")
    ]
    return calls


APARTMENTS_JOBS = {
    "Extract from the source": "ExtractJob",
    "Check data quality": "QualityJob",
    "Build the model": "TransformJob",
    "Load the warehouse": "LoadJob",
    "Refresh the KPIs": "KpiJob",
}


def _apartments_workflow(d: Deployment) -> list[Call]:
    role, apt = "Apartments/ApartmentsStateMachine", d.apartments
    glue = f"arn:{PARTITION}:glue:{REGION}:{ACCOUNT}"
    parameter = f"arn:{PARTITION}:ssm:{REGION}:{ACCOUNT}:parameter/{apt.ref('LastRunParameter')}"
    calls = [
        Call(role, f"glue:{a}", f"{glue}:job/{apt.ref(job)}", state=state)
        for state, job in APARTMENTS_JOBS.items()
        for a in ("StartJobRun", "GetJobRun", "GetJobRuns", "BatchStopJobRun")
    ]
    calls += [
        Call(role, "ssm:PutParameter", parameter, state="Record the run"),
        Call(role, "ssm:GetParameter", parameter, state="Read the last run"),
        Call(
            role,
            "states:ListExecutions",
            apt.ref("ApartmentsStateMachine"),
            by="which runs of this workflow still run",
            state="Find the runs going",
        ),
    ]
    calls += [
        call
        for name in (
            "Tell people it succeeded",
            "Alert the failure",
            "Alert: the retry request is refused",
            "Alert: another run is going",
            "Alert: another run may be going",
            "Warn: the warehouse is still running",
        )
        for call in _encrypted_publish(role, apt.parameters["AlertTopic"], apt.parameters["PipelineKey"], name, name)
    ]
    calls += _execution_logs(role)
    # With WarehouseMode=provisioned (and PauseWarehouseBetweenRuns, the default) the run resumes and pauses it.
    cluster = f"arn:{PARTITION}:redshift:{REGION}:{ACCOUNT}:cluster:{apt.ref('RedshiftCluster')}"
    cluster_calls = {
        "Resume the warehouse": "ResumeCluster",
        "Check the warehouse": "DescribeClusters",
        "Pause the warehouse": "PauseCluster",
        "Pause the warehouse after the failure": "PauseCluster",
    }
    calls += [
        Call(role, f"redshift:{action}", cluster, state=state, warehouse_modes=("provisioned",))
        for state, action in cluster_calls.items()
    ]
    return calls


def glue_log_groups(stack: Stack, job: str) -> tuple[str, str]:
    """Where a Glue 5.0 job logs: `<prefix>/error` and `<prefix>/output`, the prefix `/aws-glue/jobs` unless the
    job sets `--custom-logGroup-prefix` (Glue developer guide, monitor-continuous-logging)."""
    prefix = stack.properties(job)["DefaultArguments"].get("--custom-logGroup-prefix", "/aws-glue/jobs")
    return f"{prefix}/error", f"{prefix}/output"


def _glue_jobs(d: Deployment) -> list[Call]:
    role, apt = "Apartments/GlueJobRole", d.apartments
    lake, artifacts = apt.arn("DataBucket"), f"arn:{PARTITION}:s3:::{apt.parameters['ArtifactsBucket']}"
    code = apt.parameters["CorePackage"].removeprefix("s3://").split("/", 1)[1]
    key = apt.parameters["PipelineKey"]
    written = {
        "raw/apartments": f"raw/apartments/apartments/load_date={LOAD_DATE}/part-0000.parquet",
        "processed/apartments": f"processed/apartments/bookings/load_date={LOAD_DATE}/part-0000.parquet",
        "quarantine/apartments": f"quarantine/apartments/bookings/load_date={LOAD_DATE}/part-0000.parquet",
        "curated": "curated/_next/fact_bookings/part-0000.parquet",
    }
    calls = [
        Call(role, "s3:GetObject", _object(artifacts, code), by="--extra-py-files"),
        Call(role, "s3:ListBucket", lake, {"s3:prefix": "raw/apartments/"}, by="reading a zone"),
        Call(role, "s3:GetBucketLocation", lake, by="EMRFS"),
        Call(
            role,
            "secretsmanager:GetSecretValue",
            apt.ref("SourceSecret"),
            by="the source login",
            api="secretsmanager.get_secret_value",
        ),
        Call(role, "kms:Decrypt", key, _via("secretsmanager"), by="the source login is encrypted with the stack's key"),
        Call(
            role,
            "cloudwatch:PutMetricData",
            "*",
            {"cloudwatch:namespace": "RentalAnalytics"},
            by="the quality job's DataQualityBreaches",
            api="cloudwatch.put_metric_data",
        ),
        Call(
            role,
            "cloudwatch:PutMetricData",
            "*",
            {"cloudwatch:namespace": "Glue"},
            by="--enable-metrics",
            managed="AWSGlueServiceRole",
        ),
    ]
    for zone, object_key in written.items():
        calls += [
            Call(role, f"s3:{a}", _object(lake, object_key), by=f"writing {zone}/")
            for a in ("GetObject", "PutObject", "DeleteObject")
        ]
    # Glue 5.0 reads and writes s3:// through EMRFS (S3A replaces it in 5.1, migrating-version-51), which marks
    # and looks up folders as on EMR: each folder above a zone's `<zone>/apartments/*` is its own key.
    for folder in ("raw", "raw/apartments", "processed", "processed/apartments", "quarantine", "quarantine/apartments"):
        calls += [
            Call(role, f"s3:{a}", _object(lake, f"{folder}_$folder$"), by="EMRFS's folder marker above a zone")
            for a in ("GetObject", "PutObject", "DeleteObject")
        ]
        calls.append(Call(role, "s3:GetObject", _object(lake, folder), by="EMRFS looks a folder up as an object"))
    calls += [Call(role, f"s3:{a}", _object(lake, "curated_$folder$"), by="EMRFS") for a in ("GetObject", "PutObject")]
    calls.append(Call(role, "s3:GetObject", _object(lake, "curated"), by="EMRFS looks a folder up as an object"))
    for group in sorted({name for job in apt.of_type("AWS::Glue::Job") for name in glue_log_groups(apt, job)}):
        stream = f"arn:{PARTITION}:logs:{REGION}:{ACCOUNT}:log-group:{group}:log-stream:jr_0123-driver"
        calls += [
            Call(role, f"logs:{a}", stream, by="Glue 5.0's job logs") for a in ("CreateLogStream", "PutLogEvents")
        ]
    # The login of the warehouse the stack made, or of the existing one the parameters name.
    created = apt.exists("WarehouseSecret")
    warehouse_secret = apt.ref("WarehouseSecret") if created else apt.parameters["ExistingWarehouseSecretArn"]
    calls.append(Call(role, "secretsmanager:GetSecretValue", warehouse_secret, by="the warehouse login"))
    return calls


def _scheduler(d: Deployment) -> list[Call]:
    machine = d.apartments.ref("ApartmentsStateMachine")
    return [Call("Apartments/ApartmentsSchedulerRole", "states:StartExecution", machine, by="the daily schedule")]


def _copy_role(d: Deployment) -> list[Call]:
    role, lake = "Apartments/RedshiftCopyRole", d.apartments.arn("DataBucket")
    managed = ("serverless", "provisioned")
    return [
        Call(role, "s3:ListBucket", lake, {"s3:prefix": "curated/fact_bookings/"}, by="COPY", warehouse_modes=managed),
        Call(role, "s3:GetBucketLocation", lake, by="COPY", warehouse_modes=managed),
        Call(
            role,
            "s3:GetObject",
            _object(lake, "curated/fact_bookings/part-0000.parquet"),
            by="COPY",
            warehouse_modes=managed,
        ),
    ]


def calls(d: Deployment) -> list[Call]:
    """Every row of the table for one deployment, those of other warehouse modes included."""
    return [
        *_upload_gate(d),
        *_report_function(d),
        *_ship_code(d),
        *_car_rental_workflow(d),
        *_emr_service_role(d),
        *_emr_instance_role(d),
        *_crawler_role(d),
        *_alarms(d),
        *_apartments_workflow(d),
        *_glue_jobs(d),
        *_scheduler(d),
        *_copy_role(d),
    ]
