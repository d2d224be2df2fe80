"""Exceptions raised by sketchgraph. All are ``ValueError`` subclasses so callers can catch
bad input with one ``except ValueError`` while still telling the cases apart."""

from __future__ import annotations


class SketchError(ValueError):
    """A sketch is unusable: empty, wrong shape, non-finite coordinates, ..."""


class UnusableSketchesError(SketchError):
    """Some sketches of a batch cannot be preprocessed (non-finite coordinates, degenerate ink).

    ``problems`` maps each one's index in the batch to the reason, so a caller that can skip them (the
    data preparation, ``predict_batch``, the CLI, the server) drops those and goes on with the rest. The
    message is the reason itself for a batch of one sketch, else ``"sketch i: reason"`` for the first.
    """

    def __init__(self, problems: dict[int, str], *, batch_size: int):
        if not problems:
            raise ValueError("UnusableSketchesError needs at least one problem")
        self.problems = {int(i): problems[i] for i in sorted(problems)}
        first, reason = next(iter(self.problems.items()))
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(reason if batch_size == 1 else f"sketch {first}: {reason}{more}")


class FormatError(SketchError):
    """A file or record could not be parsed. Carries the source and line number when known, and ``whole_file``:
    the error is about the file (or a part of it holding many records, such as an ``.npz`` split), not about
    one record. For a record whose fields could be read though its drawing could not, ``key_id`` and ``label``
    (its ``word``, else the class the file name gives) say which drawing failed (``None`` when unknown)."""

    def __init__(self, message: str, *, source: str | None = None, line: int | None = None,
                 whole_file: bool = False, key_id: str | None = None, label: str | None = None):
        self.source = source
        self.line = line
        self.whole_file = whole_file
        self.key_id = key_id
        self.label = label
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


class MissingExtraError(ModuleNotFoundError):
    """An optional feature's package is not installed; the message names the extra that brings it."""
