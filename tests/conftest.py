"""Shared fixtures: one local Spark session for the whole run, and batch-folder builders."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import boto3
import pytest
from moto import mock_aws

# Nothing here may reach real AWS: fake credentials and a region, set before boto3 is imported anywhere.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "PYARROW_IGNORE_TIMEZONE": "1",
        "SPARK_LOCAL_IP": "127.0.0.1",
    }
)
os.environ.setdefault("RENTAL_ANALYTICS_SPARK_MASTER", "local[2]")
# A class-data archive is ~140 MB written as a JVM exits: tests that want one ask for it in a folder of their own.
os.environ.setdefault("RENTAL_ANALYTICS_CLASS_CACHE", "off")

_real_connect = socket.socket.connect


def _loopback_only(self: socket.socket, address: object) -> object:
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and host not in ("127.0.0.1", "localhost", "::1") and not host.startswith("/"):
        raise OSError(f"tests may not reach the network ({host})")
    return _real_connect(self, address)  # type: ignore[arg-type]


socket.socket.connect = _loopback_only  # type: ignore[assignment,method-assign]


@pytest.fixture
def s3() -> Iterator[Any]:
    """A moto S3 with the two buckets every stack has, "data" and "artifacts"."""
    with mock_aws():
        client = boto3.client("s3")
        for bucket in ("data", "artifacts"):
            client.create_bucket(Bucket=bucket)
        yield client


@pytest.fixture(scope="session")
def spark() -> Iterator[object]:
    from rental_analytics.platform.spark_session import local_session

    session = local_session("rental-analytics-tests", shuffle_partitions=2, driver_memory="2g")
    yield session
    session.stop()


BatchWriter = Callable[..., Path]


@pytest.fixture
def write_batch(tmp_path: Path) -> BatchWriter:
    """Write a batch folder from {dataset: csv text or bytes}; the file name may be given with the key."""

    def write(files: dict[str, str | bytes], name: str = "batch") -> Path:
        folder = tmp_path / name
        folder.mkdir(parents=True, exist_ok=True)
        for key, content in files.items():
            file_name = key if "." in key else f"{key}.csv"
            data = content.encode("utf-8") if isinstance(content, str) else content
            (folder / file_name).write_bytes(data)
        return folder

    return write


MYSQL_SERVER = "mysql://root@127.0.0.1:3306/test"


def _mysql_admin(sql: str) -> None:
    import pymysql

    from rental_analytics.apartments.db_url import DatabaseUrl

    server = DatabaseUrl.parse(MYSQL_SERVER)
    connection = pymysql.connect(host=server.host, port=server.port, user=server.user, password=server.password)
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
    finally:
        connection.close()


@pytest.fixture
def source() -> Iterator[object]:
    """A MySQL database of its own on the real MariaDB server, dropped afterwards."""
    import uuid

    from rental_analytics.apartments.db_url import DatabaseUrl

    name = f"ra_test_{uuid.uuid4().hex[:10]}"
    _mysql_admin(f"CREATE DATABASE {name}")
    try:
        yield DatabaseUrl.parse(MYSQL_SERVER).with_database(name)
    finally:
        _mysql_admin(f"DROP DATABASE IF EXISTS {name}")
