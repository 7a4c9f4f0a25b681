"""template_problems / channel_problems: what check-config checks beyond the file's own shape.

Every template the configured channels use is rendered, and every webhook channel's URL is checked
as far as it can be without DNS, so a broken override or an http:// URL fails here, not at 3 a.m.
"""

from __future__ import annotations

from bridge.config.models import Config, WebhookChannelConfig
from bridge.delivery.urlguard import UnsafeURL, check_url_syntax


def channel_problems(config: Config) -> list[str]:
    """One line per webhook channel whose URL every send would refuse (http, a private address)."""
    problems = []
    for name, channel in config.channels.items():
        if not isinstance(channel, WebhookChannelConfig):
            continue
        try:
            check_url_syntax(channel.url, allowed_hosts=config.delivery.allowed_hosts)
        except UnsafeURL as exc:
            problems.append(f"channels.{name}.url: {exc}")
    return problems


def template_problems(config: Config) -> list[str]:
    """One line per template that fails to load or to render against sample events."""
    from bridge.rendering import TEMPLATES_BY_CHANNEL, Renderer, TemplateProblem

    folder = config.templates.dir
    if folder is not None and not folder.is_dir():
        return [f"templates.dir: {folder} is not a folder"]
    try:
        renderer = Renderer(override_dir=folder)
    except TemplateProblem as exc:
        return [f"templates: {problem}" for problem in exc.problems]  # one line each
    names: set[str] = set()
    for channel in config.channels.values():
        names.update(TEMPLATES_BY_CHANNEL.get(channel.type, []))
    return renderer.check(sorted(names))
