"""Settings from, in order of precedence: flags, TWINSEARCH_* variables, config file, defaults."""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from twinsearch.errors import ConfigError
from twinsearch.settings import Settings, check_encoder_route

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

FIELDS = {f.name: f for f in dataclasses.fields(Settings)}
_INTS = {
    "chunk_size",
    "chunk_overlap",
    "batch_size",
    "threads",
    "shards",
    "replicas",
    "write_consistency",
    "timeout",
    "segment_mb",
}


def default_data_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("twinsearch", appauthor=False))


def config_path(env: Mapping[str, str]) -> Path:
    if "TWINSEARCH_CONFIG" in env:
        return Path(env["TWINSEARCH_CONFIG"]).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir("twinsearch", appauthor=False)) / "config.toml"


def _read_config(path: Path, explicit: bool) -> dict[str, Any]:
    if not path.is_file():
        if explicit:
            raise ConfigError(f"config file {path} does not exist; fix TWINSEARCH_CONFIG")
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise ConfigError(
            f"unknown setting {unknown[0]!r} in {path}; valid settings: {', '.join(FIELDS)}"
        )
    return data


def _convert(name: str, value: Any, where: str) -> Any:
    if value is None:
        return None
    if name in _INTS:
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: {name} must be a whole number, not {value!r}") from None
    if name == "data_dir":
        return Path(str(value)).expanduser()
    return str(value)


def build_settings(
    flags: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    env = os.environ if env is None else env
    path = config_path(env)
    values: dict[str, Any] = {}
    for name, value in _read_config(path, "TWINSEARCH_CONFIG" in env).items():
        values[name] = _convert(name, value, str(path))
    for name in FIELDS:
        var = f"TWINSEARCH_{name.upper()}"
        if env.get(var):
            values[name] = _convert(name, env[var], var)
    for name, value in (flags or {}).items():
        if value is not None:
            values[name] = _convert(name, value, f"--{name.replace('_', '-')}")
    values.setdefault("data_dir", default_data_dir())
    if values.get("segment_mb", 1) < 1:
        raise ConfigError(f"segment_mb must be at least 1, not {values['segment_mb']}")
    check_encoder_route(values.get("runtime", "auto"), values.get("precision", "auto"))
    return Settings(**values)
