"""storable(text): text that every store can hold, whatever an outside party sent (the upstream,
a receiver, a mail server); a tiny kernel, as clock.py and ids.py are."""

from __future__ import annotations


def storable(text: str) -> str:
    """`text` with a NUL (which PostgreSQL's text and varchar cannot hold) as U+FFFD and a lone
    surrogate (which no store can encode to UTF-8; JSON's "\\ud800" decodes to one) as "?"."""
    if text.isascii():
        return text.replace("\x00", "\ufffd") if "\x00" in text else text
    return text.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")
