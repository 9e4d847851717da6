"""The local session runs with the JIT and adaptive-execution settings that local_session says it sets."""

from __future__ import annotations

from typing import Any

from rental_analytics.platform.spark_session import LOCAL_ADVISORY_PARTITION_SIZE, OPTIMISE_ONLY_THE_HOTTEST


def _vm_option(spark: Any, name: str) -> str:
    jvm = spark.sparkContext._jvm
    bean = jvm.java.lang.management.ManagementFactory.getPlatformMXBean(
        jvm.java.lang.Class.forName("com.sun.management.HotSpotDiagnosticMXBean")
    )
    return str(bean.getVMOption(name).getValue())


def test_the_optimising_compiler_waits_for_the_hottest_code(spark: Any) -> None:
    expected = dict(option.removeprefix("-XX:").split("=") for option in OPTIMISE_ONLY_THE_HOTTEST)
    running = {name: _vm_option(spark, name) for name in expected}
    assert running == expected
    assert int(running["Tier4InvocationThreshold"]) == 10 * 5000  # ten times HotSpot's default


def test_adaptive_execution_merges_shuffle_partitions_only_up_to_16_mb(spark: Any) -> None:
    assert spark.conf.get("spark.sql.adaptive.advisoryPartitionSizeInBytes") == LOCAL_ADVISORY_PARTITION_SIZE == "16m"
