"""template_problems(config): render every template the configured channels use, before 3 a.m. does."""

from __future__ import annotations

from bridge.config import Config


def template_problems(config: Config) -> list[str]:
    """One line per template that fails to load or to render against sample events."""
    from bridge.render import TEMPLATES_BY_CHANNEL, Renderer, TemplateProblem

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
