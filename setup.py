"""Packaging glue that pyproject.toml cannot express: the shipped checkpoints live at the top level
of the repository (``checkpoints/<name>/``) and install as package data under
``sketchgraph/_checkpoints/`` so ``SketchClassifier.from_pretrained("spg20")`` works after a plain
``pip install .``. Everything else is in pyproject.toml."""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["sketchgraph", "sketchgraph.*"]) + ["sketchgraph._checkpoints"],
    package_dir={"sketchgraph._checkpoints": "checkpoints"},
)
