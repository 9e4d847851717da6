"""`rental-analytics verify-deployment`: the checks of docs/deployment.md against a deployed stack."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rental_analytics.car_rental.contract import DATASETS
from rental_analytics.platform.aws import AwsClients, stack_outputs, stack_parameters
from rental_analytics.platform.progress import Progress

REQUIRED_OUTPUTS = ("DataBucketName", "ArtifactsBucketName", "CarRentalStateMachineArn", "AlertTopicArn")
# A stage of the workflow passed when the execution left it; these are the ones docs/deployment.md names. The
# compute stages depend on the stack's ComputeMode: a serverless run never enters the cluster's states.
_AFTER_SPARK: dict[str, tuple[str, ...]] = {
    "the crawler ran": ("Check the crawler",),
    "Athena answered the insight queries": ("Run the insight queries",),
    "the notification went out": ("Tell people it succeeded",),
}
STAGES: dict[str, dict[str, tuple[str, ...]]] = {
    "cluster": {
        "the EMR cluster is created": ("Create the cluster",),
        "the Spark job ran": ("Run the Spark job",),
        "the EMR cluster is terminated": ("Terminate the cluster", "Terminate the cluster after the failure"),
        **_AFTER_SPARK,
    },
    "serverless": {"the Spark job ran on EMR Serverless": ("Run the Spark job on EMR Serverless",), **_AFTER_SPARK},
}


@dataclass(frozen=True)
class Step:
    """One verification step's verdict, and where a person can look."""

    name: str
    passed: bool
    detail: str
    link: str = ""

    def line(self) -> str:
        """One line for a terminal."""
        where = f"\n        {self.link}" if self.link else ""
        return f"{'PASS' if self.passed else 'FAIL'}  {self.name}: {self.detail}{where}"


@dataclass(frozen=True)
class Waiting:
    """How long to wait for the workflow, and how often to look."""

    start_seconds: float = 300
    finish_seconds: float = 3600
    poll_seconds: float = 15
    sleep: Callable[[float], None] = time.sleep


def _console(region: str, path: str) -> str:
    return f"https://{region}.console.aws.amazon.com/{path}"


def _bucket_problems(s3: Any, bucket: str) -> list[str]:
    problems = []
    if s3.get_bucket_versioning(Bucket=bucket).get("Status") != "Enabled":
        problems.append(f"{bucket} is not versioned")
    try:
        s3.get_bucket_encryption(Bucket=bucket)
    except s3.exceptions.ClientError:
        problems.append(f"{bucket} has no default encryption")
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    if not all(block.values()):
        problems.append(f"{bucket} does not block all public access")
    if "aws:SecureTransport" not in s3.get_bucket_policy(Bucket=bucket)["Policy"]:
        problems.append(f"{bucket} does not refuse plain HTTP")
    return problems


def _upload_sample_batch(s3: Any, bucket: str, batch_id: str) -> None:
    from rental_analytics.car_rental.generate import GeneratorOptions, generate_car_rental

    with tempfile.TemporaryDirectory() as folder:
        generate_car_rental(Path(folder), GeneratorOptions(rentals=500, locations=20, seed=7))
        for name in DATASETS:
            s3.upload_file(str(Path(folder) / f"{name}.csv"), bucket, f"raw/{batch_id}/{name}.csv")


def _executions(sfn: Any, machine: str, batch_id: str) -> list[dict[str, Any]]:
    listed = sfn.list_executions(stateMachineArn=machine, maxResults=100)["executions"]
    return [e for e in listed if e["name"].startswith(f"{batch_id}-")]


def _completed_states(sfn: Any, execution_arn: str) -> tuple[set[str], str]:
    """The states that finished without failing (a caught failure still fails its state), and the latest one."""
    events = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
    open_states: list[str] = []
    left: set[str] = set()
    failed: set[str] = set()
    latest = "starting"
    for event in events:
        if "stateEnteredEventDetails" in event:
            latest = event["stateEnteredEventDetails"]["name"]
            open_states.append(latest)
        elif "stateExitedEventDetails" in event:
            name = event["stateExitedEventDetails"]["name"]
            left.add(name)
            if name in open_states:
                del open_states[len(open_states) - 1 - open_states[::-1].index(name)]  # the innermost one
        elif event["type"].endswith(("Failed", "TimedOut", "Aborted")) and open_states:
            failed.add(open_states[-1])
    return left - failed, latest


def verify_deployment(stack: str, aws: AwsClients, progress: Progress, waiting: Waiting | None = None) -> list[Step]:
    """Run the checks in order; a step that cannot run because an earlier one failed is reported as failed."""
    waiting = waiting or Waiting()
    region = aws.s3.meta.region_name
    steps: list[Step] = []
    outputs = stack_outputs(aws.cloudformation, stack)
    mode = stack_parameters(aws.cloudformation, stack).get("ComputeMode")
    missing = [key for key in REQUIRED_OUTPUTS if key not in outputs]
    if mode not in STAGES:
        missing.append(f"the ComputeMode parameter (one of {sorted(STAGES)}, found {mode!r})")
    stack_link = _console(region, f"cloudformation/home?region={region}#/stacks")
    steps.append(Step("the stack's outputs", not missing, f"missing {missing}" if missing else stack, stack_link))
    if missing:
        return steps
    data, artifacts = outputs["DataBucketName"], outputs["ArtifactsBucketName"]
    machine = outputs["CarRentalStateMachineArn"]
    progress("checking the buckets")
    problems = _bucket_problems(aws.s3, data) + _bucket_problems(aws.s3, artifacts)
    shipped = aws.s3.list_objects_v2(Bucket=artifacts, Prefix="code/", MaxKeys=1).get("KeyCount", 0) > 0
    if not shipped:
        problems.append(f"{artifacts} holds no shipped code under code/")
    detail = "; ".join(problems) or "both buckets versioned, encrypted, private and TLS-only; code shipped"
    steps.append(Step("the bucket structure", not problems, detail, _console(region, f"s3/buckets/{data}")))

    batch_id = f"verify-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}"
    progress(f"uploading a sample batch to s3://{data}/raw/{batch_id}/")
    _upload_sample_batch(aws.s3, data, batch_id)
    started = time.monotonic()
    runs: list[dict[str, Any]] = []
    while not runs and time.monotonic() - started < waiting.start_seconds:
        waiting.sleep(waiting.poll_seconds)
        runs = _executions(aws.stepfunctions, machine, batch_id)
    waiting.sleep(waiting.poll_seconds)  # a second start, if the gate made one, would show by now
    runs = _executions(aws.stepfunctions, machine, batch_id)
    machine_link = _console(region, f"states/home?region={region}#/statemachines/view/{machine}")
    one = Step("the sample batch starts exactly one execution", len(runs) == 1, f"{len(runs)} started", machine_link)
    steps.append(one)
    if len(runs) != 1:
        return steps

    execution = runs[0]["executionArn"]
    execution_link = _console(region, f"states/home?region={region}#/v2/executions/details/{execution}")
    status = "RUNNING"
    while status == "RUNNING" and time.monotonic() - started < waiting.finish_seconds:
        waiting.sleep(waiting.poll_seconds)
        status = aws.stepfunctions.describe_execution(executionArn=execution)["status"]
        _, current = _completed_states(aws.stepfunctions, execution)
        progress(f"workflow {status.lower()}, in state: {current} ({time.monotonic() - started:.0f} s)")
    left, _ = _completed_states(aws.stepfunctions, execution)
    steps.append(Step("the workflow succeeds", status == "SUCCEEDED", status, execution_link))
    for name, states in STAGES[str(mode)].items():
        done = [state for state in states if state in left]
        detail = f"state {done[0]!r} completed" if done else f"state {states[0]!r} did not complete"
        steps.append(Step(name, bool(done), detail, execution_link))
    report = f"reports/{batch_id}/"
    found = {o["Key"][len(report) :] for o in aws.s3.list_objects_v2(Bucket=data, Prefix=report).get("Contents", [])}
    wanted = {"summary.json", "report.html"}
    steps.append(
        Step(
            "the report exists",
            wanted <= found,
            f"{', '.join(sorted(wanted & found)) or 'nothing'} under s3://{data}/{report}",
            _console(region, f"s3/buckets/{data}?prefix={report}"),
        )
    )
    return steps
