"""Database URLs and credentials: parsed from a URL, the environment or Secrets Manager, never printed."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from rental_analytics.apartments.db_url import DatabaseUrl, MySqlDriver, resolve_database_url
from rental_analytics.platform.config import ConfigError


def test_a_url_becomes_jdbc_options_without_showing_the_password():
    url = DatabaseUrl.parse("mysql://app:s%40cret@db.example:3307/market")
    assert url.jdbc_options() == {
        "url": "jdbc:mysql://db.example:3307/market?permitMysqlScheme=true&connectTimeout=30000&socketTimeout=3600000",
        "driver": "org.mariadb.jdbc.Driver",
        "user": "app",
        "password": "s@cret",
        "queryTimeout": "3000",
    }
    assert "s@cret" not in str(url) and "s@cret" not in repr(url)
    assert (
        DatabaseUrl.parse("postgresql://etl@wh/analytics").jdbc_url
        == "jdbc:postgresql://wh:5432/analytics?connectTimeout=30&loginTimeout=30&socketTimeout=3600"
    )


def test_on_glue_mysql_is_read_with_oracles_connector_j_and_cursor_fetching():
    url = DatabaseUrl.parse("mysql://app:pw@aurora.internal/market").read_with(MySqlDriver.CONNECTOR_J)
    assert url.jdbc_options() == {
        "url": "jdbc:mysql://aurora.internal:3306/market?useCursorFetch=true&connectTimeout=30000&socketTimeout=3600000",
        "driver": "com.mysql.cj.jdbc.Driver",
        "user": "app",
        "password": "pw",
        "queryTimeout": "3000",
    }
    assert url.with_database("other").driver_class == "com.mysql.cj.jdbc.Driver"
    assert (
        url.read_with(MySqlDriver.MARIADB).jdbc_options()
        == DatabaseUrl.parse("mysql://app:pw@aurora.internal/market").jdbc_options()
    )


@pytest.mark.parametrize(
    "bad", ["oracle://u@h/d", "mysql://h/d", "mysql://u@h/", "not a url", "mysql://u@h:99999/d", "mysql://u@h:abc/d"]
)
def test_malformed_urls_are_refused(bad: str):
    with pytest.raises(ConfigError):
        DatabaseUrl.parse(bad)


def test_the_password_may_wait_in_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("RA_DB", "mysql://app@db:3306/market")
    monkeypatch.setenv("RA_DB_PASSWORD", "from-env")
    assert resolve_database_url("mysql", None, None, "RA_DB").password == "from-env"
    monkeypatch.delenv("RA_DB")
    with pytest.raises(ConfigError, match="set RA_DB"):
        resolve_database_url("mysql", None, None, "RA_DB")


def test_a_secret_in_the_rds_layout_is_read_from_secrets_manager():
    with mock_aws():
        client = boto3.client("secretsmanager")
        secret = {"username": "etl", "password": "pw", "host": "aurora.internal", "port": 3306, "dbname": "market"}
        arn = client.create_secret(Name="source", SecretString=json.dumps(secret))["ARN"]
        url = resolve_database_url("mysql", None, arn, "UNUSED", client)
        assert (url.user, url.password, url.host, url.database) == ("etl", "pw", "aurora.internal", "market")
        client.create_secret(Name="partial", SecretString=json.dumps({"username": "etl"}))
        with pytest.raises(ConfigError, match="password, host, dbname"):
            resolve_database_url("mysql", None, "partial", "UNUSED", client)


def test_a_login_only_secret_takes_the_endpoint_from_the_arguments():
    secret = {"username": "loader", "password": "pw"}
    url = DatabaseUrl.from_secret("redshift", secret, host="wg.example", port=5439, dbname="dev")
    assert url.jdbc_url == "jdbc:redshift://wg.example:5439/dev?loginTimeout=30&socketTimeout=3600"
    assert url.jdbc_options()["driver"] == "com.amazon.redshift.Driver"
