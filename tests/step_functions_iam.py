"""The IAM actions each Step Functions service integration needs, as the Step Functions docs list them."""

from __future__ import annotations

import json

from tests.asl_service_models import STATES_PREFIX, fill_placeholders, task_states

# IAM action names are case-insensitive; the docs write some in camelCase (athena:startQueryExecution), this
# table writes every one as the Service Authorization Reference does, so a comparison needs no case folding.

# https://docs.aws.amazon.com/step-functions/latest/dg/connect-athena.html ("IAM policies for calling Amazon
# Athena"): a query reads and writes S3 and the Glue catalog, whatever the pattern.
_ATHENA_QUERY_DATA = frozenset(
    {
        "athena:StartQueryExecution",
        "athena:GetDataCatalog",
        "s3:GetBucketLocation",
        "s3:GetObject",
        "s3:ListBucket",
        "s3:ListBucketMultipartUploads",
        "s3:ListMultipartUploadParts",
        "s3:AbortMultipartUpload",
        "s3:CreateBucket",
        "s3:PutObject",
        "glue:CreateDatabase",
        "glue:GetDatabase",
        "glue:GetDatabases",
        "glue:UpdateDatabase",
        "glue:DeleteDatabase",
        "glue:CreateTable",
        "glue:UpdateTable",
        "glue:GetTable",
        "glue:GetTables",
        "glue:DeleteTable",
        "glue:BatchDeleteTable",
        "glue:BatchCreatePartition",
        "glue:CreatePartition",
        "glue:UpdatePartition",
        "glue:GetPartition",
        "glue:GetPartitions",
        "glue:BatchGetPartition",
        "glue:DeletePartition",
        "glue:BatchDeletePartition",
        "lakeformation:GetDataAccess",
    }
)

# https://docs.aws.amazon.com/step-functions/latest/dg/emr-iam.html; createCluster also needs to create the
# AWSServiceRoleForEMRCleanup service-linked role in an account that has none, which connect-emr.html states.
# (An older version of emr-iam listed events:PutTargets/PutRule/DescribeRule for the .sync patterns; the
# current page does not.)
_EMR_CREATE = frozenset(
    {
        "elasticmapreduce:RunJobFlow",
        "elasticmapreduce:DescribeCluster",
        "elasticmapreduce:TerminateJobFlows",
        "iam:PassRole",
        "iam:CreateServiceLinkedRole",
    }
)
_EMR_ADD_STEP = frozenset(
    {"elasticmapreduce:AddJobFlowSteps", "elasticmapreduce:DescribeStep", "elasticmapreduce:CancelSteps"}
)
_EMR_TERMINATE = frozenset({"elasticmapreduce:TerminateJobFlows", "elasticmapreduce:DescribeCluster"})
# https://docs.aws.amazon.com/step-functions/latest/dg/connect-glue.html ("IAM policies for calling AWS Glue").
_GLUE_START = frozenset({"glue:StartJobRun"})

# https://docs.aws.amazon.com/step-functions/latest/dg/emr-serverless-iam.html: the job run is started, then
# watched (and cancelled should the task be stopped) through a rule Step Functions manages, with the job's role
# passed to EMR Serverless.
_SERVERLESS_START = frozenset({"emr-serverless:StartJobRun", "iam:PassRole"})
_SERVERLESS_SYNC = _SERVERLESS_START | {
    "emr-serverless:GetJobRun",
    "emr-serverless:CancelJobRun",
    "events:PutTargets",
    "events:PutRule",
    "events:DescribeRule",
}

# Resource (with its pattern suffix; .waitForTaskToken needs what the request-response form needs) → actions.
# SNS: https://docs.aws.amazon.com/step-functions/latest/dg/sns-iam.html; Lambda:
# https://docs.aws.amazon.com/step-functions/latest/dg/lambda-iam.html.
INTEGRATION_ACTIONS: dict[str, frozenset[str]] = {
    "arn:aws:states:::elasticmapreduce:createCluster": _EMR_CREATE,
    "arn:aws:states:::elasticmapreduce:createCluster.sync": _EMR_CREATE,
    "arn:aws:states:::elasticmapreduce:addStep": _EMR_ADD_STEP,
    "arn:aws:states:::elasticmapreduce:addStep.sync": _EMR_ADD_STEP,
    "arn:aws:states:::elasticmapreduce:cancelStep": frozenset({"elasticmapreduce:CancelSteps"}),
    "arn:aws:states:::elasticmapreduce:setClusterTerminationProtection": frozenset(
        {"elasticmapreduce:SetTerminationProtection"}
    ),
    "arn:aws:states:::elasticmapreduce:terminateCluster": _EMR_TERMINATE,
    "arn:aws:states:::elasticmapreduce:terminateCluster.sync": _EMR_TERMINATE,
    "arn:aws:states:::athena:startQueryExecution": _ATHENA_QUERY_DATA,
    "arn:aws:states:::athena:startQueryExecution.sync": _ATHENA_QUERY_DATA
    | {"athena:StopQueryExecution", "athena:GetQueryExecution"},
    "arn:aws:states:::athena:stopQueryExecution": frozenset({"athena:StopQueryExecution"}),
    "arn:aws:states:::athena:getQueryExecution": frozenset({"athena:GetQueryExecution"}),
    "arn:aws:states:::athena:getQueryResults": frozenset({"athena:GetQueryResults", "s3:GetObject"}),
    "arn:aws:states:::glue:startJobRun": _GLUE_START,
    "arn:aws:states:::glue:startJobRun.sync": _GLUE_START
    | {"glue:GetJobRun", "glue:GetJobRuns", "glue:BatchStopJobRun"},
    "arn:aws:states:::emr-serverless:startJobRun": _SERVERLESS_START,
    "arn:aws:states:::emr-serverless:startJobRun.sync": _SERVERLESS_SYNC,
    "arn:aws:states:::sns:publish": frozenset({"sns:Publish"}),
    "arn:aws:states:::lambda:invoke": frozenset({"lambda:InvokeFunction"}),
    # https://docs.aws.amazon.com/step-functions/latest/dg/dynamo-iam.html: each item API needs its own action.
    **{
        f"arn:aws:states:::dynamodb:{api[:1].lower()}{api[1:]}": frozenset({f"dynamodb:{api}"})
        for api in ("GetItem", "PutItem", "UpdateItem", "DeleteItem")
    },
}

# Actions the Athena page lists for every query that these workflows deliberately do not grant: their queries
# only read tables the crawler made, in the default catalog, outside Lake Formation, into an existing bucket.
NOT_NEEDED_FOR_READ_ONLY_QUERIES = frozenset(
    {
        "s3:CreateBucket",
        "lakeformation:GetDataAccess",
        *(f"glue:{verb}Database" for verb in ("Create", "Update", "Delete")),
        *(f"glue:{verb}Table" for verb in ("Create", "Update", "Delete", "BatchDelete")),
        *(f"glue:{verb}Partition" for verb in ("Create", "BatchCreate", "Update", "Delete", "BatchDelete")),
    }
)

SDK_PREFIX = f"{STATES_PREFIX}aws-sdk:"
# AWS SDK integrations need the API's own action; Step Functions generates no policy for them
# (https://docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html). The IAM prefix is
# the SDK service name but for these.
SDK_IAM_PREFIXES = {"sfn": "states", "emr": "elasticmapreduce", "emrserverless": "emr-serverless"}
CALLBACK = ".waitForTaskToken"
LAMBDA_FUNCTION_PREFIX = "arn:aws:lambda:"


def task_actions(resource: str) -> frozenset[str]:
    """The actions a Task with this Resource needs; ValueError for a Resource this table does not know."""
    if resource.startswith(SDK_PREFIX):
        service, action = resource[len(SDK_PREFIX) :].removesuffix(CALLBACK).split(":")
        return frozenset({f"{SDK_IAM_PREFIXES.get(service, service)}:{action[:1].upper()}{action[1:]}"})
    if resource.startswith(LAMBDA_FUNCTION_PREFIX):
        return INTEGRATION_ACTIONS[f"{STATES_PREFIX}lambda:invoke"]
    actions = INTEGRATION_ACTIONS.get(resource.removesuffix(CALLBACK))
    if actions is None:
        raise ValueError(f"no IAM actions known for the integration {resource}")
    return actions


def required_actions(definition_text: str) -> set[str]:
    """Every IAM action the Task states of an ASL definition (placeholders allowed) need."""
    text, _ = fill_placeholders(definition_text)
    needed: set[str] = set()
    for name, state in task_states(json.loads(text)):
        try:
            needed |= task_actions(state["Resource"])
        except ValueError as error:
            raise ValueError(f"{name}: {error}") from None
    return needed
