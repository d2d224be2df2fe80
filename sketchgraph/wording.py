"""Counts in messages and summaries: ``counted(1, "class")`` is ``1 class``, ``counted(1200, "sketch")``
``1,200 sketches``."""

from __future__ import annotations

__all__ = ["counted"]


def counted(n: int, noun: str) -> str:
    """``n`` (with thousands separators) and ``noun``, made plural unless ``n`` is 1 (``-es`` after s, x, ch, sh:
    ``classes``, ``sketches``; else ``-s``: the nouns of this project's messages are regular)."""
    if n == 1:
        return f"1 {noun}"
    return f"{n:,} {noun}{'es' if noun.endswith(('s', 'x', 'ch', 'sh')) else 's'}"
