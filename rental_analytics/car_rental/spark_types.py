"""Spark types for the contract's schema strings, kept apart so that the gate never imports pyspark."""

from __future__ import annotations

import re

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from rental_analytics.car_rental.contract import Schema

_SIMPLE: dict[str, T.DataType] = {
    "string": T.StringType(),
    "bigint": T.LongType(),
    "int": T.IntegerType(),
    "double": T.DoubleType(),
    "date": T.DateType(),
    # Contract timestamps are naive wall-clock times: TIMESTAMP_NTZ keeps them free of any time zone.
    "timestamp": T.TimestampNTZType(),
}
_DECIMAL = re.compile(r"decimal\((\d+),(\d+)\)")


def spark_type(name: str) -> T.DataType:
    """The Spark type for one of the contract's type names."""
    decimal = _DECIMAL.fullmatch(name)
    if decimal:
        return T.DecimalType(int(decimal.group(1)), int(decimal.group(2)))
    return _SIMPLE[name]


def struct_type(schema: Schema) -> T.StructType:
    """A StructType for a contract schema; every column is nullable, as Parquet readers expect."""
    return T.StructType([T.StructField(name, spark_type(kind), True) for name, kind in schema])


def conform(frame: DataFrame, schema: Schema) -> DataFrame:
    """Select exactly the schema's columns, in its order, cast to its types."""
    columns: list[Column] = [F.col(name).cast(spark_type(kind)).alias(name) for name, kind in schema]
    return frame.select(*columns)
