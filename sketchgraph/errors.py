"""Exceptions raised by sketchgraph. All are ``ValueError`` subclasses so callers can catch
bad input with one ``except ValueError`` while still telling the cases apart."""

from __future__ import annotations


class SketchError(ValueError):
    """A sketch is unusable: empty, wrong shape, non-finite coordinates, ..."""


class FormatError(SketchError):
    """A file or record could not be parsed. Carries the source and line number when known."""

    def __init__(self, message: str, *, source: str | None = None, line: int | None = None):
        self.source = source
        self.line = line
        where = ""
        if source is not None:
            where = f"{source}"
            if line is not None:
                where += f":{line}"
            where += ": "
        super().__init__(where + message)


class EmptySketchError(FormatError):
    """A record parsed fine but has no points. Reported (not raised) when ``on_error`` is given, so
    callers can count empty drawings; pass ``keep_empty=True`` to get them as empty ``Sketch``es."""


class CheckpointError(ValueError):
    """A checkpoint is missing, incompatible, or unsafe to load."""
