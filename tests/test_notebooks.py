"""The notebooks run top to bottom in a fresh kernel of this environment, with the shipped checkpoint."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "notebooks" / "quickstart.ipynb"


def _python3_kernelspec() -> None:
    """Make sure a ``python3`` kernelspec exists; ipykernel installs one into ``sys.prefix`` (the venv) when
    none is found. Its ``python`` command is replaced by ``sys.executable`` when the kernel starts."""
    from jupyter_client.kernelspec import find_kernel_specs

    if "python3" not in find_kernel_specs():
        from ipykernel.kernelspec import install

        install(user=False, prefix=sys.prefix)


def _text(cell) -> str:
    """All stream / plain-text output of a code cell."""
    parts = []
    for out in cell.get("outputs", []):
        if out.output_type == "stream":
            parts.append(out.text)
        elif "text/plain" in out.get("data", {}):
            parts.append(out.data["text/plain"])
    return "".join(parts)


def test_quickstart_stored_without_outputs():
    nb = nbformat.read(QUICKSTART, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)
    assert any('from_pretrained("spg20")' in c.source for c in code)


def test_quickstart_prose_names_the_calls_its_code_makes():
    """The text before the predictions cell says which call reads the files (``clf.sketch``, the first drawing of
    each) and which one preprocesses (``predict_batch``), as the code does."""
    nb = nbformat.read(QUICKSTART, as_version=4)
    at = next(i for i, c in enumerate(nb.cells) if "predictions" in c.metadata.get("tags", []))
    prose, code = nb.cells[at - 1].source, nb.cells[at].source
    assert "clf.sketch(p)" in code and "predict_batch(sketches" in code
    assert "`clf.sketch(path)` reads a file's first drawing" in prose
    assert "`predict_batch` reads" not in prose


def _attention_rows_cells(nb) -> tuple:
    """The cell that checks the attention rows (tagged ``attention-rows``) and the prose after it."""
    at = next(i for i, c in enumerate(nb.cells) if "attention-rows" in c.metadata.get("tags", []))
    return nb.cells[at], nb.cells[at + 1]


def test_quickstart_checks_every_attention_row_not_the_mean():
    """A mean row sum of 1 does not show that each row sums to 1: the cell prints the largest deviation over every
    row of every layer and head, and the prose claims no more than that shows."""
    nb = nbformat.read(QUICKSTART, as_version=4)
    code, prose = _attention_rows_cells(nb)
    assert "abs(weights.sum(-1) - 1).max()" in code.source and ".mean()" not in code.source
    assert "max |row sum - 1|" in code.source
    assert "Every row of every layer and head sums to 1 up to float rounding" in prose.source
    assert "Each row sums to 1, and" not in prose.source


@pytest.mark.slow
def test_quickstart_runs():
    from sketchgraph.errors import CheckpointError
    from sketchgraph.examples import example_paths
    from sketchgraph.predict import SHIPPED_CHECKPOINT, SketchClassifier, resolve_checkpoint

    try:
        resolve_checkpoint(SHIPPED_CHECKPOINT)
    except CheckpointError as exc:
        pytest.fail(f"the quickstart needs the shipped checkpoint checkpoints/{SHIPPED_CHECKPOINT}: {exc}")
    _python3_kernelspec()
    nb = nbformat.read(QUICKSTART, as_version=4)
    n_cells = len(nb.cells)
    # two extra cells: the predictions as JSON (not parsed from the printed table), and the interpreter
    nb.cells.append(nbformat.v4.new_code_cell(
        "import json; print(json.dumps({p.name: [s.label, [x.label for x in preds]] "
        "for p, s, preds in zip(paths, sketches, predictions)}))"))
    nb.cells.append(nbformat.v4.new_code_cell("import sys; print(sys.prefix)"))
    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=120,
                                     resources={"metadata": {"path": str(REPO)}})
    client.execute()  # raises CellExecutionError on the first failing cell

    code = [c for c in nb.cells if c.cell_type == "code"]
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    assert _text(nb.cells[-1]).strip() == sys.prefix, "the notebook ran in another environment than the tests"

    classes = SketchClassifier.from_pretrained(SHIPPED_CHECKPOINT).classes
    table = _text(next(c for c in code if "predictions" in c.metadata.get("tags", [])))
    predictions = json.loads(_text(nb.cells[-2]))
    paths = example_paths()
    assert list(predictions) == [p.name for p in paths]
    for name, (label, ranked) in predictions.items():
        assert len(ranked) == 3 and set(ranked) <= set(classes), (name, ranked)
        assert ranked[0] == label, (name, label, ranked)  # each example is recognised as its own class
        assert any(line.split()[:1] == [name] and f" {ranked[0]} " in line for line in table.splitlines()), table
    assert f"top-1 correct: {len(paths)} of {len(paths)}" in table
    images = [o for c in nb.cells[:n_cells] if c.cell_type == "code" for o in c.outputs
              if "image/png" in o.get("data", {})]
    assert len(images) >= 2  # the graph drawing and the attention maps
    rows = _text(_attention_rows_cells(nb)[0]).splitlines()
    assert [line.split()[0] for line in rows] == ["stroke1", "stroke2", "temporal"], rows
    for line in rows:  # each relation: every row sums to 1 within float rounding, nothing outside its edges
        off_by = float(re.search(r"max \|row sum - 1\|: (\S+)", line)[1])
        outside = float(re.search(r"outside the relation's edges: (\S+)$", line)[1])
        assert off_by < 1e-5 and outside == 0.0, line
    jumps = _text(next(c for c in code if "temporal-jumps" in c.metadata.get("tags", []))).splitlines()
    assert len(jumps) == 1 + SketchClassifier.from_pretrained(SHIPPED_CHECKPOINT).model.config.heads  # a line a head
    assert jumps[0] == "last layer, temporal relation: weight on each of the 6 pen-up jumps (stroke end -> next start)"
    for h, line in enumerate(jumps[1:]):  # the face example: 7 strokes, so 6 jumps; each weight a probability
        row = re.fullmatch(rf"head {h}: ((?:[01]\.\d\d ?){{6}}) \| first -> last ([01]\.\d\d), last -> first "
                           r"([01]\.\d\d), self-loops ([01]\.\d\d) on average", line)
        assert row is not None and all(0 <= float(x) <= 1 for x in row[1].split()), line
