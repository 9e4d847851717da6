"""What a run cost and where its time went, from the AWS responses that record it, priced by the stack's table."""

from __future__ import annotations

import datetime as dt
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rental_analytics.platform.config import ConfigError

TB = 1_000_000_000_000
# Athena bills at least 10 MB per query (Athena pricing page).
ATHENA_MIN_BYTES = 10_000_000
# A crawler run is billed for at least 10 minutes (AWS Glue pricing page).
CRAWLER_MIN_HOURS = 10 / 60
# An instance is billed by the second, 60 seconds at least, for EC2 (Linux, On-Demand and Spot: "billed on one
# second increments, with a minimum of 60 seconds", EC2 per-second billing, 2017) and for EMR's fee alike
# ("per-second ... with a one-minute minimum", EMR FAQ). EMR Serverless applies its own minimum (1 minute per
# worker) in GetJobRun's billedResourceUtilization, which is what is priced.
INSTANCE_MIN_SECONDS = 60
# What a cluster's cost leaves out: its instances' EBS volumes, whose sizes neither DescribeCluster nor
# ListInstances give (the root volume's size is the cluster's, the data volumes' EMR's default per type).
EBS_NOT_COUNTED = (
    "the EBS volumes of the cluster's instances (root and data volumes, billed per GB-month by the second), "
    "whose sizes the cluster's description does not give"
)
# The price parameters' formats: the stack's AllowedPatterns are these (CloudFormation matches the whole value),
# so what the deploy accepts is exactly what the report step parses.
PRICE_PATTERN = r"[0-9]+(\.[0-9]+)?"
INSTANCE_PRICE_PATTERN = rf"[a-z0-9-]+\.[a-z0-9-]+:{PRICE_PATTERN}:{PRICE_PATTERN}"
INSTANCE_PRICES_PATTERN = rf"({INSTANCE_PRICE_PATTERN}(,{INSTANCE_PRICE_PATTERN})*)?"
SERVERLESS_PRICES_PATTERN = rf"{PRICE_PATTERN}:{PRICE_PATTERN}:{PRICE_PATTERN}"


@dataclass(frozen=True)
class InstancePrice:
    """One instance type's On-Demand hourly prices: EC2's and EMR's fee on top."""

    ec2: float
    emr: float


@dataclass(frozen=True)
class PriceTable:
    """The list prices the stack holds as parameters, and the day they were read (docs/deployment.md)."""

    prices_date: str
    instances: Mapping[str, InstancePrice]
    spot_share: float  # a Spot hour's EC2 price as a share of On-Demand's (an estimate: Spot prices move)
    athena_per_tb: float
    crawler_per_dpu_hour: float
    serverless_vcpu_hour: float
    serverless_gb_hour: float
    serverless_storage_gb_hour: float

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> PriceTable | None:
        """The table from the environment; None when PRICES_DATE is not set (the report shows usage, no prices).

        PRICES_DATE, INSTANCE_PRICES (`type:ec2:emr,...`), SPOT_PRICE_SHARE, ATHENA_PRICE_PER_TB,
        CRAWLER_PRICE_PER_DPU_HOUR and SERVERLESS_PRICES (`vcpu-hour:GB-hour:storage-GB-hour`).
        """
        date = environ.get("PRICES_DATE", "").strip()
        if not date:
            return None
        listed, serverless = environ.get("INSTANCE_PRICES", ""), environ.get("SERVERLESS_PRICES", "")
        for name, value, pattern in (
            ("INSTANCE_PRICES", listed, INSTANCE_PRICES_PATTERN),
            ("SERVERLESS_PRICES", serverless, SERVERLESS_PRICES_PATTERN),
        ):
            if not re.fullmatch(pattern, value):
                raise ConfigError(f"the price table's {name} must match {pattern}, not {value!r}")
        instances = {}
        for entry in filter(None, listed.split(",")):
            name, ec2, emr = entry.split(":")
            if name in instances:
                raise ConfigError(f"the price table's INSTANCE_PRICES names {name} twice")
            instances[name] = InstancePrice(float(ec2), float(emr))
        vcpu, gb, storage = (float(p) for p in serverless.split(":"))
        try:
            return cls(
                date,
                instances,
                float(environ["SPOT_PRICE_SHARE"]),
                float(environ["ATHENA_PRICE_PER_TB"]),
                float(environ["CRAWLER_PRICE_PER_DPU_HOUR"]),
                vcpu,
                gb,
                storage,
            )
        except (KeyError, ValueError) as error:
            raise ConfigError(f"the price table is incomplete or malformed: {error!r}") from None


@dataclass(frozen=True)
class CostItem:
    """One billed item: what, how much of it, and what that cost (None when the table has no price for it)."""

    item: str
    quantity: float
    unit: str
    cost: float | None

    def as_dict(self) -> dict[str, Any]:
        return {"item": self.item, "quantity": self.quantity, "unit": self.unit, "cost": self.cost}


def _hours(start: dt.datetime, end: dt.datetime) -> float:
    return max((end - start).total_seconds(), 0.0) / 3600


def _billed_instance_hours(start: dt.datetime, end: dt.datetime) -> float:
    """An instance's billed time: whole seconds, rounded up, 60 at least."""
    return max(math.ceil((end - start).total_seconds()), INSTANCE_MIN_SECONDS) / 3600


# The states in which compute no longer bills: anything else is still running (or stopping) at report time.
CLUSTER_ENDED = ("TERMINATED", "TERMINATED_WITH_ERRORS")
JOB_RUN_ENDED = ("SUCCESS", "FAILED", "CANCELLED")


def still_billing(described: Mapping[str, Any]) -> str | None:
    """What of the compute (DescribeCluster's or GetJobRun's response) was still billing at report time, or None.

    Its cost so far is then a lower bound, so the report names it in `cost.unknown`: never a complete, cheap run.
    """
    if "jobRun" in described:
        run = described["jobRun"]
        if run["state"] not in JOB_RUN_ENDED:
            return f"the job run {run.get('jobRunId', '')} was still {run['state']} at report time (counted so far)"
        return None
    cluster = described["Cluster"]
    if cluster["Status"]["State"] not in CLUSTER_ENDED:
        state = cluster["Status"]["State"]
        return f"the cluster {cluster.get('Id', '')} was still {state} at report time (counted up to then)"
    return None


BILLED_FIGURES = ("vCPUHour", "memoryGBHour", "storageGBHour")


def unbilled(job_run: Mapping[str, Any]) -> str | None:
    """What of an ended job run's billed figures GetJobRun did not give, or None: its cost is then not known."""
    run = job_run["jobRun"]
    if run.get("state") not in JOB_RUN_ENDED:
        return None  # still_billing names it
    missing = [key for key in BILLED_FIGURES if key not in (run.get("billedResourceUtilization") or {})]
    if not missing:
        return None
    return f"the job run {run.get('jobRunId', '')} ended without its billed {', '.join(missing)} in GetJobRun"


def cluster_items(
    described: Mapping[str, Any],
    instances: Iterable[Mapping[str, Any]],
    prices: PriceTable | None,
    now: dt.datetime | None = None,
) -> list[CostItem]:
    """The cluster's billed instance-hours per type and market, from ListInstances' timelines, priced.

    Each instance is billed from its creation to its end by the whole second, rounded up, and 60 seconds at least
    (INSTANCE_MIN_SECONDS). An instance with no end of its own counts up to the cluster's end, or, for a cluster
    not ended, up to `now` (`still_billing` names it); with neither, its minimum rather than a guess.
    """
    cluster_end = described["Cluster"]["Status"]["Timeline"].get("EndDateTime") or now
    hours: dict[tuple[str, str], float] = {}
    for instance in instances:
        timeline = instance["Status"]["Timeline"]
        start = timeline.get("CreationDateTime")
        if start is None:
            continue  # requested, never launched: not billed
        end = timeline.get("EndDateTime") or cluster_end or start
        key = (instance["InstanceType"], instance.get("Market", "ON_DEMAND"))
        hours[key] = hours.get(key, 0.0) + _billed_instance_hours(start, end)
    items = []
    for (instance_type, market), used in sorted(hours.items()):
        price = prices.instances.get(instance_type) if prices else None
        cost = None
        if price is not None and prices is not None:
            ec2 = price.ec2 * (prices.spot_share if market == "SPOT" else 1.0)
            cost = used * (ec2 + price.emr)
        label = "On-Demand" if market == "ON_DEMAND" else "Spot"
        items.append(CostItem(f"EC2 and EMR, {instance_type} {label}", used, "instance-hours", cost))
    return items


def serverless_items(job_run: Mapping[str, Any], prices: PriceTable | None) -> list[CostItem]:
    """The job run's billed vCPU-, memory- and storage-hours (GetJobRun's billedResourceUtilization).

    A run not ended has no billed figures yet: its total use so far stands in (`still_billing` names it).
    """
    run = job_run["jobRun"]
    ended = run.get("state") in JOB_RUN_ENDED
    billed = (run.get("billedResourceUtilization") if ended else run.get("totalResourceUtilization")) or {}
    rates = (
        (prices.serverless_vcpu_hour, prices.serverless_gb_hour, prices.serverless_storage_gb_hour)
        if prices
        else (None, None, None)
    )
    items = []
    for (key, label, unit), rate in zip(
        (
            ("vCPUHour", "EMR Serverless vCPU", "vCPU-hours"),
            ("memoryGBHour", "EMR Serverless memory", "GB-hours"),
            ("storageGBHour", "EMR Serverless storage", "GB-hours"),
        ),
        rates,
    ):
        used = float(billed.get(key) or 0.0)
        items.append(CostItem(label, used, unit, None if rate is None else used * rate))
    return items


def athena_items(queries: Sequence[Mapping[str, Any]], prices: PriceTable | None) -> list[CostItem]:
    """Each query's bytes scanned (GetQueryExecution's Statistics, as `{"name", "statistics"}`), 10 MB at least."""
    items = []
    for query in queries:
        scanned = int((query.get("statistics") or {}).get("DataScannedInBytes") or 0)
        billed = max(scanned, ATHENA_MIN_BYTES)
        cost = None if prices is None else billed / TB * prices.athena_per_tb
        items.append(CostItem(f"Athena, {query['name']}", scanned, "bytes scanned", cost))
    return items


def crawler_items(
    crawls: Mapping[str, Any], started_after: dt.datetime | None, prices: PriceTable | None
) -> list[CostItem]:
    """The DPU-hours of the crawls this run started (ListCrawls' DPUHour), billed at 10 minutes at least."""
    items = []
    for crawl in crawls.get("Crawls", []):
        start = crawl.get("StartTime")
        if started_after is not None and (start is None or start < started_after):
            continue
        used = float(crawl.get("DPUHour") or 0.0)
        cost = None if prices is None else max(used, CRAWLER_MIN_HOURS) * prices.crawler_per_dpu_hour
        items.append(CostItem("Glue crawler", used, "DPU-hours", cost))
    return items


def cost_summary(
    items: Sequence[CostItem],
    prices: PriceTable | None,
    unknown: Sequence[str] = (),
    not_counted: Sequence[str] = (),
) -> dict[str, Any]:
    """The report's `cost`: each item, the total of the priced ones, the prices' date, and what could not be read.

    `not_counted` names what the items never count: small, known and the same for every run of a mode, so it
    leaves `complete` and the trend their meaning.
    """
    priced = [i.cost for i in items if i.cost is not None]
    return {
        "currency": "USD",
        "prices_date": prices.prices_date if prices else None,
        "items": [i.as_dict() for i in items],
        "total": round(sum(priced), 6) if priced and prices else None,
        "complete": bool(prices) and len(priced) == len(items) and not unknown,
        "unknown": list(unknown),
        "not_counted": list(not_counted),
    }


# The workflow's stages, each from the first entry into its first state to the last exit of its last state.
# Cluster mode splits its compute span by the cluster's timeline into start, Spark and stop.
STAGES = (
    ("crawler", "Start the crawler", "Is the crawler done?"),
    ("queries", "Run the insight queries", "Run the insight queries"),
)
COMPUTE_MODES = ("cluster", "serverless")
SERVERLESS_STATE = "Run the Spark job on EMR Serverless"
COMPUTE_STATES = {
    "cluster": ("Create the cluster", "Run the Spark job", "Terminate the cluster"),
    "serverless": (SERVERLESS_STATE, SERVERLESS_STATE, SERVERLESS_STATE),
}


def _state_times(events: Iterable[Mapping[str, Any]]) -> tuple[dict[str, dt.datetime], dict[str, dt.datetime]]:
    entered: dict[str, dt.datetime] = {}
    exited: dict[str, dt.datetime] = {}
    for event in events:
        if "stateEnteredEventDetails" in event:
            entered.setdefault(event["stateEnteredEventDetails"]["name"], event["timestamp"])
        elif "stateExitedEventDetails" in event:
            exited[event["stateExitedEventDetails"]["name"]] = event["timestamp"]
    return entered, exited


def stage_times(
    events: Sequence[Mapping[str, Any]],
    mode: str,
    now: dt.datetime,
    compute_ready: dt.datetime | None = None,
    report_state: str = "Publish the report",
) -> list[dict[str, Any]]:
    """Seconds per stage from the execution's history (GetExecutionHistory's events, oldest first).

    queue: from the execution's start until the compute was asked for (the wait for the run lock included);
    start: until the cluster (or the job run) was ready; Spark: the job; stop: the cluster's termination;
    crawler, queries; report: until `now`, as the report step writes it. A stage the run never reached is left out.
    """
    entered, exited = _state_times(events)
    started = next((e["timestamp"] for e in events if e.get("type") == "ExecutionStarted"), None)
    first, spark, last = COMPUTE_STATES[mode]
    stages: list[dict[str, Any]] = []

    def add(stage: str, start: dt.datetime | None, end: dt.datetime | None) -> None:
        if start is not None and end is not None:
            stages.append({"stage": stage, "seconds": round(max((end - start).total_seconds(), 0.0), 3)})

    add("queue", started, entered.get(first))
    spark_start = entered.get(spark)
    if compute_ready is not None and spark_start is not None:
        add("start", entered.get(first), max(compute_ready, spark_start))
        spark_start = max(compute_ready, spark_start)
    add("Spark", spark_start, exited.get(spark))
    if last != spark:
        # The cluster ends by one of two states: after the job, or on the failure path.
        stop = next((name for name in (last, f"{last} after the failure") if name in entered), last)
        add("stop", entered.get(stop), exited.get(stop))
    for stage, first_state, last_state in STAGES:
        add(stage, entered.get(first_state), exited.get(last_state))
    add("report", entered.get(report_state), now)
    return stages
