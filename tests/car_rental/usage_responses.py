"""Recorded AWS responses of one cluster-mode run and one serverless job run, in botocore's shapes.

tests/car_rental/test_costs.py validates each against the output shape of its operation in botocore's service
model, so a member misspelt here (or renamed by AWS) fails there, not silently in the cost.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

T0 = dt.datetime(2024, 6, 1, 6, 0, tzinfo=dt.timezone.utc)
CLUSTER_ID = "j-2AXXXXXXGAPLF"


def at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


DESCRIBE_CLUSTER: dict[str, Any] = {
    "Cluster": {
        "Id": CLUSTER_ID,
        "Name": "car-rental-2024-06-01",
        "Status": {
            "State": "TERMINATED",
            "StateChangeReason": {"Code": "USER_REQUEST", "Message": "Terminated by user request"},
            "Timeline": {"CreationDateTime": at(0), "ReadyDateTime": at(7), "EndDateTime": at(22)},
        },
        "InstanceCollectionType": "INSTANCE_FLEET",
        "ReleaseLabel": "emr-7.7.0",
        "NormalizedInstanceHours": 48,
        "Tags": [{"Key": "project", "Value": "rental-analytics"}],
    }
}


def _instance(number: int, instance_type: str, market: str, fleet: str) -> dict[str, Any]:
    return {
        "Id": f"ci-0000000000{number}",
        "Ec2InstanceId": f"i-0000000000000000{number}",
        "Status": {
            "State": "TERMINATED",
            "StateChangeReason": {"Code": "CLUSTER_TERMINATED", "Message": "Instance group terminated"},
            "Timeline": {"CreationDateTime": at(1), "ReadyDateTime": at(6), "EndDateTime": at(22)},
        },
        "InstanceFleetId": fleet,
        "Market": market,
        "InstanceType": instance_type,
    }


LIST_INSTANCES: dict[str, Any] = {
    "Instances": [
        _instance(1, "m5.xlarge", "ON_DEMAND", "if-PRIMARY"),
        _instance(2, "r6g.2xlarge", "ON_DEMAND", "if-CORE"),
        _instance(3, "r7g.2xlarge", "SPOT", "if-CORE"),
        # Requested but never launched (the Spot request was not fulfilled): no timeline start, no bill.
        {
            "Id": "ci-00000000004",
            "Status": {"State": "AWAITING_FULFILLMENT", "Timeline": {}},
            "InstanceFleetId": "if-CORE",
            "Market": "SPOT",
            "InstanceType": "r5.2xlarge",
        },
    ]
}

LIST_CRAWLS: dict[str, Any] = {
    "Crawls": [
        {"CrawlId": "c-earlier", "State": "COMPLETED", "StartTime": at(-1440), "EndTime": at(-1438), "DPUHour": 0.3},
        {"CrawlId": "c-this-run", "State": "COMPLETED", "StartTime": at(22), "EndTime": at(24), "DPUHour": 0.05},
    ]
}


def get_query_execution(query_id: str, scanned: int) -> dict[str, Any]:
    return {
        "QueryExecution": {
            "QueryExecutionId": query_id,
            "Query": "SELECT 1",
            "StatementType": "DML",
            "ResultConfiguration": {"OutputLocation": f"s3://artifacts/athena-results/{query_id}.csv"},
            "Status": {"State": "SUCCEEDED", "SubmissionDateTime": at(24), "CompletionDateTime": at(24.5)},
            "Statistics": {
                "EngineExecutionTimeInMillis": 1200,
                "DataScannedInBytes": scanned,
                "TotalExecutionTimeInMillis": 1500,
                "QueryQueueTimeInMillis": 100,
            },
            "WorkGroup": "rental-analytics",
        }
    }


def _event(number: int, kind: str, minutes: float, state: str | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {"timestamp": at(minutes), "type": kind, "id": number, "previousEventId": number - 1}
    if kind.endswith("StateEntered"):
        event["stateEnteredEventDetails"] = {"name": state}
    elif kind.endswith("StateExited"):
        event["stateExitedEventDetails"] = {"name": state}
    return event


_STATES = [
    ("Take the run lock", "Task", -2, -1.9),
    ("Create the cluster", "Task", 0, 0.05),
    ("Run the Spark job", "Task", 0.1, 17),
    ("Terminate the cluster", "Task", 17, 22),
    ("Start the crawler", "Task", 22, 22.05),
    ("Is the crawler done?", "Choice", 23.9, 24),
    ("Run the insight queries", "Map", 24, 25),
    ("Publish the report", "Task", 25, None),
]


def execution_history() -> dict[str, Any]:
    """GetExecutionHistory of the run up to its report (oldest first)."""
    events = [_event(1, "ExecutionStarted", -2)]
    for name, kind, entered, exited in _STATES:
        events.append(_event(len(events) + 1, f"{kind}StateEntered", entered, name))
        if exited is not None:
            events.append(_event(len(events) + 1, f"{kind}StateExited", exited, name))
    return {"events": events}


GET_JOB_RUN: dict[str, Any] = {
    "jobRun": {
        "applicationId": "00fabcdefghijk0l",
        "jobRunId": "00fabcdefghijk1m",
        "name": "car-rental-2024-06-01",
        "arn": "arn:aws:emr-serverless:us-east-1:123456789012:/applications/00fabcdefghijk0l/jobruns/00fabcdefghijk1m",
        "createdBy": "arn:aws:sts::123456789012:assumed-role/workflow/session",
        "createdAt": at(0),
        "updatedAt": at(9),
        "executionRole": "arn:aws:iam::123456789012:role/job",
        "state": "SUCCESS",
        "stateDetails": "Job run completed.",
        "releaseLabel": "emr-7.7.0",
        "jobDriver": {"sparkSubmit": {"entryPoint": "s3://artifacts/code/car_rental_job.py"}},
        "totalResourceUtilization": {"vCPUHour": 1.2, "memoryGBHour": 5.0, "storageGBHour": 24.0},
        "billedResourceUtilization": {"vCPUHour": 1.5, "memoryGBHour": 6.0, "storageGBHour": 0.0},
        "totalExecutionDurationSeconds": 480,
        "startedAt": at(1.5),
        "endedAt": at(9),
    }
}

LIST_JOB_RUNS: dict[str, Any] = {
    "jobRuns": [
        {
            "applicationId": GET_JOB_RUN["jobRun"]["applicationId"],
            "id": GET_JOB_RUN["jobRun"]["jobRunId"],
            "name": "2024-06-01-0123",
            "arn": GET_JOB_RUN["jobRun"]["arn"],
            "createdBy": GET_JOB_RUN["jobRun"]["createdBy"],
            "createdAt": at(0),
            "updatedAt": at(9),
            "executionRole": GET_JOB_RUN["jobRun"]["executionRole"],
            "state": "SUCCESS",
            "stateDetails": "Job run completed.",
            "releaseLabel": "emr-7.7.0",
        }
    ]
}
