"""Words in messages and summaries: ``counted(1, "class")`` is ``1 class``, ``counted(1200, "sketch")``
``1,200 sketches``; ``a_type(5)`` is ``an int``."""

from __future__ import annotations

__all__ = ["a_type", "counted"]


_IRREGULAR = {"epoch": "epochs"}  # a hard "ch" takes -s


def counted(n: int, noun: str) -> str:
    """``n`` (with thousands separators) and ``noun``, made plural unless ``n`` is 1 (``-es`` after s, x, ch, sh:
    ``classes``, ``sketches``; else ``-s``; a last word ending in a hard ``ch`` takes ``-s``: ``epochs``)."""
    if n == 1:
        return f"1 {noun}"
    head, _, last = noun.rpartition(" ")
    plural = _IRREGULAR.get(last) or f"{last}{'es' if last.endswith(('s', 'x', 'ch', 'sh')) else 's'}"
    return f"{n:,} {head + ' ' if head else ''}{plural}"


def a_type(value: object) -> str:
    """The type of ``value`` with its article, as a message says what it found: ``a str``, ``an int``."""
    name = type(value).__name__
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"
