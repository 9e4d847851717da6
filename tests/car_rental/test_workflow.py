"""The car-rental workflow, executed by moto's Step Functions interpreter with scripted `.sync` states.

Each scenario swaps the states that moto cannot run (EMR, Athena `.sync`, the Lambda invoke) for scripted
results: a Pass with the state's result, or a Task that fails, keeping the original Catch. The crawler start,
the named-query reads and every SNS publish run for real against moto. A `Raise` fails a state with the error
the real integration reports, under the state's own Retry.
"""

from __future__ import annotations

import copy
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from rental_analytics.car_rental.contract import INSIGHT_QUERIES
from rental_analytics.car_rental.report import Failure
from tests.asl_harness import (
    FAIL,
    ROOT,
    Compose,
    Hold,
    Raise,
    Run,
    asl_text,
    car_rental_stand_ins,
    create_machine,
    finish,
    placeholders,
    run,
    scripted_definition,
    start,
    state_tables,
)
from tests.templates import CAR_RENTAL, ROOT_STACK

ASL_SOURCE = asl_text("car_rental_pipeline")  # what DefinitionSubstitutions fill: runs start from this
ASL = ASL_SOURCE
CLUSTER = {"ClusterId": "j-SCRIPTED"}
REPORT = {"subject": "Rental analytics: batch 2024-06-01 succeeded", "message": "Batch 2024-06-01: SUCCEEDED."}
CRAWL_OK = {"Crawler": {"State": "READY", "LastCrawl": {"Status": "SUCCEEDED"}}}
SCRIPTED_OK: dict[str, Any] = {
    "Create the cluster": CLUSTER,
    "Run the Spark job": None,
    "Run the Spark job on EMR Serverless": None,
    "Terminate the cluster": None,
    "Terminate the cluster after the failure": None,
    "Check the crawler": CRAWL_OK,
    "Run the query": {"output": "s3://artifacts/athena-results/q.csv", "statistics": {"DataScannedInBytes": 1024}},
    "Publish the report": REPORT,
    # The report function's alert (`Failure.alert`) for a cause without line breaks or control characters.
    "Publish the failure report": Compose(
        {
            "alert.$": "States.Format('Car-rental batch {} failed in the state: {}. Error: {}. Cause: {}. The report: "
            "s3://data/reports/{}/report.html.', $.batch_id, $.failure.state, $.failure.error, $.failure.cause, "
            "$.batch_id)"
        }
    ),
    "End the cluster the ended run left": None,
    "Find the job runs left running": {"runs": []},
}


@pytest.fixture
def aws() -> Iterator[dict[str, str]]:
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        yield car_rental_stand_ins("data")


def run_scenario(
    values: dict[str, str], execution_input: dict[str, Any] | None = None, name: str | None = None, **overrides: Any
) -> Run:
    definition = scripted_definition(ASL_SOURCE, values, {**SCRIPTED_OK, **overrides})
    return run(definition, values["AlertTopicArn"], execution_input or {"batch_id": "2024-06-01"}, name)


def _lock_items() -> list[dict[str, Any]]:
    return boto3.client("dynamodb").scan(TableName="run-lock")["Items"]


def _terminations(entered: list[str]) -> int:
    return sum(name in ("Terminate the cluster", "Terminate the cluster after the failure") for name in entered)


def test_every_placeholder_comes_from_the_template():
    machine = CAR_RENTAL.resources["CarRentalStateMachine"]["Properties"]
    assert placeholders(ASL) == set(machine["DefinitionSubstitutions"])


def test_the_success_path_runs_every_stage_once_and_tells_people(aws):
    result = run_scenario(aws)
    assert result.status == "SUCCEEDED"
    for stage in ("Create the cluster", "Run the Spark job", "Terminate the cluster", "Start the crawler",
                  "Check the crawler", "Run the insight queries", "Publish the report", "Tell people it succeeded"):  # fmt: skip
        assert result.entered.count(stage) == 1, stage
    assert result.entered.count("Read the query") == len(INSIGHT_QUERIES)
    assert result.alerts == [(REPORT["subject"], REPORT["message"])]


def test_the_job_and_the_report_get_the_folder_the_gate_staged(aws):
    staged = "s3://data/staged/2024-06-01/2024-06-01-0123/"
    result = run_scenario(aws, {"batch_id": "2024-06-01", "input_path": staged, "files": {}})
    assert result.status == "SUCCEEDED"
    assert "Read the batch from raw/" not in result.entered
    assert result.inputs["Run the Spark job"]["input_path"] == staged
    assert result.inputs["Publish the report"]["input_path"] == staged


def test_a_run_started_by_hand_reads_the_raw_folder(aws):
    result = run_scenario(aws, {"batch_id": "2024-06-01"})
    assert result.status == "SUCCEEDED"
    assert result.inputs["Run the Spark job"]["input_path"] == "s3://data/raw/2024-06-01/"


THROTTLED = Raise(
    "EMR.AmazonElasticMapReduceException",
    "Rate exceeded (Service: AmazonElasticMapReduce; Status Code: 400; Error Code: ThrottlingException)",
)
FAILURES = {
    "the cluster cannot be created": ({"Create the cluster": FAIL}, "Create the cluster", False),
    "EMR refuses the cluster request": (
        {"Create the cluster": Raise("EMR.InvalidRequestException")},
        "Create the cluster",
        False,
    ),
    "EMR throttles every cluster request": ({"Create the cluster": THROTTLED}, "Create the cluster", False),
    # The cluster id is known from here on: every failure below must end the cluster. The step's wait fails
    # alike when the job fails, when it outlives its timeout (States.Timeout) and when the cluster never starts
    # (EMR cancels the pending step): the one Catch takes them all.
    "the Spark step fails": ({"Run the Spark job": FAIL}, "Run the Spark job", True),
    "the cluster does not terminate": ({"Terminate the cluster": FAIL}, "Terminate the cluster", True),
    "the crawler cannot start": ({"Start the crawler": FAIL}, "Start the crawler", True),
    "the crawler cannot be checked": ({"Check the crawler": FAIL}, "Check the crawler", True),
    "the crawl fails": (
        {"Check the crawler": {"Crawler": {"State": "READY", "LastCrawl": {"Status": "FAILED"}}}},
        "Check the crawler",
        True,
    ),
    "the crawler times out": ({"Check the crawler": {"Crawler": {"State": "RUNNING"}}}, "Check the crawler", True),
    "a query fails": ({"Run the query": FAIL}, "Run the insight queries", True),
    "the report fails": ({"Publish the report": FAIL}, "Publish the report", True),
}


@pytest.mark.parametrize("scenario", FAILURES)
def test_each_failure_terminates_the_cluster_alerts_once_and_fails(aws, scenario: str):
    script, failed_state, cluster_existed = FAILURES[scenario]
    result = run_scenario(aws, **script)

    assert result.status == "FAILED"
    assert _terminations(result.entered) == (1 if cluster_existed else 0)
    [(subject, message)] = result.alerts
    assert subject == "Rental analytics: a car-rental batch failed"
    assert f"Car-rental batch 2024-06-01 failed in the state: {failed_state}." in message
    assert "test-emrloguri" in message and ":execution:machine-" in message  # where the logs are
    assert "s3://data/reports/2024-06-01/report.html" in message
    assert result.inputs["Publish the failure report"]["failure"]["state"] == failed_state
    if cluster_existed:  # the report comes after the cluster is gone
        terminated = [i for i, name in enumerate(result.entered) if name.startswith("Terminate the cluster")]
        assert terminated[-1] < result.entered.index("Publish the failure report")
    if scenario == "the cluster does not terminate":
        _assert_the_lock_names_the_cluster_left_running(result, message)
        return
    assert result.entered[-6:] == [
        "Publish the failure report", "Did the failure report write the alert?", "Was compute left running?",
        "Release the run lock after the failure", "Alert the failure", "Fail the run",
    ]  # fmt: skip
    assert _lock_items() == []


# A location or file name carried into an error message, with a line break and a terminal escape sequence.
HOSTILE_CAUSE = "no location 'Airport\nCar-rental batch 2024-06-02 SUCCEEDED' \x1b[2J\x1b[31mred"


@pytest.mark.parametrize("report_written", [True, False], ids=["with the failure report", "without it"])
def test_a_cause_from_data_never_starts_a_line_of_the_failure_alert(aws, report_written: bool):
    failure = {"state": "Run the Spark job", "error": "EMR.StepFailed", "cause": HOSTILE_CAUSE}
    # The report function's own account of this failure, or the report function failing.
    alert = Failure.from_event(failure).alert("2024-06-01", "s3://data/reports/2024-06-01/report.html")
    report = {"alert": alert} if report_written else FAIL
    result = run_scenario(
        aws, **{"Run the Spark job": Raise("EMR.StepFailed", HOSTILE_CAUSE), "Publish the failure report": report}
    )

    assert result.status == "FAILED"
    assert result.inputs["Publish the failure report"]["failure"] == failure  # the cause as it came
    [(_, message)] = result.alerts
    assert len(message.splitlines()) == 1 and "\x1b" not in message
    assert "Where to look: the execution arn:aws:states:" in message
    if report_written:
        assert message.startswith(alert + " Where to look:")
        assert "no location 'Airport Car-rental batch 2024-06-02 SUCCEEDED' \\x1b[2J\\x1b[31mred" in message
    else:  # nothing in the workflow can make the cause printable: it is left to the execution's history
        assert "Airport" not in message and "Note: the failure report failed" in result.entered
        assert message.startswith("A car-rental batch failed in the state: Run the Spark job.")


def _assert_the_lock_names_the_cluster_left_running(result: Run, message: str) -> None:
    assert result.entered[-5:] == [
        "Publish the failure report", "Did the failure report write the alert?", "Was compute left running?",
        "Alert the failure", "Fail the run",
    ]  # fmt: skip
    assert "Release the run lock after the failure" not in result.entered
    assert (
        "The cluster j-SCRIPTED did not terminate" in message
        and "terminate-clusters --cluster-ids j-SCRIPTED" in message
    )
    [item] = _lock_items()
    assert item["cluster_id"]["S"] == "j-SCRIPTED" and ":execution:machine-" in item["holder"]["S"]


def test_a_cluster_that_outlives_a_failure_keeps_the_lock_until_the_next_run_ends_it(aws):
    failed = run_scenario(aws, **{"Run the Spark job": FAIL, "Terminate the cluster after the failure": FAIL})

    assert failed.status == "FAILED"
    [(_, message)] = failed.alerts
    assert "failed in the state: Run the Spark job." in message  # the failure stays the Spark job's
    _assert_the_lock_names_the_cluster_left_running(failed, message)

    following = run_scenario(aws, {"batch_id": "2024-06-02"})
    assert following.status == "SUCCEEDED"
    ending = following.inputs["End the cluster the ended run left"]["lock"]["read"]["Item"]
    assert ending["cluster_id"]["S"] == "j-SCRIPTED"
    assert following.entered.index("End the cluster the ended run left") < following.entered.index("Create the cluster")
    assert _lock_items() == []


def test_the_cluster_id_is_kept_before_anything_waits_on_the_cluster():
    # createCluster.sync returns the id only once the cluster runs: a failed or timed-out wait left a cluster
    # that no failure path knew of. RunJobFlow answers with the id at once; the step's .sync wait comes after.
    states = json.loads(ASL)["States"]
    create = states["Create the cluster"]
    assert create["Resource"] == "arn:aws:states:::elasticmapreduce:createCluster"
    assert create["ResultSelector"] == {"ClusterId.$": "$.ClusterId"} and create["ResultPath"] == "$.cluster"
    noted = states[create["Next"]]  # the lock names the cluster first, so that a later run can end it
    assert noted["Parameters"]["ExpressionAttributeValues"][":cluster"] == {"S.$": "$.cluster.ClusterId"}
    assert states[noted["Catch"][0]["Next"]]["Next"] == "Terminate the cluster after the failure"
    assert states[noted["Next"]]["Parameters"]["ClusterId.$"] == "$.cluster.ClusterId"


def test_a_permanent_cluster_request_error_is_tried_once_and_alerts(aws):
    error = "EMR.InvalidRequestException"  # EMR's API model: a request it will never accept
    result = run_scenario(aws, **{"Create the cluster": Raise(error)})

    assert result.attempts["Create the cluster"] == 1
    assert _terminations(result.entered) == 0  # no id, nothing to end
    [(_, message)] = result.alerts
    assert f"Error: {error}." in message


def _retrier_for(state: dict[str, Any], error: str) -> dict[str, Any]:
    """The first retrier that takes the error, as Step Functions picks it."""
    return next(r for r in state["Retry"] if error in r["ErrorEquals"] or "States.ALL" in r["ErrorEquals"])


@pytest.mark.parametrize("raised", [THROTTLED, Raise("EMR.InternalServerErrorException")], ids=lambda r: r.error)
def test_a_throttled_cluster_request_is_retried_briefly_then_alerts(aws, raised: Raise):
    retrier = _retrier_for(json.loads(ASL)["States"]["Create the cluster"], raised.error)
    result = run_scenario(aws, **{"Create the cluster": raised})

    assert result.attempts["Create the cluster"] == 1 + retrier["MaxAttempts"] > 1
    assert _terminations(result.entered) == 0
    [(_, message)] = result.alerts
    assert f"Error: {raised.error}." in message
    # A permanent error can share the throttling error's name: the whole retry budget stays near a minute.
    waits = [retrier["IntervalSeconds"] * retrier["BackoffRate"] ** n for n in range(retrier["MaxAttempts"])]
    assert sum(waits) <= 120


def test_the_definition_is_json_before_it_is_filled():
    # CloudFormation fills a DefinitionS3Location file's placeholders as text (cloudformation-coverage-roadmap
    # issue 591: a bare number placeholder there failed where the inline DefinitionString worked): every
    # placeholder stands inside a string, and numbers are made from strings by States.StringToJson.
    definition = json.loads(ASL_SOURCE)
    assert "TimeoutSeconds" not in definition
    numbers = re.findall(r"[:\[,]\s*\$\{\w+\}", ASL_SOURCE)
    assert numbers == []


def test_every_state_that_waits_has_a_bound_from_the_template():
    # With no execution timeout, each wait must end by itself; a sync task by its TimeoutSecondsPath.
    for states in state_tables(json.loads(ASL)):
        for name, state in states.items():
            if state["Type"] == "Task" and state["Resource"].endswith(".sync"):
                assert state.get("TimeoutSecondsPath", "").startswith("$."), name


def test_a_crawler_that_never_crawled_is_asked_for_real_and_alerts(aws):
    # moto answers getCrawler as AWS does for a crawler that has never run: READY, and no LastCrawl at all.
    script = {k: v for k, v in SCRIPTED_OK.items() if k != "Check the crawler"}
    definition = scripted_definition(ASL_SOURCE, aws, {**script, "Start the crawler": None})
    result = run(definition, aws["AlertTopicArn"], {"batch_id": "2024-06-01"})

    assert result.status == "FAILED"
    assert result.entered[-7:-2] == [
        "Note: the crawler never crawled", "Publish the failure report", "Did the failure report write the alert?",
        "Was compute left running?", "Release the run lock after the failure",
    ]  # fmt: skip
    [(_, message)] = result.alerts
    assert "has no finished crawl" in message


def test_a_running_crawler_is_asked_for_real_until_the_polls_run_out(aws):
    # moto's crawler, once started, stays RUNNING: the poll counter ends the wait.
    script = {k: v for k, v in SCRIPTED_OK.items() if k != "Check the crawler"}
    result = run(scripted_definition(ASL_SOURCE, aws, script), aws["AlertTopicArn"], {"batch_id": "2024-06-01"})
    assert result.status == "FAILED"
    assert result.entered.count("Check the crawler") == 3
    assert "Note: the crawler timed out" in result.entered


def test_the_alert_subject_fits_sns_for_the_longest_batch_id(aws):
    batch_id = "b" * 128
    result = run_scenario(aws, {"batch_id": batch_id}, **{"Run the Spark job": FAIL})
    [(subject, message)] = result.alerts
    assert len(subject) <= 100 and batch_id in message


def test_a_hung_spark_step_times_out_by_a_template_setting(aws):
    definition = json.loads(ASL)
    assert definition["States"]["Run the Spark job"]["TimeoutSecondsPath"] == "$.limits.spark_step_seconds"
    result = run_scenario(aws)
    assert result.inputs["Run the Spark job"]["limits"]["spark_step_seconds"] == int(aws["SparkStepTimeoutSeconds"])


def test_a_cluster_left_by_a_stopped_execution_ends_itself_within_the_step_timeout_and_the_idle_timeout():
    # connect-emr: Step Functions does not terminate a cluster when the execution is stopped. YARN kills the Spark
    # application once it has run SparkStepTimeoutSeconds; the cluster, idle then, ends itself.
    parameters = json.loads(ASL)["States"]["Create the cluster"]["Parameters"]
    [scheduler] = [c for c in parameters["Configurations"] if c["Classification"] == "capacity-scheduler"]
    assert scheduler["Properties"] == {
        "yarn.scheduler.capacity.root.default.maximum-application-lifetime": "${SparkStepTimeoutSeconds}"
    }
    assert parameters["AutoTerminationPolicy"] == {"IdleTimeout.$": "States.StringToJson('${EmrIdleTimeoutSeconds}')"}


def test_the_cluster_carries_the_tag_the_emr_managed_policy_requires():
    tags = json.loads(ASL)["States"]["Create the cluster"]["Parameters"]["Tags"]
    assert {"Key": "for-use-with-amazon-emr-managed-policies", "Value": "true"} in tags


def test_the_crawler_is_polled_until_it_is_done(aws):
    result = run_scenario(aws, **{"Check the crawler": {"Crawler": {"State": "RUNNING"}}})
    assert result.entered.count("Check the crawler") == 3
    assert result.entered.count("Wait for the crawler") == 3


def test_the_spark_step_gets_its_arguments_from_the_input_and_the_substitutions(aws):
    definition = json.loads(scripted_definition(ASL_SOURCE, aws, {}))
    args = definition["States"]["Run the Spark job"]["Parameters"]["Step"]["HadoopJarStep"]["Args.$"]
    assert "$.input_path" in args and "$.batch_id" in args
    assert "'test-jobscript'" in args and "'test-corepackage'" in args
    assert re.sub(r"'[^']*'|\$\.\w+", "", args.removeprefix("States.Array(").removesuffix(")")).strip(", ") == ""


SPARK_JOBS = ("arn:aws:states:::elasticmapreduce:addStep.sync", "arn:aws:states:::emr-serverless:startJobRun.sync")


def test_every_task_outside_the_failure_paths_retries_with_backoff():
    definition = json.loads(ASL)
    for states in state_tables(definition):
        for name, state in states.items():
            # A Spark job is not retried: a failing job would run, and bill, again for the same failure.
            if state["Type"] == "Task" and state["Resource"] not in SPARK_JOBS:
                assert state.get("Retry"), name
                assert all(r["BackoffRate"] > 1 for r in state["Retry"]), name


def test_the_workflow_runs_the_queries_and_the_job_the_local_run_runs():
    definition = json.loads(ASL)
    queries = definition["States"]["Set up the run"]["Parameters"]["queries"]
    assert [q["name"] for q in queries] == list(INSIGHT_QUERIES)
    machine = CAR_RENTAL.resources["CarRentalStateMachine"]["Properties"]["DefinitionSubstitutions"]
    assert machine["JobScript"] == {"Ref": "CarRentalJobScript"}
    assert ROOT_STACK.resources["CarRental"]["Properties"]["Parameters"]["CarRentalJobScript"] == {
        "GetAtt": "ShippedCode.CarRentalJobScript"
    }
    for camel in (q["id"][2:-1] for q in queries):
        assert machine[camel] == {"Ref": camel.removesuffix("Id")}


def test_the_definition_passes_statelint(tmp_path: Path):
    import subprocess
    import sys

    linter = Path(sys.executable).with_name("statelint")
    for path in sorted((ROOT / "statemachine").glob("*.asl.json")):
        # Lint what CloudFormation deploys: a number placeholder is JSON only once filled, and "1" fills both a
        # string and a number.
        filled = tmp_path / path.name
        filled.write_text(re.sub(r"\$\{\w+\}", "1", path.read_text()))
        checked = subprocess.run([str(linter), str(filled)], capture_output=True, text=True)
        assert checked.returncode == 0, path.name + ": " + checked.stdout + checked.stderr


def test_scripting_leaves_the_original_untouched():
    before = copy.deepcopy(json.loads(ASL))
    scripted_definition(ASL, {}, {"Create the cluster": FAIL})
    assert json.loads(ASL) == before


def test_the_success_path_takes_the_run_lock_names_its_cluster_and_releases_it(aws):
    result = run_scenario(aws)
    assert result.status == "SUCCEEDED"
    order = ["Take the run lock", "Create the cluster", "Note the cluster in the lock", "Run the Spark job",
             "Publish the report", "Release the run lock", "Tell people it succeeded"]  # fmt: skip
    assert [name for name in result.entered if name in order] == order
    assert _lock_items() == []


def _machine_of_long_runs(aws: dict[str, str], spark_seconds: int, max_polls: int) -> str:
    """A state machine whose runs hold the lock through a Spark step of `spark_seconds` (moto's crawler, once
    started, runs for ever: later starts are scripted)."""
    definition = scripted_definition(
        ASL_SOURCE,
        {**aws, "RunLockMaxPolls": str(max_polls)},
        {**SCRIPTED_OK, "Run the Spark job": Hold(spark_seconds), "Start the crawler": None},
    )
    return create_machine(definition)


def test_two_executions_started_together_run_one_after_the_other(aws):
    # A Spark step of three seconds: the second run waits for the first, polling each second.
    machine = _machine_of_long_runs(aws, spark_seconds=3, max_polls=30)
    executions = [start(machine, {"batch_id": batch}) for batch in ("2024-06-01", "2024-06-02")]
    first, second = sorted((finish(e, aws["AlertTopicArn"], seconds=60) for e in executions),
                           key=lambda r: dict(r.entered_at)["Create the cluster"])  # fmt: skip

    assert (first.status, second.status) == ("SUCCEEDED", "SUCCEEDED")
    assert "Wait for the earlier run" not in first.entered and "Wait for the earlier run" in second.entered
    assert dict(second.entered_at)["Create the cluster"] >= dict(first.entered_at)["Release the run lock"]
    # The second waits behind the first, the earliest run still running, without taking the lock it holds.
    assert (
        second.inputs["Has the wait in the queue run out?"]["lock"]["queue"]["earliest"]
        == first.inputs["Take the run lock"]["lock"]["me"]
    )
    assert _lock_items() == []


def test_runs_waiting_for_the_lock_take_it_in_the_order_they_started(aws):
    # Three batches, the later two started while the first runs: the later batch wins the merge, so the third
    # must never run before the second, whichever polls the lock first.
    machine = _machine_of_long_runs(aws, spark_seconds=2, max_polls=60)
    executions = []
    for batch in ("2024-06-01", "2024-06-02", "2024-06-03"):
        executions.append(start(machine, {"batch_id": batch}))
        time.sleep(0.3)  # distinct start times, in this order
    runs = [finish(e, aws["AlertTopicArn"], seconds=90) for e in executions]

    assert [r.status for r in runs] == ["SUCCEEDED"] * 3
    # Each later run first tries the lock only once the run before it has released it: it waits in the queue,
    # not at the lock, so no poll of a later run can take the lock first.
    for earlier, later in zip(runs, runs[1:]):
        first_try = next(at for name, at in later.entered_at if name == "Take the run lock")
        assert first_try >= dict(earlier.entered_at)["Release the run lock"]
    assert _lock_items() == []


def _ended_execution(aws: dict[str, str]) -> str:
    """An execution that was stopped by hand while it ran: it released nothing."""
    sfn = boto3.client("stepfunctions")
    machine = create_machine(
        json.dumps({"StartAt": "Run", "States": {"Run": {"Type": "Wait", "Seconds": 30, "End": True}}})
    )
    execution = start(machine, {})
    # Stopped once it runs its state: moto's worker has no environment to stop before then.
    deadline = time.monotonic() + 10
    while not any("stateEnteredEventDetails" in e for e in sfn.get_execution_history(executionArn=execution)["events"]):
        assert time.monotonic() < deadline, "the execution never started"
        time.sleep(0.01)
    sfn.stop_execution(executionArn=execution)
    return execution


def _hold_lock(holder: str, cluster_id: str | None, compute: tuple[str, str] | None = None) -> None:
    """The lock as `holder` left it: naming its cluster, and (from when locks name it) its compute mode and
    application."""
    item = {"data_root": {"S": "data"}, "holder": {"S": holder}, "batch_id": {"S": "2024-05-31"}}
    if cluster_id:
        item["cluster_id"] = {"S": cluster_id}
    if compute:
        item["compute_mode"], item["application_id"] = {"S": compute[0]}, {"S": compute[1]}
    boto3.client("dynamodb").put_item(TableName="run-lock", Item=item)


@pytest.mark.parametrize("holder", ["stopped", "unknown to Step Functions"])
def test_a_lock_whose_holder_has_ended_is_taken_over_after_its_cluster_is_ended(aws, holder: str):
    ended = (
        _ended_execution(aws)
        if holder == "stopped"
        else f"arn:aws:states:us-east-1:123456789012:execution:gone:{holder[:7]}"
    )
    _hold_lock(ended, "j-LEFTRUNNING")

    result = run_scenario(aws)

    assert result.status == "SUCCEEDED"
    assert "Wait for the earlier run" not in result.entered
    ending = result.inputs["End the cluster the ended run left"]["lock"]["read"]["Item"]
    assert ending["cluster_id"]["S"] == "j-LEFTRUNNING" and ending["holder"]["S"] == ended
    assert result.entered.index("Take over the lock") < result.entered.index("Create the cluster")
    assert _lock_items() == []


@pytest.mark.parametrize(
    "item",
    [
        {"batch_id": {"S": "2024-05-31"}},  # no holder
        {"holder": {"N": "1"}},  # a holder that is not a string
        {"holder": {"S": "not-an-execution-arn"}, "cluster_id": {"S": "j-LEFTRUNNING"}},
        {"holder": {"S": "not-an-execution-arn"}},
    ],
    ids=["no holder", "a number", "not an ARN, with a cluster", "not an ARN"],
)
@pytest.mark.parametrize("mode", ["cluster", "serverless"])
def test_a_lock_item_written_by_hand_is_taken_over_not_honoured_forever(aws, item: dict[str, Any], mode: str):
    # In AWS a missing holder would end the run in the uncatchable States.Runtime, before any report or alert.
    boto3.client("dynamodb").put_item(TableName="run-lock", Item={"data_root": {"S": "data"}, **item})

    result = run_scenario({**aws, "ComputeMode": mode})

    assert result.status == "SUCCEEDED"
    assert "Note: the run lock failed" not in result.entered
    compute = "Create the cluster" if mode == "cluster" else "Run the Spark job on EMR Serverless"
    assert result.entered.index(compute) > max(
        i for i, name in enumerate(result.entered) if name.startswith("Take over")
    )
    assert _lock_items() == []


def test_a_run_that_waits_too_long_fails_with_its_report_and_leaves_the_live_runs_lock(aws):
    machine = create_machine(
        json.dumps({"StartAt": "Run", "States": {"Run": {"Type": "Wait", "Seconds": 30, "End": True}}})
    )
    live = start(machine, {})
    _hold_lock(live, "j-LIVE")
    try:
        result = run_scenario({**aws, "RunLockMaxPolls": "2"})
    finally:
        boto3.client("stepfunctions").stop_execution(executionArn=live)

    assert result.status == "FAILED"
    assert result.entered.count("Wait for the earlier run") == 2
    assert "Create the cluster" not in result.entered and _terminations(result.entered) == 0
    [(_, message)] = result.alerts
    assert "failed in the state: Wait for the earlier run" in message and live in message
    assert "Publish the failure report" in result.entered
    [item] = _lock_items()
    assert item["holder"]["S"] == live  # released only by its holder


def test_the_cluster_gets_the_core_capacity_the_gate_sized_for_the_batch(aws):
    sized = {"on_demand_units": 1, "spot_units": 3}
    staged = "s3://data/staged/2024-06-01/2024-06-01-0123/"
    result = run_scenario(aws, {"batch_id": "2024-06-01", "input_path": staged, "files": {}, "core_capacity": sized})
    assert result.status == "SUCCEEDED"
    assert result.inputs["Create the cluster"]["core_capacity"] == sized
    core = _core_fleet()
    assert core["TargetOnDemandCapacity.$"] == "$.core_capacity.on_demand_units"
    assert core["TargetSpotCapacity.$"] == "$.core_capacity.spot_units"


@pytest.mark.parametrize(
    "given",
    [None, {"on_demand_units": 2}, {"on_demand_units": "2", "spot_units": 1}],
    ids=["none", "no_spot_units", "units_as_text"],
)
def test_a_run_started_by_hand_gets_the_largest_cluster_on_demand(aws, given: dict[str, Any] | None):
    # A capacity the cluster request could not read would fail it with States.Runtime, which no Catch takes.
    result = run_scenario(aws, {"batch_id": "2024-06-01", **({"core_capacity": given} if given else {})})
    assert result.status == "SUCCEEDED"
    assert result.inputs["Create the cluster"]["core_capacity"] == {
        "on_demand_units": int(aws["CoreMaxUnits"]),
        "spot_units": 0,
    }


def _core_fleet() -> dict[str, Any]:
    fleets = json.loads(ASL)["States"]["Create the cluster"]["Parameters"]["Instances"]["InstanceFleets"]
    [core] = [f for f in fleets if f["InstanceFleetType"] == "CORE"]
    return dict(core)


def test_a_spot_shortage_launches_on_demand_instead_of_failing_from_several_instance_types():
    core = _core_fleet()
    spot = core["LaunchSpecifications"]["SpotSpecification"]
    assert spot["TimeoutAction"] == "SWITCH_TO_ON_DEMAND"
    assert spot["TimeoutDurationMinutes.$"] == "States.StringToJson('${SpotTimeoutMinutes}')"
    types = [c["InstanceType"] for c in core["InstanceTypeConfigs"]]
    assert len(set(types)) == 4 and all(c["WeightedCapacity"] == 1 for c in core["InstanceTypeConfigs"])
    defaults = CAR_RENTAL.parameters["CoreInstanceTypes"]["Default"].split(",")
    assert any(t.split(".")[0].endswith("g") for t in defaults), "a Graviton type among the defaults"


# --- ComputeMode=serverless: the same job on the stack's EMR Serverless application ---------------------------

SERVERLESS_FAILURES = {
    # The .sync wait fails alike when the job run fails and when it outlives TimeoutSecondsPath (States.Timeout,
    # which a scripted state cannot raise: the one Catch takes both, and the bound is checked below).
    "the Spark job fails": {"Run the Spark job on EMR Serverless": FAIL},
    "the job run is refused": {"Run the Spark job on EMR Serverless": Raise("EMRServerless.ValidationException")},
    "the crawl fails": {"Check the crawler": {"Crawler": {"State": "READY", "LastCrawl": {"Status": "FAILED"}}}},
}


def test_in_serverless_mode_the_job_runs_on_the_application_and_no_cluster_is_made(aws):
    result = run_scenario({**aws, "ComputeMode": "serverless"})
    assert result.status == "SUCCEEDED"
    assert result.entered.count("Run the Spark job on EMR Serverless") == 1
    assert not {"Create the cluster", "Run the Spark job", "Terminate the cluster"} & set(result.entered)
    assert result.entered.index("Run the Spark job on EMR Serverless") < result.entered.index("Start the crawler")
    assert result.alerts == [(REPORT["subject"], REPORT["message"])]
    assert _lock_items() == []


@pytest.mark.parametrize("scenario", SERVERLESS_FAILURES)
def test_in_serverless_mode_each_failure_writes_the_report_alerts_once_and_fails(aws, scenario: str):
    result = run_scenario({**aws, "ComputeMode": "serverless"}, **SERVERLESS_FAILURES[scenario])
    assert result.status == "FAILED"
    assert _terminations(result.entered) == 0 and "Create the cluster" not in result.entered
    [(subject, _)] = result.alerts
    assert subject == "Rental analytics: a car-rental batch failed"
    assert result.entered[-6:] == [
        "Publish the failure report", "Did the failure report write the alert?", "Was compute left running?",
        "Release the run lock after the failure", "Alert the failure", "Fail the run",
    ]  # fmt: skip
    assert _lock_items() == []


def test_a_serverless_job_run_is_bounded_twice_and_runs_what_the_cluster_runs():
    states = json.loads(ASL)["States"]
    job = states["Run the Spark job on EMR Serverless"]
    assert job["TimeoutSecondsPath"] == "$.limits.spark_step_seconds"  # Step Functions stops waiting
    assert job["Parameters"]["ExecutionTimeoutMinutes.$"] == "States.StringToJson('${ServerlessJobTimeoutMinutes}')"
    step = states["Run the Spark job"]["Parameters"]["Step"]["HadoopJarStep"]["Args.$"]
    driver = job["Parameters"]["JobDriver"]["SparkSubmit"]
    assert driver["EntryPoint"] == "${JobScript}" and "--py-files ${CorePackage}" in driver["SparkSubmitParameters"]
    # The same job arguments, after spark-submit's own.
    assert step.endswith(driver["EntryPointArguments.$"].removeprefix("States.Array(")), (step, driver)
    assert job["Parameters"]["Name.$"] == "$$.Execution.Name"  # the report step finds the job run by it


def _assert_only_its_job_run_is_cancelled(result: Run, application: str, mine: str) -> None:
    assert result.entered.count("Cancel the job run") == 1
    cancel = result.inputs["Cancel the job run"]
    assert cancel["id"] == mine and cancel["application"] == application
    assert result.entered.count("Another run's job run") == 2


@pytest.mark.parametrize(
    "lock",
    [
        pytest.param(("serverless", "test-serverlessapplicationid"), id="the lock names its application"),
        pytest.param(None, id="a lock taken before locks named their compute"),
    ],
)
def test_in_serverless_mode_a_lock_whose_holder_ended_is_taken_over_after_its_job_run_is_cancelled(aws, lock):
    ended = _ended_execution(aws)
    _hold_lock(ended, None, lock)
    left = {"Id": "00fleft", "Name": ended.rsplit(":", 1)[-1], "State": "RUNNING"}
    other = {"Id": "00fother", "Name": "someone-else", "State": "RUNNING"}
    unnamed = {"Id": "00fnoname", "State": "PENDING"}  # a job run started by hand, with no name
    result = run_scenario(
        {**aws, "ComputeMode": "serverless"},
        **{"Find the job runs left running": {"runs": [other, left, unnamed]}, "Cancel the job run": None},
    )

    assert result.status == "SUCCEEDED"
    _assert_only_its_job_run_is_cancelled(result, "test-serverlessapplicationid", "00fleft")
    assert "End the cluster the ended run left" not in result.entered
    assert result.entered.index("Cancel the job runs left running") < result.entered.index("Take over the lock")
    assert _lock_items() == []


def test_in_serverless_mode_a_job_run_left_that_cannot_be_looked_for_fails_the_run_before_any_job(aws):
    ended = _ended_execution(aws)
    _hold_lock(ended, None, ("serverless", "test-serverlessapplicationid"))
    result = run_scenario({**aws, "ComputeMode": "serverless"}, **{"Find the job runs left running": FAIL})
    assert result.status == "FAILED"
    assert "Run the Spark job on EMR Serverless" not in result.entered
    [(_, message)] = result.alerts
    assert "failed in the state: Cancel the job runs left running" in message
    [item] = _lock_items()  # still the ended run's: the next run tries again
    assert item["holder"]["S"] == ended


def test_every_lock_names_the_compute_of_its_run(aws):
    machine = create_machine(scripted_definition(ASL_SOURCE, {**aws, "ComputeMode": "serverless"}, {
        **SCRIPTED_OK, "Run the Spark job on EMR Serverless": Hold(30),
    }))  # fmt: skip
    execution = start(machine, {"batch_id": "2024-06-01"})
    deadline = time.monotonic() + 10
    while not (items := _lock_items()):
        assert time.monotonic() < deadline, "the run never took the lock"
        time.sleep(0.05)
    boto3.client("stepfunctions").stop_execution(executionArn=execution)
    [item] = items
    assert item["compute_mode"]["S"] == "serverless"
    assert item["application_id"]["S"] == "test-serverlessapplicationid"


# --- H2: a job run never outlives its run unnoticed, whatever Step Functions does with it ---------------------


def test_a_serverless_job_run_that_outlives_its_state_is_cancelled_before_the_lock_is_released(aws):
    # FAIL stands in for the Task's States.Timeout (which a scripted state cannot raise: the one Catch takes both).
    mine = {"Id": "00fmine", "Name": "run-7", "State": "RUNNING"}
    others = [{"Id": "00fother", "Name": "someone-else", "State": "RUNNING"}, {"Id": "00fnoname", "State": "QUEUED"}]
    result = run_scenario(
        {**aws, "ComputeMode": "serverless"},
        name="run-7",
        **{
            "Run the Spark job on EMR Serverless": FAIL,
            "Find the job runs left running": {"runs": [others[0], mine, others[1]]},
            "Cancel the job run": None,
        },
    )

    assert result.status == "FAILED"
    _assert_only_its_job_run_is_cancelled(result, "test-serverlessapplicationid", "00fmine")
    assert result.entered.index("Cancel the job run") < result.entered.index("Publish the failure report")
    assert result.entered.index("Publish the failure report") < result.entered.index(
        "Release the run lock after the failure"
    )
    [(_, message)] = result.alerts
    assert "failed in the state: Run the Spark job on EMR Serverless." in message
    assert _lock_items() == []


def test_a_serverless_lock_that_names_no_application_has_its_job_runs_looked_for_on_this_stacks(aws):
    ended = _ended_execution(aws)
    item = {"data_root": {"S": "data"}, "holder": {"S": ended}, "compute_mode": {"S": "serverless"}}
    boto3.client("dynamodb").put_item(TableName="run-lock", Item=item)

    result = run_scenario({**aws, "ComputeMode": "serverless"}, **{"Find the job runs left running": {"runs": []}})

    assert result.status == "SUCCEEDED"
    assert result.inputs["Find the job runs left running"]["job_runs"]["application"] == aws["ServerlessApplicationId"]
    assert _lock_items() == []


@pytest.mark.parametrize("state_now", ["SUCCESS", "RUNNING"])
def test_a_job_run_that_ended_between_the_list_and_the_cancel_is_not_left_running(aws, state_now: str):
    # CancelJobRun refuses a job run in a terminal state: that one is gone; any other refusal is still a failure.
    ended = _ended_execution(aws)
    _hold_lock(ended, None, ("serverless", aws["ServerlessApplicationId"]))
    left = {"Id": "00fleft", "Name": ended.rsplit(":", 1)[-1], "State": "RUNNING"}
    result = run_scenario(
        {**aws, "ComputeMode": "serverless"},
        **{
            "Find the job runs left running": {"runs": [left]},
            "Cancel the job run": Raise("EMRServerless.ValidationException", "Job run 00fleft is in a terminal state"),
            "Has the job run ended since it was listed?": {"state": state_now},
        },
    )

    if state_now == "SUCCESS":
        assert result.status == "SUCCEEDED" and "It had ended" in result.entered
        assert _lock_items() == []
    else:
        assert result.status == "FAILED" and "The job run was not cancelled" in result.entered
        [item] = _lock_items()
        assert item["holder"]["S"] == ended  # kept for the next run, which tries again


def test_both_report_payloads_name_the_compute_the_run_used():
    states = {**json.loads(ASL_SOURCE)["States"]}
    for name in ("Publish the report", "Publish the failure report"):
        compute = states[name]["Parameters"]["Payload"]["compute"]
        assert compute == {"mode": "${ComputeMode}", "application_id": "${ServerlessApplicationId}"}


@pytest.mark.parametrize("failing", ["Find the job runs left running", "Cancel the job run"])
def test_a_serverless_job_run_that_cannot_be_cancelled_keeps_the_lock_for_the_next_run_to_cancel(aws, failing):
    mine = {"Id": "00fmine", "Name": "run-8", "State": "RUNNING"}
    failed = run_scenario(
        {**aws, "ComputeMode": "serverless"},
        name="run-8",
        **{
            "Run the Spark job on EMR Serverless": FAIL,
            "Find the job runs left running": {"runs": [mine]},
            "Cancel the job run": None,
            failing: FAIL,
        },
    )

    assert failed.status == "FAILED"
    assert failed.entered[-5:] == [
        "Publish the failure report",
        "Did the failure report write the alert?",
        "Was compute left running?",
        "Alert the failure",
        "Fail the run",
    ]
    assert "Release the run lock after the failure" not in failed.entered
    [(_, message)] = failed.alerts
    assert "failed in the state: Run the Spark job on EMR Serverless." in message  # the failure stays the job's
    assert "job run run-8 could not be cancelled" in message and "cancel-job-run" in message
    assert failed.inputs["Publish the failure report"]["failure"]["job_run_left_running"] == "run-8"
    [item] = _lock_items()
    assert item["holder"]["S"].endswith(":run-8") and item["compute_mode"]["S"] == "serverless"

    following = run_scenario(
        {**aws, "ComputeMode": "serverless"},
        {"batch_id": "2024-06-02"},
        **{"Find the job runs left running": {"runs": [mine]}, "Cancel the job run": None},
    )
    assert following.status == "SUCCEEDED"
    assert following.inputs["Cancel the job run"]["id"] == "00fmine"
    assert following.entered.index("Cancel the job run") < following.entered.index(
        "Run the Spark job on EMR Serverless"
    )
    assert _lock_items() == []


# --- M4: ComputeMode switched while a run held the lock -------------------------------------------------------


def test_after_a_switch_to_serverless_a_lock_naming_a_cluster_has_its_cluster_ended(aws):
    ended = _ended_execution(aws)
    _hold_lock(ended, "j-LEFTRUNNING", ("cluster", "none"))
    result = run_scenario({**aws, "ComputeMode": "serverless"})

    assert result.status == "SUCCEEDED"
    ending = result.inputs["End the cluster the ended run left"]["lock"]["read"]["Item"]
    assert ending["cluster_id"]["S"] == "j-LEFTRUNNING"
    assert "Find the job runs left running" not in result.entered
    assert result.entered.index("End the cluster the ended run left") < result.entered.index(
        "Run the Spark job on EMR Serverless"
    )
    assert _lock_items() == []


def test_after_a_switch_to_cluster_a_lock_naming_a_job_run_has_it_cancelled_on_its_own_application(aws):
    ended = _ended_execution(aws)
    _hold_lock(ended, None, ("serverless", "00fformerapp"))
    left = {"Id": "00fleft", "Name": ended.rsplit(":", 1)[-1], "State": "RUNNING"}
    runs = [
        {"Id": "00fother", "Name": "someone-else", "State": "RUNNING"},
        left,
        {"Id": "00fnoname", "State": "PENDING"},
    ]
    result = run_scenario(aws, **{"Find the job runs left running": {"runs": runs}, "Cancel the job run": None})

    assert result.status == "SUCCEEDED"
    assert result.inputs["Find the job runs left running"]["job_runs"]["application"] == "00fformerapp"
    _assert_only_its_job_run_is_cancelled(result, "00fformerapp", "00fleft")
    assert "End the cluster the ended run left" not in result.entered
    assert result.entered.index("Cancel the job run") < result.entered.index("Create the cluster")
    assert _lock_items() == []


def test_after_a_switch_to_cluster_an_application_deleted_since_has_no_job_run_left(aws):
    ended = _ended_execution(aws)
    _hold_lock(ended, None, ("serverless", "00fformerapp"))
    result = run_scenario(aws, **{"Find the job runs left running": Raise("EMRServerless.ResourceNotFoundException")})

    assert result.status == "SUCCEEDED"
    assert "Cancel the job run" not in result.entered
    assert result.entered.index("Take over the lock") < result.entered.index("Create the cluster")
    assert _lock_items() == []
