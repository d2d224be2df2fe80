"""Dataset-specific preparation scripts on top of ``sketchgraph.data.prepare``.

- ``python -m data_prep.spg SPG_DIR OUT``: SPG-20 from its original coordinates, with SPG's split.
- ``python -m data_prep.quickdraw download ...`` / ``prepare414k DIR OUT``: Quick, Draw! files and the
  QuickDraw-414k protocol (345 classes x 1000 / 100 / 100).
- ``python -m data_prep.tuberlin ROOT OUT``: TU-Berlin SVG folders with a seeded per-class split.
- ``python -m data_prep.sketchrnn FILE.npz ... OUT``: sketch-rnn stroke-3 files and their own splits.
"""
