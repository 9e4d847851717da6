"""The one place that creates boto3 clients: once per process, passed to the core so tests can give moto's."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any


@dataclass(frozen=True)
class AwsClients:
    """The AWS APIs the core calls."""

    s3: Any
    stepfunctions: Any
    sns: Any
    secretsmanager: Any = None
    cloudwatch: Any = None
    cloudformation: Any = None
    sqs: Any = None
    awslambda: Any = None
    ec2: Any = None
    emr: Any = None
    glue: Any = None
    emrserverless: Any = None


@lru_cache(maxsize=1)
def clients() -> AwsClients:
    """This process's clients, created on first use and then reused across Lambda invocations."""
    import boto3  # not needed by the local runner, and slow to import

    session = boto3.session.Session()
    return AwsClients(
        s3=session.client("s3"),
        stepfunctions=session.client("stepfunctions"),
        sns=session.client("sns"),
        secretsmanager=session.client("secretsmanager"),
        cloudwatch=session.client("cloudwatch"),
        cloudformation=session.client("cloudformation"),
        sqs=session.client("sqs"),
        awslambda=session.client("lambda"),
        ec2=session.client("ec2"),
        emr=session.client("emr"),
        glue=session.client("glue"),
        emrserverless=session.client("emr-serverless"),
    )


def read_text(s3: Any, bucket: str, key: str) -> str | None:
    """An object's text, or None when there is no such object."""
    try:
        return str(s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8"))
    except s3.exceptions.NoSuchKey:
        return None


def stack_outputs(cloudformation: Any, stack: str) -> dict[str, str]:
    """A deployed stack's outputs by key: where its buckets, queues and functions are."""
    [described] = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}


def stack_parameters(cloudformation: Any, stack: str) -> dict[str, str]:
    """A deployed stack's parameter values by key: how it was configured (such as its ComputeMode)."""
    [described] = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    return {
        p["ParameterKey"]: p.get("ResolvedValue", p.get("ParameterValue", "")) for p in described.get("Parameters", [])
    }
