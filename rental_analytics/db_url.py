"""Database URLs (`mysql://` and `postgresql://`) turned into JDBC options, with the password never printed."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from rental_analytics.config import ConfigError

_JDBC = {
    # MariaDB's Connector/J (Debian's libmariadb-java) speaks to MySQL, Aurora MySQL and MariaDB alike. The
    # URL says jdbc:mysql so that Spark picks its MySQL dialect (backquoted names); Connector/J 3 accepts
    # that scheme only with permitMysqlScheme.
    "mysql": ("jdbc:mysql", "org.mariadb.jdbc.Driver", 3306),
    "postgresql": ("jdbc:postgresql", "org.postgresql.Driver", 5432),
    # Glue 5.0 ships Amazon's Redshift JDBC driver.
    "redshift": ("jdbc:redshift", "com.amazon.redshift.Driver", 5439),
}


@dataclass(frozen=True)
class DatabaseUrl:
    """Where a database is and how to log in; `repr` and `str` hide the password."""

    scheme: str
    user: str
    host: str
    port: int
    database: str
    password: str = field(default="", repr=False)

    @classmethod
    def parse(cls, url: str, password_env: str | None = None) -> DatabaseUrl:
        """Read `SCHEME://USER[:PASSWORD]@HOST[:PORT]/DATABASE`; the password may come from `password_env`."""
        parts = urlsplit(url)
        if parts.scheme not in _JDBC:
            raise ConfigError(
                f"database URL must start with {', '.join(f'{k}://' for k in _JDBC)}, not {parts.scheme!r}://"
            )
        database = parts.path.lstrip("/")
        if not parts.hostname or not parts.username or not database:
            raise ConfigError("database URL must have the form SCHEME://USER[:PASSWORD]@HOST[:PORT]/DATABASE")
        password = unquote(parts.password or "")
        if not password and password_env:
            password = os.environ.get(password_env, "")
        return cls(
            parts.scheme,
            unquote(parts.username),
            parts.hostname,
            parts.port or _JDBC[parts.scheme][2],
            database,
            password,
        )

    @classmethod
    def from_secret(cls, scheme: str, secret: Mapping[str, Any], **known: Any) -> DatabaseUrl:
        """From a Secrets Manager secret in the RDS layout (username, password, host, port, dbname).

        `known` fills in what the secret lacks: a warehouse secret made before its endpoint existed holds the
        login only, and the endpoint comes from the job's arguments.
        """
        secret = {**{k: v for k, v in known.items() if v}, **secret}
        missing = [k for k in ("username", "password", "host", "dbname") if not secret.get(k)]
        if missing:
            raise ConfigError(f"the database secret lacks: {', '.join(missing)}")
        port = int(secret.get("port") or _JDBC[scheme][2])
        return cls(scheme, secret["username"], secret["host"], port, secret["dbname"], secret["password"])

    def __str__(self) -> str:
        return f"{self.scheme}://{self.user}@{self.host}:{self.port}/{self.database}"

    @property
    def jdbc_url(self) -> str:
        """The JDBC URL, without credentials."""
        url = f"{_JDBC[self.scheme][0]}://{self.host}:{self.port}/{self.database}"
        return f"{url}?permitMysqlScheme=true" if self.scheme == "mysql" else url

    def jdbc_options(self) -> dict[str, str]:
        """Options for Spark's JDBC source and sink."""
        return {"url": self.jdbc_url, "driver": _JDBC[self.scheme][1], "user": self.user, "password": self.password}

    def with_database(self, database: str) -> DatabaseUrl:
        """The same server and login, another database (tests make their own)."""
        return DatabaseUrl(self.scheme, self.user, self.host, self.port, database, self.password)


def resolve_database_url(
    scheme: str, url: str | None, secret_id: str | None, env: str, secrets: Any = None, **known: Any
) -> DatabaseUrl:
    """The database to use: a URL given on the command line, else a Secrets Manager secret, else `$env`.

    `env` also names where a password may wait when the URL carries none (`<env>_PASSWORD`).
    """
    if url:
        return DatabaseUrl.parse(url, password_env=f"{env}_PASSWORD")
    if secret_id:
        if secrets is None:
            raise ConfigError("a secret id was given but no Secrets Manager client")
        secret = json.loads(secrets.get_secret_value(SecretId=secret_id)["SecretString"])
        return DatabaseUrl.from_secret(scheme, secret, **known)
    if os.environ.get(env):
        return DatabaseUrl.parse(os.environ[env], password_env=f"{env}_PASSWORD")
    raise ConfigError(f"no {scheme} database given: pass a URL or a secret id, or set {env}")
