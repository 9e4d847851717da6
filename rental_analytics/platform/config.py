"""Settings read from the environment that fail at start-up, naming every variable that is missing."""

from __future__ import annotations

from collections.abc import Mapping


class ConfigError(RuntimeError):
    """A required setting is missing or malformed: the process cannot start."""


def require_env(environ: Mapping[str, str], *names: str) -> list[str]:
    """The values of these variables, in order; a resource name never falls back to a default."""
    missing = [name for name in names if not environ.get(name, "").strip()]
    if missing:
        raise ConfigError(f"missing environment variables: {', '.join(missing)}")
    return [environ[name].strip() for name in names]
