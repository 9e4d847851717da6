"""verify-deployment against a stand-in stack in moto: the real gate, the real workflow with scripted stages."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from rental_analytics.car_rental.gate.admission import GateSettings, Upload, admit_upload
from rental_analytics.car_rental.verify import Waiting, verify_deployment
from rental_analytics.platform.aws import AwsClients
from tests.asl_harness import ACCOUNT, FAIL, REGION, asl_text, car_rental_stand_ins, scripted_definition
from tests.car_rental.test_workflow import SCRIPTED_OK

DATA, ARTIFACTS = "data-verify", "artifacts-verify"
FAST = Waiting(start_seconds=5, finish_seconds=30, poll_seconds=0.05, sleep=time.sleep)


def _secure_bucket(s3: Any, name: str, versioned: bool = True) -> None:
    s3.create_bucket(Bucket=name)
    if versioned:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(
        Bucket=name,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    s3.put_public_access_block(
        Bucket=name,
        PublicAccessBlockConfiguration=dict.fromkeys(
            ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True
        ),
    )
    # moto applies a Deny to every caller whatever its condition, so the stand-in's TLS rule names an action
    # the verification never calls; the real stack's denies s3:* (tests/test_template.py checks that).
    policy = {"Statement": [{"Effect": "Deny", "Principal": "*",
                             "Action": "s3:GetObjectAcl", "Resource": f"arn:aws:s3:::{name}/*",
                             "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}  # fmt: skip
    s3.put_bucket_policy(Bucket=name, Policy=json.dumps(policy))


class GateOnUpload:
    """S3 as the deployed stack has it: every upload under raw/ reaches the upload gate."""

    def __init__(self, client: Any, settings: GateSettings, aws: AwsClients) -> None:
        self.client, self.settings, self.aws = client, settings, aws

    def upload_file(self, path: str, bucket: str, key: str) -> None:
        self.client.upload_file(path, bucket, key)
        head = self.client.head_object(Bucket=bucket, Key=key)
        admit_upload(Upload(bucket, key, head.get("VersionId"), head["ETag"]), self.settings, self.aws)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


def _report_writing(definition: str) -> str:
    """The report step, scripted as two S3 writes so that the report the verification looks for exists."""
    states = json.loads(definition)
    put = lambda name: {  # noqa: E731
        "StartAt": "Write",
        "States": {"Write": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:s3:putObject", "End": True,
                             "Parameters": {"Bucket": DATA, "Body": "{}",
                                            "Key.$": f"States.Format('reports/{{}}/{name}', $.batch_id)"}}},
    }  # fmt: skip
    report = states["States"]["Publish the report"]
    states["States"]["Publish the report"] = {
        "Type": "Parallel",
        "Branches": [put("summary.json"), put("report.html")],
        "ResultSelector": {"subject": "Rental analytics: verified", "message": "ok"},
        "ResultPath": report["ResultPath"],
        "Next": report["Next"],
    }
    return json.dumps(states)


@pytest.fixture
def deployed() -> Iterator[Any]:
    def deploy(
        outputs_missing: bool = False, versioned: bool = True, mode: str = "cluster", **script: Any
    ) -> AwsClients:
        s3 = boto3.client("s3", region_name=REGION)
        _secure_bucket(s3, DATA)
        _secure_bucket(s3, ARTIFACTS, versioned)
        s3.put_object(Bucket=ARTIFACTS, Key="code/abc/car_rental_job.py", Body=b"")
        values = {**car_rental_stand_ins(DATA), "ComputeMode": mode}
        sfn = boto3.client("stepfunctions", region_name=REGION)
        definition = _report_writing(
            scripted_definition(asl_text("car_rental_pipeline"), values, {**SCRIPTED_OK, **script})
        )
        machine = sfn.create_state_machine(
            name="car-rental", definition=definition, roleArn=f"arn:aws:iam::{ACCOUNT}:role/workflow"
        )["stateMachineArn"]
        outputs = {"DataBucketName": DATA, "ArtifactsBucketName": ARTIFACTS, "CarRentalStateMachineArn": machine,
                   "AlertTopicArn": values["AlertTopicArn"]}  # fmt: skip
        if outputs_missing:
            del outputs["CarRentalStateMachineArn"]
        template = {"Parameters": {"ComputeMode": {"Type": "String"}},
                    "Resources": {"Marker": {"Type": "AWS::SNS::Topic"}},
                    "Outputs": {k: {"Value": v} for k, v in outputs.items()}}  # fmt: skip
        cloudformation = boto3.client("cloudformation", region_name=REGION)
        cloudformation.create_stack(
            StackName="rental",
            TemplateBody=json.dumps(template),
            Parameters=[{"ParameterKey": "ComputeMode", "ParameterValue": mode}],
        )
        aws = AwsClients(s3=s3, stepfunctions=sfn, sns=boto3.client("sns", region_name=REGION))
        gate = GateSettings(DATA, machine, values["AlertTopicArn"])
        return AwsClients(s3=GateOnUpload(s3, gate, aws), stepfunctions=sfn, sns=aws.sns, cloudformation=cloudformation)

    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        yield deploy


def test_a_healthy_deployment_passes_every_step(deployed):
    progress: list[str] = []
    steps = verify_deployment("rental", deployed(), progress.append, FAST)

    assert [(s.name, s.passed) for s in steps] == [
        ("the stack's outputs", True),
        ("the bucket structure", True),
        ("the sample batch starts exactly one execution", True),
        ("the workflow succeeds", True),
        ("the EMR cluster is created", True),
        ("the Spark job ran", True),
        ("the EMR cluster is terminated", True),
        ("the crawler ran", True),
        ("Athena answered the insight queries", True),
        ("the notification went out", True),
        ("the report exists", True),
    ]
    assert any(line.startswith("workflow succeeded, in state: ") for line in progress)
    assert all(s.link.startswith(f"https://{REGION}.console.aws.amazon.com/") for s in steps)
    assert steps[0].line().startswith("PASS  the stack's outputs: rental")


def test_a_healthy_serverless_deployment_passes_the_serverless_stages(deployed):
    steps = verify_deployment("rental", deployed(mode="serverless"), print, FAST)

    assert [(s.name, s.passed) for s in steps] == [
        ("the stack's outputs", True),
        ("the bucket structure", True),
        ("the sample batch starts exactly one execution", True),
        ("the workflow succeeds", True),
        ("the Spark job ran on EMR Serverless", True),
        ("the crawler ran", True),
        ("Athena answered the insight queries", True),
        ("the notification went out", True),
        ("the report exists", True),
    ]


def test_a_stack_with_an_unknown_compute_mode_stops_at_once(deployed):
    [step] = verify_deployment("rental", deployed(mode="lambda"), print, FAST)
    assert not step.passed
    assert step.detail == "missing [\"the ComputeMode parameter (one of ['cluster', 'serverless'], found 'lambda')\"]"


def test_a_failing_spark_job_fails_its_steps_but_the_cluster_is_still_terminated(deployed):
    steps = {s.name: s for s in verify_deployment("rental", deployed(**{"Run the Spark job": FAIL}), print, FAST)}

    assert not steps["the workflow succeeds"].passed and not steps["the Spark job ran"].passed
    assert steps["the EMR cluster is terminated"].passed
    assert steps["the EMR cluster is terminated"].detail == "state 'Terminate the cluster after the failure' completed"
    assert not steps["the report exists"].passed and not steps["the notification went out"].passed


def test_an_unversioned_bucket_and_missing_outputs_are_named(deployed):
    steps = verify_deployment("rental", deployed(versioned=False), print, FAST)
    assert steps[1].line().startswith("FAIL  the bucket structure: artifacts-verify is not versioned")


def test_a_stack_without_the_workflow_output_stops_at_once(deployed):
    [step] = verify_deployment("rental", deployed(outputs_missing=True), print, FAST)
    assert (step.passed, step.detail) == (False, "missing ['CarRentalStateMachineArn']")
