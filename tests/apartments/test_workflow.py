"""The apartments workflow under moto: success, each job failing, resuming at each job, one run at a time."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.asl_harness import (
    FAIL,
    REGION,
    Hold,
    Raise,
    asl_text,
    create_machine,
    finish,
    placeholders,
    run,
    scripted_definition,
    start,
    state_tables,
)

ASL = asl_text("apartments_pipeline")
JOBS = {
    "RDS_TO_S3_job": "Extract from the source",
    "data_quality_job": "Check data quality",
    "transform_job": "Build the model",
    "glue_to_redshift_job": "Load the warehouse",
    "kpi_job": "Refresh the KPIs",
}
# The Glue `.sync` runs are scripted; the last-run record in SSM and every SNS publish run against moto.
JOBS_OK = dict.fromkeys(JOBS.values())


@pytest.fixture
def aws() -> Iterator[dict[str, str]]:
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        topic = boto3.client("sns", region_name=REGION).create_topic(Name="alerts")["TopicArn"]
        values = {name: f"test-{name.lower()}" for name in placeholders(ASL)}
        # No cluster to resume and pause unless a test makes one (WarehouseMode=provisioned).
        values.update(
            LastRunParameter="last-run", AlertTopicArn=topic, RedshiftClusterId="", WarehousePollSeconds="0",
            WarehouseMaxPolls="3",
        )  # fmt: skip
        yield values


def run_with(values: dict[str, str], execution_input: dict[str, Any], **script: Any) -> Any:
    return run(scripted_definition(ASL, values, {**JOBS_OK, **script}), values["AlertTopicArn"], execution_input)


def test_a_run_goes_through_every_job_and_records_its_load_date(aws):
    result = run_with(aws, {"load_date": "2024-06-02"})

    assert result.status == "SUCCEEDED"
    assert [s for s in result.entered if s in JOBS.values()] == list(JOBS.values())
    assert result.alerts == [
        (
            "Rental analytics: apartments load 2024-06-02 succeeded",
            "The apartments pipeline loaded 2024-06-02 into the warehouse and refreshed the KPI tables.",
        )
    ]
    record = boto3.client("ssm", region_name=REGION).get_parameter(Name="last-run")["Parameter"]["Value"]
    assert json.loads(record) == {"load_date": "2024-06-02"}


def test_a_scheduled_run_takes_the_schedules_date(aws):
    result = run_with(aws, {"scheduled_time": "2024-06-03T02:00:00Z"})
    assert result.status == "SUCCEEDED" and "2024-06-03" in result.alerts[0][0]


@pytest.mark.parametrize("job", JOBS)
def test_a_failing_job_alerts_once_naming_it_and_fails(aws, job: str):
    result = run_with(aws, {"load_date": "2024-06-02"}, **{JOBS[job]: FAIL})

    assert result.status == "FAILED"
    [(subject, message)] = result.alerts
    assert subject == f"Rental analytics: apartments job {job} failed"
    assert f"failed in the job {job} for load date 2024-06-02" in message
    assert f"failed_job {job}" in message  # how to resume
    later = list(JOBS.values())[list(JOBS).index(job) + 1 :]
    assert not set(later) & set(result.entered)


@pytest.mark.parametrize("job", JOBS)
def test_a_retry_resumes_at_the_failed_job_with_the_same_load_date(aws, job: str):
    assert run_with(aws, {"load_date": "2024-06-02"}, **{JOBS[job]: FAIL}).status == "FAILED"
    result = run_with(aws, {"retry": True, "failed_job": job})

    assert result.status == "SUCCEEDED"
    ran = [s for s in result.entered if s in JOBS.values()]
    assert ran == list(JOBS.values())[list(JOBS).index(job) :]
    assert "2024-06-02" in result.alerts[-1][0]


def test_a_retry_without_an_earlier_run_or_with_an_unknown_job_alerts(aws):
    nothing_to_resume = run_with(aws, {"retry": True, "failed_job": "kpi_job"})
    assert nothing_to_resume.status == "FAILED" and "start a fresh run" in nothing_to_resume.alerts[0][1]
    run_with(aws, {"load_date": "2024-06-02"})
    unknown = run_with(aws, {"retry": True, "failed_job": "not_a_job"})
    assert unknown.status == "FAILED" and "failed_job must be one of" in unknown.alerts[-1][1]


@pytest.mark.parametrize(
    "retry_input",
    [{"retry": True}, {"retry": True, "failed_job": None}, {"retry": True, "failed_job": ["kpi_job"]}],
    ids=["missing", "null", "not-a-string"],
)
def test_a_retry_without_a_valid_failed_job_alerts_and_fails_cleanly(aws, retry_input: dict[str, Any]):
    run_with(aws, {"load_date": "2024-06-02"})
    result = run_with(aws, retry_input)

    # FAILED through the workflow's own failure path, not a States.Runtime error that skips every alert.
    assert result.status == "FAILED"
    assert result.entered[-1] == "Refuse the retry request"
    [(subject, message)] = result.alerts[1:]
    assert subject == "Rental analytics: apartments retry refused"
    assert "failed_job must be one of RDS_TO_S3_job, data_quality_job, transform_job" in message
    assert not set(JOBS.values()) & set(result.entered)


# What Step Functions' Glue integration reports when Glue itself is busy or briefly unwell.
TRANSIENT = (
    "Glue.ConcurrentRunsExceededException",
    "Glue.ThrottlingException",
    "Glue.InternalServiceException",
    "Glue.OperationTimeoutException",
    "Glue.ResourceNumberLimitExceededException",
)


@pytest.mark.parametrize("error", TRANSIENT)
def test_a_transient_glue_error_is_retried_and_the_run_goes_on(aws, error: str):
    result = run_with(aws, {"load_date": "2024-06-02"}, **{JOBS["transform_job"]: Raise(error, times=1)})

    assert result.status == "SUCCEEDED"
    assert result.attempts == {JOBS["transform_job"]: 2}
    assert [s for s in result.entered if s in JOBS.values()] == list(JOBS.values())


@pytest.mark.parametrize(
    "error", ["Glue.EntityNotFoundException", "Glue.InvalidInputException", "Glue.AccessDeniedException"]
)
def test_a_permanent_error_is_not_retried(aws, error: str):
    # A job run that ends FAILED (a quality breach exits 1) is States.TaskFailed, which a scripted Fail state
    # may not raise (States.* names are reserved); test_every_job_retries_... checks no Retry names it. These
    # stand for it: errors that the same request meets again however often it is sent.
    result = run_with(aws, {"load_date": "2024-06-02"}, **{JOBS["data_quality_job"]: Raise(error, "for good")})

    assert result.status == "FAILED"
    assert result.attempts == {JOBS["data_quality_job"]: 1}
    [(subject, message)] = result.alerts
    assert subject == "Rental analytics: apartments job data_quality_job failed"
    assert f"Error: {error}. Cause: for good." in message


def test_transient_errors_that_outlast_the_retries_alert_naming_the_job(aws):
    result = run_with(aws, {"load_date": "2024-06-02"}, **{JOBS["kpi_job"]: Raise("Glue.ThrottlingException")})

    assert result.status == "FAILED"
    assert result.attempts == {JOBS["kpi_job"]: 3}  # the first run and two retries
    [(subject, _)] = result.alerts
    assert subject == "Rental analytics: apartments job kpi_job failed"


def test_every_job_retries_with_backoff_and_passes_the_load_date():
    definition = json.loads(ASL)
    for states in state_tables(definition):
        for name in JOBS.values():
            state = states[name]
            assert state["Resource"] == "arn:aws:states:::glue:startJobRun.sync"
            assert state["Parameters"]["Arguments"] == {"--load-date.$": "$.load_date"}
            assert all(r["BackoffRate"] > 1 for r in state["Retry"])
            assert {e for r in state["Retry"] for e in r["ErrorEquals"]} == set(TRANSIENT)
            assert state["Catch"][0]["ErrorEquals"] == ["States.ALL"]


def test_the_template_fills_every_placeholder_and_runs_each_job_from_the_shipped_scripts():
    from tests.repo import ROOT
    from tests.templates import APARTMENTS, ROOT_STACK

    resources = APARTMENTS.resources
    passed = ROOT_STACK.resources["Apartments"]["Properties"]["Parameters"]
    machine = resources["ApartmentsStateMachine"]["Properties"]
    assert placeholders(ASL) == set(machine["DefinitionSubstitutions"])
    shipped = {p.stem for p in (ROOT / "spark_scripts").glob("apartments_*.py")}
    for logical in ("ExtractJob", "QualityJob", "TransformJob", "LoadJob", "KpiJob"):
        job = resources[logical]["Properties"]
        assert job["GlueVersion"] == "5.0" and job["SecurityConfiguration"] == {"Ref": "GlueSecurityConfiguration"}
        attribute = passed[job["Command"]["ScriptLocation"]["Ref"]]["GetAtt"].split(".", 1)[1]
        stem = "_".join(re.findall(r"[A-Z][a-z]*", attribute.removesuffix("Script"))).lower()
        assert stem in shipped, attribute
        assert job["DefaultArguments"]["--extra-py-files"] == {"Ref": "CorePackage"}
    assert passed["CorePackage"] == {"GetAtt": "ShippedCode.CorePackage"}


def test_the_documented_alarms_and_the_daily_schedule_are_in_the_template():
    from tests.templates import APARTMENTS

    resources = APARTMENTS.resources
    alarms = {name: r["Properties"] for name, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    assert alarms["ApartmentsFailureAlarm"]["MetricName"] == "ExecutionsFailed"
    assert alarms["DataQualityBreachAlarm"]["MetricName"] == "DataQualityBreaches"
    assert alarms["ApartmentsRunTooLongAlarm"]["Threshold"] == 2 * 3600 * 1000
    stale = alarms["ApartmentsDataStaleAlarm"]
    assert (stale["Period"], stale["TreatMissingData"]) == (86400, "breaching")
    schedule = resources["ApartmentsDailySchedule"]["Properties"]
    assert json.loads(schedule["Target"]["Input"]) == {"scheduled_time": "<aws.scheduler.scheduled-time>"}
    assert APARTMENTS.parameters["WarehouseMode"]["Default"] == "serverless"
    assert resources["RedshiftWorkgroup"]["Properties"]["PubliclyAccessible"] is False


WAREHOUSE = "warehouse"
CLUSTER_STATES = ["Resume the warehouse", "Check the warehouse", "Pause the warehouse"]


@pytest.fixture
def paused_cluster(aws: dict[str, str]) -> dict[str, str]:
    """A provisioned warehouse, paused between runs as the workflow leaves it."""
    redshift = boto3.client("redshift", region_name=REGION)
    redshift.create_cluster(
        ClusterIdentifier=WAREHOUSE, NodeType="ra3.xlplus", ClusterType="multi-node", NumberOfNodes=2,
        MasterUsername="loader", MasterUserPassword="Not-a-real-1",
    )  # fmt: skip
    redshift.pause_cluster(ClusterIdentifier=WAREHOUSE)
    return {**aws, "RedshiftClusterId": WAREHOUSE}


def _cluster_status() -> str:
    [cluster] = boto3.client("redshift", region_name=REGION).describe_clusters(ClusterIdentifier=WAREHOUSE)["Clusters"]
    return str(cluster["ClusterStatus"])


def test_a_paused_cluster_is_resumed_for_the_load_and_paused_after_the_kpis(paused_cluster):
    result = run_with(paused_cluster, {"load_date": "2024-06-02"})

    assert result.status == "SUCCEEDED"
    order = [s for s in result.entered if s in {*CLUSTER_STATES, "Load the warehouse", "Refresh the KPIs"}]
    assert order == [
        "Resume the warehouse",
        "Check the warehouse",
        "Load the warehouse",
        "Refresh the KPIs",
        "Pause the warehouse",
    ]
    assert result.inputs["Load the warehouse"]["warehouse"]["check"] == {"status": "available"}
    assert _cluster_status() == "paused"
    assert [subject for subject, _ in result.alerts] == ["Rental analytics: apartments load 2024-06-02 succeeded"]


@pytest.mark.parametrize("job", ["Load the warehouse", "Refresh the KPIs"])
def test_a_run_that_fails_after_resuming_pauses_the_cluster_again(paused_cluster, job: str):
    result = run_with(paused_cluster, {"load_date": "2024-06-02"}, **{job: FAIL})

    assert result.status == "FAILED"
    assert "Pause the warehouse after the failure" in result.entered
    assert _cluster_status() == "paused"
    [(subject, _)] = result.alerts
    assert subject.startswith("Rental analytics: apartments job")


def test_a_failure_before_the_load_leaves_the_paused_cluster_paused(paused_cluster):
    result = run_with(paused_cluster, {"load_date": "2024-06-02"}, **{"Extract from the source": FAIL})

    assert result.status == "FAILED"
    assert "Resume the warehouse" not in result.entered
    assert _cluster_status() == "paused"


def test_a_retry_at_the_kpis_resumes_the_cluster_first(paused_cluster):
    run_with(paused_cluster, {"load_date": "2024-06-02"}, **{"Refresh the KPIs": FAIL})
    result = run_with(paused_cluster, {"retry": True, "failed_job": "kpi_job"})

    assert result.status == "SUCCEEDED"
    order = [s for s in result.entered if s in {*CLUSTER_STATES, "Load the warehouse", "Refresh the KPIs"}]
    assert order == ["Resume the warehouse", "Check the warehouse", "Refresh the KPIs", "Pause the warehouse"]
    assert _cluster_status() == "paused"


def test_a_cluster_that_cannot_be_resumed_fails_the_run_naming_the_load(aws):
    result = run_with({**aws, "RedshiftClusterId": "no-such-cluster"}, {"load_date": "2024-06-02"})

    assert result.status == "FAILED"
    assert "Load the warehouse" not in result.entered
    [(subject, message)] = result.alerts
    assert subject == "Rental analytics: apartments job glue_to_redshift_job failed"
    assert "WarehouseNotAvailable" in message or "no-such-cluster" in message


def test_without_a_cluster_to_pause_the_jobs_start_at_once(aws):
    result = run_with(aws, {"load_date": "2024-06-02"})
    assert result.status == "SUCCEEDED"
    assert not set(CLUSTER_STATES) & set(result.entered)


def test_the_stack_resumes_and_pauses_only_a_provisioned_cluster_it_is_asked_to():
    from tests.deployed import deployment

    for mode, pause, cluster in (
        ("provisioned", "true", True),
        ("provisioned", "false", False),
        ("serverless", "true", False),
    ):
        machine = deployment(mode, PauseWarehouseBetweenRuns=pause).apartments
        substituted = machine.properties("ApartmentsStateMachine")["DefinitionSubstitutions"]["RedshiftClusterId"]
        assert (substituted == machine.physical_name("RedshiftCluster")) is cluster, (mode, pause)
        assert cluster or substituted == ""


def _wait_for_cluster(status: str) -> None:
    deadline = time.monotonic() + 30
    while _cluster_status() != status:
        assert time.monotonic() < deadline, f"the warehouse never became {status}"
        time.sleep(0.05)


def test_a_run_started_while_another_loads_is_refused_and_leaves_the_warehouse_to_it(paused_cluster):
    # Had the later run gone on and failed, its failure path would have paused the cluster under the load.
    script = {**JOBS_OK, "Load the warehouse": Hold(3), "Extract from the source": FAIL}
    machine = create_machine(scripted_definition(ASL, paused_cluster, script))
    boto3.client("ssm", region_name=REGION).put_parameter(
        Name="last-run", Value='{"load_date": "2024-06-01"}', Type="String", Overwrite=True
    )
    loading = start(machine, {"retry": True, "failed_job": "glue_to_redshift_job"})
    _wait_for_cluster("available")

    later = finish(start(machine, {"load_date": "2024-06-02"}), paused_cluster["AlertTopicArn"])
    status_during_the_load = _cluster_status()
    earlier = finish(loading, paused_cluster["AlertTopicArn"])

    assert later.status == "FAILED"
    assert not set(later.entered) & {*JOBS.values(), *CLUSTER_STATES, "Pause the warehouse after the failure"}
    assert status_during_the_load == "available"
    assert earlier.status == "SUCCEEDED"
    assert _cluster_status() == "paused"
    refusals = [message for subject, message in later.alerts if "another is going" in subject]
    assert len(refusals) == 1 and loading in refusals[0]


def test_a_retry_started_while_a_fresh_run_extracts_is_refused_rather_than_taking_its_date(aws):
    machine = create_machine(scripted_definition(ASL, aws, {**JOBS_OK, "Extract from the source": Hold(3)}))
    boto3.client("ssm", region_name=REGION).put_parameter(
        Name="last-run", Value='{"load_date": "2024-06-01"}', Type="String", Overwrite=True
    )
    today = start(machine, {"load_date": "2024-06-02"})
    while "Extract from the source" not in _entered(today):
        time.sleep(0.05)

    retry = finish(start(machine, {"retry": True, "failed_job": "glue_to_redshift_job"}), aws["AlertTopicArn"])
    fresh = finish(today, aws["AlertTopicArn"])

    assert retry.status == "FAILED"
    assert "Read the last run" not in retry.entered and "Load the warehouse" not in retry.entered
    assert fresh.status == "SUCCEEDED"
    assert fresh.inputs["Load the warehouse"]["load_date"] == "2024-06-02"


def test_a_run_whose_running_executions_cannot_be_listed_does_nothing_and_alerts(aws):
    result = run_with(aws, {"load_date": "2024-06-02"}, **{"Find the runs going": Raise("Sfn.AccessDeniedException")})

    assert result.status == "FAILED"
    assert not set(result.entered) & {*JOBS.values(), "Record the run"}
    [(subject, message)] = result.alerts
    assert subject == "Rental analytics: apartments run refused, its runs could not be listed"
    assert "Sfn.AccessDeniedException" in message


def _entered(execution: str) -> list[str]:
    events = boto3.client("stepfunctions", region_name=REGION).get_execution_history(executionArn=execution)["events"]
    return [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]
