"""The Python blocks of the README and the shipped model card run as pasted (a new user's first contact), and
the documentation's relative links resolve."""

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


# Every relative link of the documentation points to a file that exists and, into our own .md files, to a heading
# that exists (GitHub's anchors), so moving or renaming a page or a section cannot leave a dead link behind.
LINKED_DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "checkpoints" / "spg20" / "README.md"]
LINK = re.compile(r"!?\[[^\]\[]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^ *```.*?^ *```", flags=re.S | re.M)
CODE_SPAN = re.compile(r"(`+)(.+?)\1", flags=re.S)


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: its text without Markdown, lower-cased, punctuation dropped, spaces -> -."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "")
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for heading in re.findall(r"^#{1,6} +(.+?) *#*$", FENCE.sub("", path.read_text(encoding="utf-8")), flags=re.M):
        slug = github_slug(heading)
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def broken_links(path: Path) -> list[str]:
    text = CODE_SPAN.sub("", FENCE.sub("", path.read_text(encoding="utf-8")))
    broken = []
    for target in LINK.findall(text):
        if re.match(r"[a-z][a-z0-9+.-]*:|//", target, flags=re.I):
            continue  # an absolute URL: not ours to check offline
        file, _, anchor = target.partition("#")
        dest = (path.parent / file).resolve() if file else path
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading with that anchor in {dest.name}")
    return broken


@pytest.mark.parametrize("path", LINKED_DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path):
    assert not broken_links(path), f"{path.relative_to(ROOT)}: broken links: {broken_links(path)}"


def test_docs_pages_are_all_checked():
    assert len(LINKED_DOCS) > 2, "docs/*.md not found"


def test_broken_links_are_caught(tmp_path):
    (tmp_path / "a.md").write_text("# A title, with `code`\n\n[ok](#a-title-with-code) [ok](b.md#b) [img](b.md)\n"
                                   "[gone](missing.md) [bad](#nope) [bad](b.md#c) `[code](missing.md)` "
                                   "[web](https://example.com/x)\n\n```\n[in a block](missing.md)\n```\n")
    (tmp_path / "b.md").write_text("## B\n")
    assert broken_links(tmp_path / "a.md") == ["missing.md: no such file", "#nope: no heading with that anchor in a.md",
                                               "b.md#c: no heading with that anchor in b.md"]
