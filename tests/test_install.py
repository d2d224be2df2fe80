"""A real, non-editable ``pip install`` of the repository works away from the checkout: the shipped checkpoint,
the example sketches and the drawing page's static files are installed as package data.

The package is installed with ``pip install --no-deps --no-build-isolation --target TMP`` (the dependencies
are those of this environment) from a copy of the source tree, so the build leaves nothing in the checkout.
A fresh interpreter then runs with ``PYTHONPATH=TMP`` in ``cwd=TMP``: the checkout is not importable there,
and the test checks that every file used comes from ``TMP``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
#: what a build of the repository reads (the rest of the checkout: tests, benchmarks, notebooks, ...)
SOURCE = ("pyproject.toml", "setup.py", "README.md", "LICENSE", "sketchgraph", "checkpoints")
_SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", ".*")

CHECK = textwrap.dedent("""
    import importlib.resources, json, sys
    from pathlib import Path

    import sketchgraph
    from sketchgraph.examples import example_paths
    from sketchgraph.predict import SketchClassifier, resolve_checkpoint

    name = sys.argv[1]
    clf = SketchClassifier.from_pretrained(name)
    paths = example_paths()
    static = importlib.resources.files("sketchgraph.serve") / "static"
    preds = clf.predict(paths[0], top_k=3)
    print(json.dumps({
        "module": sketchgraph.__file__,
        "checkpoint": str(resolve_checkpoint(name)),
        "examples": [str(p) for p in paths],
        "static": sorted(str(p) for p in Path(str(static)).iterdir()),
        "classes": clf.classes,
        "predictions": [[p.label, p.score] for p in preds],
    }))
""")


def source_copy(repo: Path, dest: Path) -> Path:
    """The files a build of ``repo`` needs, copied to ``dest`` (without caches and build leftovers)."""
    dest.mkdir(parents=True)
    for name in SOURCE:
        src = repo / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=_SKIP)
        elif src.is_file():
            shutil.copy2(src, dest / name)
    return dest


def pip_install(source: Path, target: Path) -> None:
    cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
           "--disable-pip-version-check", "-q", "--target", str(target), str(source)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"pip install failed:\n{proc.stdout}\n{proc.stderr}"


def run_installed(target: Path, checkpoint: str) -> dict:
    """Run ``CHECK`` in a fresh interpreter that only sees the installed copy of sketchgraph."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSAFEPATH")}
    env.update(PYTHONPATH=str(target), DGLBACKEND="pytorch", MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, "-c", CHECK, checkpoint], cwd=target, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, f"the installed package failed:\n{proc.stdout}\n{proc.stderr}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def check_install(repo: Path, tmp: Path, checkpoint: str = "spg20") -> dict:
    target = tmp / "site"
    pip_install(source_copy(repo, tmp / "src"), target)
    report = run_installed(target, checkpoint)
    check_installed_files(target)

    def inside(path: str) -> bool:
        return Path(path).resolve().is_relative_to(target.resolve())

    assert inside(report["module"]), f"imported sketchgraph from {report['module']}, not the install"
    ckpt = Path(report["checkpoint"])
    assert inside(str(ckpt)) and ckpt.parts[-2:] == ("_checkpoints", checkpoint), ckpt
    assert {"config.json", "model.safetensors"} <= {p.name for p in ckpt.iterdir()}
    assert report["examples"] and all(inside(p) for p in report["examples"])
    assert {Path(p).name for p in report["examples"]} == {
        p.name for p in (repo / "sketchgraph" / "examples").iterdir() if p.suffix in (".ndjson", ".svg")
    }
    static = {Path(p).name: p for p in report["static"]}
    assert {"index.html", "app.js", "style.css"} <= set(static) and all(inside(p) for p in static.values())
    preds = report["predictions"]
    assert len(preds) == 3 and all(label in report["classes"] for label, _ in preds)
    assert all(0.0 <= s <= 1.0 for _, s in preds) and preds[0][1] >= preds[-1][1]
    return report


def check_installed_files(target: Path) -> None:
    """What the wheel put in ``target``: the ``py.typed`` marker (the package is typed), no test files, and a
    ``sketchgraph`` console script that runs (``--version``, with the installed copy)."""
    assert (target / "sketchgraph" / "py.typed").is_file()
    (record,) = target.glob("sketchgraph-*.dist-info/RECORD")
    installed = [line.split(",")[0] for line in record.read_text().splitlines()]
    assert "sketchgraph/py.typed" in installed
    assert not [name for name in installed if name.startswith("tests/") or "/tests/" in name or "conftest" in name]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSAFEPATH")}
    env.update(PYTHONPATH=str(target))
    proc = subprocess.run([str(target / "bin" / "sketchgraph"), "--version"], cwd=target, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "sketchgraph 0.1.0", proc.stderr


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter of this environment (``env`` added to this process's environment)."""
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=120)


def test_importing_the_package_does_not_import_torch():
    """``import sketchgraph`` and ``sketchgraph --version`` / ``--help`` stay fast: torch (3-5 s) is imported on
    first use of a name that needs it (PEP 562), not by the package itself."""
    proc = run_python(textwrap.dedent("""
        import sys
        import sketchgraph
        assert "torch" not in sys.modules, "import sketchgraph"
        assert sketchgraph.__version__ == "0.1.0" and "Sketch" in dir(sketchgraph)
        from sketchgraph.cli import main
        for flag in ("--version", "--help"):
            sys.argv = ["sketchgraph", flag]
            try:
                main()
            except SystemExit as exc:
                assert exc.code == 0, flag
            assert "torch" not in sys.modules, flag
        from sketchgraph import Sketch, SketchError, build_graph
        assert "torch" in sys.modules and Sketch.__module__ == "sketchgraph.sketch"
        assert sketchgraph.SketchError is SketchError and callable(build_graph)
        from sketchgraph import Prediction, SketchClassifier
        from sketchgraph.predict import Prediction as P, SketchClassifier as C
        assert SketchClassifier is C and Prediction is P and {"SketchClassifier", "Prediction"} <= set(dir(sketchgraph))
        assert set(sketchgraph.__all__) - {"__version__"} <= set(dir(sketchgraph))
        try:
            sketchgraph.nothing
        except AttributeError as exc:
            assert str(exc) == "module 'sketchgraph' has no attribute 'nothing'"
        else:
            raise AssertionError("no AttributeError")
    """))
    assert proc.returncode == 0, proc.stderr


def test_submodules_are_reachable_as_attributes_of_the_package():
    """``import sketchgraph`` then ``sketchgraph.preprocess.simplify`` works as it did when the package imported its
    submodules eagerly: a submodule's name imports it on first access; an unknown name is an ``AttributeError``
    that imports nothing (no torch)."""
    proc = run_python(textwrap.dedent("""
        import sys
        import sketchgraph
        for name in ("nothing", "__wrapped__", "formats.ndjson", "Simplify"):
            try:
                getattr(sketchgraph, name)
            except AttributeError as exc:
                assert str(exc) == f"module 'sketchgraph' has no attribute {name!r}", exc
            else:
                raise AssertionError(f"no AttributeError for {name}")
        assert "torch" not in sys.modules and "sketchgraph.formats" not in sys.modules
        assert sketchgraph.errors.SketchError.__module__ == "sketchgraph.errors"
        assert "torch" not in sys.modules  # errors needs no torch
        simplify = sketchgraph.preprocess.simplify
        from sketchgraph.preprocess import simplify as imported
        assert simplify is imported and sys.modules["sketchgraph.preprocess"] is sketchgraph.preprocess
        assert sketchgraph.sketch.Sketch is sketchgraph.Sketch and callable(sketchgraph.graph.build_graph)
        assert sketchgraph.formats.ndjson.parse_drawing and sketchgraph.serve.__name__ == "sketchgraph.serve"
    """))
    assert proc.returncode == 0, proc.stderr


def test_an_inherited_dgl_backend_is_set_to_pytorch_with_a_warning():
    """dgl is used with its pytorch backend only: ``DGLBACKEND=tensorflow`` from the environment would make
    ``--backend dgl`` fail inside dgl (No module named 'tensorflow')."""
    proc = run_python("import os, sketchgraph, dgl; print(os.environ['DGLBACKEND'], dgl.backend.backend_name)",
                      DGLBACKEND="tensorflow")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["pytorch", "pytorch"]
    assert ("RuntimeWarning: DGLBACKEND='tensorflow' in the environment: sketchgraph uses dgl with the pytorch "
            "backend only, so DGLBACKEND is set to 'pytorch' for this process") in proc.stderr
    quiet = run_python("import os, sketchgraph; print(os.environ['DGLBACKEND'])", DGLBACKEND="pytorch")
    assert quiet.stdout.strip() == "pytorch" and "Warning" not in quiet.stderr


def test_pip_install_serves_the_shipped_checkpoint(tmp_path):
    if not (REPO / "checkpoints" / "spg20" / "config.json").is_file():
        pytest.fail("the repository must ship checkpoints/spg20 (config.json + model.safetensors)")
    check_install(REPO, tmp_path)


FAKE_312 = '#!/bin/sh\nif [ "$1" = "--version" ]; then echo "Python 3.12.1"; exit 0; fi\nexit 1\n'


@pytest.mark.skipif(shutil.which("make") is None, reason="no make")
def test_make_says_to_remove_a_venv_of_another_python(tmp_path):
    """``make check-python`` with an existing venv of another python: setting ``PYTHON`` cannot help (the venv is
    what is checked, and kept), so the message says to remove it and rerun; without a venv, ``PYTHON`` is the fix."""
    venv = tmp_path / ".venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text(FAKE_312)
    (venv / "bin" / "python").chmod(0o755)

    def check(*args: str) -> str:
        proc = subprocess.run(["make", "-s", "-f", str(REPO / "Makefile"), *args, "check-python"], cwd=tmp_path,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode != 0, proc.stderr
        return proc.stderr.splitlines()[0]

    needs = "sketchgraph needs Python 3.11: dgl 1.1.3 ships wheels for CPython <= 3.11"
    again = "and rerun, with PYTHON=/path/to/python3.11 if python3.11 is not on PATH"
    assert check(f"PYTHON={sys.executable}") == (f"{needs} (found: Python 3.12.1 in .venv); remove .venv (make clean) "
                                                 f"{again}")
    (tmp_path / "other").mkdir()
    moved = venv.rename(tmp_path / "other" / "venv")
    assert check(f"VENV={moved}") == (f"{needs} (found: Python 3.12.1 in {moved}); remove {moved} (make clean "
                                      f"VENV={moved}) {again}")
    assert check(f"VENV={tmp_path / 'none'}", f"PYTHON={moved}/bin/python") == (
        f"{needs} (found: Python 3.12.1); set PYTHON=/path/to/python3.11")
