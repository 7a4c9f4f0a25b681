"""interpolate(raw, env): replace ${VAR} and ${VAR:-default} in every string of a YAML tree."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def format_path(loc: Sequence[str | int]) -> str:
    """Render a location like ('routes', 1, 'channels', 0) as 'routes[1].channels[0]'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _replace(text: str, env: Mapping[str, str], path: str, problems: list[str]) -> str:
    def one(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        value = env.get(name)
        if value is None or (value == "" and default is not None):
            if default is not None:
                return default
            problems.append(f"{path}: environment variable {name} is not set")
            return ""
        return value

    return _VAR.sub(one, text)


def interpolate(raw: Any, env: Mapping[str, str]) -> tuple[Any, list[str]]:
    """Return a copy of `raw` with variables replaced, and a problem line for each missing one."""
    problems: list[str] = []

    def walk(node: Any, loc: list[str | int]) -> Any:
        if isinstance(node, dict):
            return {key: walk(value, [*loc, str(key)]) for key, value in node.items()}
        if isinstance(node, list):
            return [walk(value, [*loc, i]) for i, value in enumerate(node)]
        if isinstance(node, str):
            return _replace(node, env, format_path(loc), problems)
        return node

    return walk(raw, []), problems
