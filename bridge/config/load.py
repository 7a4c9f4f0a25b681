"""load_config(path) -> Config: the operator's YAML, checked whole, every problem named by its path."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from bridge.config.interpolate import format_path, interpolate
from bridge.config.models import CHANNEL_TYPES, Config, redact_url_password
from bridge.config.refs import cross_reference_problems


class ConfigError(Exception):
    """The configuration has problems; `problems` holds one line per problem, each naming its path."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def _pydantic_problems(error: ValidationError, skip: set[str]) -> list[str]:
    problems = []
    for item in error.errors():
        loc = list(item["loc"])
        if len(loc) >= 3 and loc[0] == "channels" and loc[2] in CHANNEL_TYPES:
            del loc[2]  # pydantic puts the union tag in the path; operators never wrote it
        message = {
            "extra_forbidden": "unknown key",
            "missing": "required key is missing",
            "union_tag_not_found": "required key is missing",
        }.get(item["type"], item["msg"].removeprefix("Value error, "))
        if item["type"] in ("union_tag_invalid", "union_tag_not_found"):
            loc.append("type")  # the channel's `type` is what is wrong, not the channel
        if item["type"] == "union_tag_invalid":
            tag = item.get("ctx", {}).get("tag")
            message = f"unknown channel type {tag!r} (use {', '.join(CHANNEL_TYPES)})"
        path = format_path(loc)
        if path in skip:
            continue
        problems.append(f"{path or '(top level)'}: {message}")
    return problems


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """Where the YAML breaks, on one line; the offending text is left out (it may be a secret)."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem and exc.problem_mark:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}"
        detail = exc.problem
    else:
        where, detail = "", str(exc)  # e.g. a control character: the message holds no content
    return f"(file): not valid YAML{where}: {' '.join(detail.split())}"


def parse_config(text: str, *, env: Mapping[str, str] | None = None) -> Config:
    """Parse YAML text into a Config, raising ConfigError with every problem found."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([_yaml_problem(exc)]) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(["(top level): must be a mapping of sections"])
    raw, problems = interpolate(raw, os.environ if env is None else env)
    skip = {p.split(":", 1)[0] for p in problems}
    config: Config | None = None
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        problems += _pydantic_problems(exc, skip)
    problems += cross_reference_problems(raw)
    if problems or config is None:
        raise ConfigError(problems)
    return config


def config_path(explicit: str | None) -> Path:
    """The config file to read: --config, then $BRIDGE_CONFIG, then ./config.yaml."""
    return Path(explicit or os.environ.get("BRIDGE_CONFIG") or "config.yaml")


def load_config(path: Path, *, env: Mapping[str, str] | None = None) -> Config:
    """Read and parse the config file at `path`."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"(file): cannot read {path}: {exc.strerror}"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"(file): cannot read {path}: not UTF-8 text"]) from None
    return parse_config(text, env=env)


def model_dump_redacted(config: Config) -> dict[str, Any]:
    """The config as JSON-ready data with every secret masked."""
    dumped = config.model_dump(mode="json", by_alias=True)
    dumped["storage"]["url"] = redact_url_password(config.storage.url)
    return dumped
