"""Database URLs (`mysql://` and `postgresql://`) turned into JDBC options, with the password never printed."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any
from urllib.parse import unquote, urlsplit

from rental_analytics.platform.config import ConfigError
from rental_analytics.platform.errors import CHECKS, DB_HINTS, StageError, database_problem

_JDBC = {
    # The driver class of mysql:// is the MySqlDriver's; the URL says jdbc:mysql so that Spark picks its MySQL
    # dialect (backquoted names) whichever driver reads it.
    "mysql": ("jdbc:mysql", "", 3306),
    "postgresql": ("jdbc:postgresql", "org.postgresql.Driver", 5432),
    # Glue 5.0 ships Amazon's Redshift JDBC driver.
    "redshift": ("jdbc:redshift", "com.amazon.redshift.Driver", 5439),
}
# Other spellings people and tools use for the same schemes.
_SPELLINGS = {"mariadb": "mysql", "postgres": "postgresql"}


class MySqlDriver(Enum):
    """Which Connector/J reads a mysql:// database: where the job runs decides, and the job is told which."""

    # MariaDB's (Debian's libmariadb-java), on laptops and in the tests; it speaks to MySQL, Aurora MySQL and
    # MariaDB alike.
    MARIADB = "mariadb"
    # Oracle's MySQL Connector/J, the only MySQL driver Glue 5.0 ships (8.0.33); MariaDB's is not there.
    CONNECTOR_J = "mysql-connector-j"

    @property
    def driver_class(self) -> str:
        """The JDBC driver's class."""
        return "org.mariadb.jdbc.Driver" if self is MySqlDriver.MARIADB else "com.mysql.cj.jdbc.Driver"

    @property
    def url_options(self) -> str:
        """The query string the driver needs on a jdbc:mysql URL."""
        if self is MySqlDriver.MARIADB:
            # MariaDB's Connector/J 3 accepts the jdbc:mysql scheme only when told to.
            return "?permitMysqlScheme=true"
        # Without cursor fetching Oracle's driver reads a whole result set into memory and ignores Spark's
        # fetchsize: one large table would exhaust the executor.
        return "?useCursorFetch=true"


@dataclass(frozen=True)
class Timeouts:
    """Bounds on every wait for a database, in seconds: a server that stops answering fails the run, never hangs it.

    The socket bound is above the statement bound, so that a slow statement fails with the server's own
    "canceling statement" rather than a cut connection.
    """

    connect: int = 30
    socket: int = 3600
    statement: int = 3000

    def url_options(self, scheme: str) -> str:
        """The query-string options that bound connecting and each read on the socket, in the driver's units."""
        if scheme == "mysql":  # both Connector/Js count milliseconds
            return f"connectTimeout={self.connect * 1000}&socketTimeout={self.socket * 1000}"
        if scheme == "redshift":
            return f"loginTimeout={self.connect}&socketTimeout={self.socket}"
        return f"connectTimeout={self.connect}&loginTimeout={self.connect}&socketTimeout={self.socket}"


@dataclass(frozen=True)
class DatabaseUrl:
    """Where a database is and how to log in; `repr` and `str` hide the password."""

    scheme: str
    user: str
    host: str
    port: int
    database: str
    password: str = field(default="", repr=False)
    mysql_driver: MySqlDriver = MySqlDriver.MARIADB  # mysql:// only
    timeouts: Timeouts = field(default_factory=Timeouts)

    @classmethod
    def parse(cls, url: str, password_env: str | None = None) -> DatabaseUrl:
        """Read `SCHEME://USER[:PASSWORD]@HOST[:PORT]/DATABASE`; the password may come from `password_env`."""
        parts = urlsplit(url)
        scheme = _SPELLINGS.get(parts.scheme, parts.scheme)
        if scheme not in _JDBC:
            known = ", ".join(f"{k}://" for k in (*_JDBC, *_SPELLINGS))
            raise ConfigError(f"database URL must start with one of {known}, not {parts.scheme!r}://")
        database = parts.path.lstrip("/")
        if not parts.hostname or not parts.username or not database:
            raise ConfigError("database URL must have the form SCHEME://USER[:PASSWORD]@HOST[:PORT]/DATABASE")
        try:
            port = parts.port or _JDBC[scheme][2]
        except ValueError as error:  # not a number, or past 65535
            raise ConfigError(f"database URL has a bad port: {error}") from error
        password = unquote(parts.password or "")
        if not password and password_env:
            password = os.environ.get(password_env, "")
        return cls(
            scheme,
            unquote(parts.username),
            parts.hostname,
            port,
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
        bounds = self.timeouts.url_options(self.scheme)
        return f"{url}{self.mysql_driver.url_options}&{bounds}" if self.scheme == "mysql" else f"{url}?{bounds}"

    @property
    def driver_class(self) -> str:
        """The JDBC driver's class."""
        return self.mysql_driver.driver_class if self.scheme == "mysql" else _JDBC[self.scheme][1]

    def jdbc_options(self) -> dict[str, str]:
        """Options for Spark's JDBC source and sink."""
        return {
            "url": self.jdbc_url,
            "driver": self.driver_class,
            "user": self.user,
            "password": self.password,
            "queryTimeout": str(self.timeouts.statement),  # Spark's reads set it on each JDBC statement
        }

    def with_database(self, database: str) -> DatabaseUrl:
        """The same server and login, another database (tests make their own)."""
        return replace(self, database=database)

    def read_with(self, driver: MySqlDriver) -> DatabaseUrl:
        """The same database, read with another MySQL driver."""
        return replace(self, mysql_driver=driver)


def resolve_database_url(
    scheme: str,
    url: str | None,
    secret_id: str | None,
    env: str,
    secrets: Any = None,
    flag: str | None = None,
    **known: Any,
) -> DatabaseUrl:
    """The database to use: a URL given on the command line, else a Secrets Manager secret, else `$env`.

    `env` also names where a password may wait when the URL carries none (`<env>_PASSWORD`). With `flag`, a
    URL of another scheme is refused, naming the flag (`--mysql-url postgresql://...` is a slip, not a wish).
    """
    given = url or (None if secret_id else os.environ.get(env))
    if given:
        source = flag if url else f"${env}"
        try:
            parsed = DatabaseUrl.parse(given, password_env=f"{env}_PASSWORD")
        except ConfigError as error:
            raise ConfigError(f"{source}: {error}" if flag else str(error)) from error
        if flag and parsed.scheme != scheme:
            spellings = " or ".join(f"{k}://" for k in (scheme, *_SPELLINGS) if _SPELLINGS.get(k, k) == scheme)
            raise ConfigError(f"{source} takes a {spellings} URL, not {urlsplit(given).scheme}://")
        return parsed
    if secret_id:
        if secrets is None:
            raise ConfigError("a secret id was given but no Secrets Manager client")
        secret = json.loads(secrets.get_secret_value(SecretId=secret_id)["SecretString"])
        return DatabaseUrl.from_secret(scheme, secret, **known)
    if flag:
        raise ConfigError(f"no {scheme} database given: pass {flag} or set {env}")
    raise ConfigError(f"no {scheme} database given: pass a URL or a secret id, or set {env}")


def check_login(url: DatabaseUrl, flag: str, tables: Iterable[str] = ()) -> None:
    """Log in once with a pure-Python client and look for the tables, so a wrong URL fails before Spark starts.

    A refusal becomes one line naming `flag`; Redshift, which has no local client here, is not checked.
    """
    try:
        present = _table_names(url)
    except Exception as error:
        problem = database_problem(error)
        if problem is None:
            raise
        kind, message = problem
        raise StageError(CHECKS, f"{kind} {url} ({flag}): {message}", f"{DB_HINTS[kind]} in {flag}") from error
    missing = [name for name in tables if present is not None and name not in present]
    if missing:
        raise StageError(
            CHECKS,
            f"{url} ({flag}) has no table {', '.join(missing)}",
            f"create and fill them with `rental-analytics generate apartments {flag} URL`",
        )


def _table_names(url: DatabaseUrl, timeout_seconds: int = 10) -> set[str] | None:
    """The tables of the URL's database (its default schema), or None when there is no client to ask."""
    if url.scheme == "mysql":
        import pymysql

        connection = pymysql.connect(
            host=url.host,
            port=url.port,
            user=url.user,
            password=url.password,
            database=url.database,
            connect_timeout=timeout_seconds,
        )
        try:
            with connection.cursor() as cursor:
                cursor.execute("SHOW TABLES")
                return {str(row[0]) for row in cursor.fetchall()}
        finally:
            connection.close()
    if url.scheme == "postgresql":
        import pg8000.native

        session = pg8000.native.Connection(
            url.user,
            host=url.host,
            port=url.port,
            database=url.database,
            password=url.password or None,
            timeout=timeout_seconds,
        )
        try:
            rows = session.run("SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")
            return {str(row[0]) for row in rows}
        finally:
            session.close()
    return None
