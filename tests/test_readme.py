"""The Python blocks of the README and the shipped model card run as pasted (a new user's first contact)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", ROOT / "checkpoints" / "spg20" / "README.md"]


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", path.read_text(encoding="utf-8"), flags=re.S | re.M)


@pytest.mark.filterwarnings("ignore:.*no native bfloat16:RuntimeWarning")  # the README's bfloat16 line, on AVX2
@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_python_blocks_run_as_pasted(path, tmp_path, monkeypatch):
    blocks = python_blocks(path)
    assert blocks, f"{path} has no python block"
    monkeypatch.chdir(tmp_path)  # not from the checkout: names and example paths must resolve anywhere
    for block in blocks:
        namespace: dict = {}
        exec(compile(block, str(path), "exec"), namespace)  # noqa: S102 - our own documentation
        clf = namespace["clf"]
        assert clf.classes and len(clf.classes) == 20
