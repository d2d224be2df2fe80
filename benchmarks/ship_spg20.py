"""Turn a trained SPG-20 run into the shipped checkpoint ``checkpoints/spg20`` with its model card.

    python benchmarks/ship_spg20.py runs/bench/mgt/best prepared/spg20 --out checkpoints/spg20

``--out`` is required: naming ``checkpoints/spg20`` replaces the shipped checkpoint (what ``"spg20"`` loads).

Copies the weights and config, evaluates valid and test (every number on the card comes from this
evaluation), writes the confusion matrix PNG and the model card README. Machine-specific paths in the
recorded training command are replaced by the README's conventional ones (``prepared/spg20``, ``runs/spg20``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]
os.environ.setdefault("DGLBACKEND", "pytorch")

import google_nearby  # noqa: E402
import numpy as np  # noqa: E402

from sketchgraph.checkpoint import atomic_dir, load_checkpoint, weights_digest  # noqa: E402
from sketchgraph.evaluate import evaluate, plot_confusion  # noqa: E402

CARD = """# sketchgraph checkpoint `spg20`

The default sketchgraph model (`mgt` preset: split-heads Multi-Graph Transformer over the `stroke1`,
`stroke2` and `temporal` relations, {params:,} parameters, {size_mb:.1f} MB) trained on SPG-20.

```python
from sketchgraph.examples import example_path
from sketchgraph.predict import SketchClassifier

clf = SketchClassifier.from_pretrained("spg20")
clf.predict(example_path("apple"))  # or strokes [[xs, ys], ...] (any scale), an ndjson line, a Sketch, a path
```

## Data

- **SPG** (Sketch Perceptual Grouping, Li et al., ECCV 2018), a subset of Google's **Quick, Draw!**
  drawings. Quick, Draw! data: Google Creative Lab, licence **CC BY 4.0**
  (https://quickdraw.withgoogle.com/data). SPG as distributed by the SketchGNN repository.
- 20 classes, named by their Quick, Draw! word (the `word` of Google's files; SPG's file names spell
  `alarm_clock` for `alarm clock`): {classes}.
- Published split: 650 / 50 / 100 drawings per class (13,000 train / 1,000 valid / 2,000 test).
- Prepared from the ORIGINAL coordinates (`raw/` files) with Google's simplification (align, scale to
  255, 1-px resampling, RDP epsilon 2.0), truncated at 100 points, splits assigned by key_id:
  `python -m data_prep.spg ../shared/data/spg20 prepared/spg20`.
- Model selection on valid (best epoch); the test split was used once, for this card.

## Metrics

| split | top-1 | top-5 | top-10 | sketches |
|---|---|---|---|---|
| valid | {v_top1:.2%} | {v_top5:.2%} | {v_top10:.2%} | {v_n} |
| test | {t_top1:.2%} | {t_top5:.2%} | {t_top10:.2%} | {t_n} |

Hardest test confusions (true -> predicted, count): {confusions}.

Per-class test accuracy:

| class | accuracy | | class | accuracy |
|---|---|---|---|---|
{per_class}

![test confusion matrix](confusion_test.png)

## Training

```
{command}
```

- config: `configs/spg20.toml` (AdamW, cosine with warm-up, label smoothing 0.1, random affine and
  stroke-shift / jitter / unfinished-drawing / stroke and point dropout / stroke-merge augmentation,
  length-bucketed batches of 64, no encoder dropout; the command above sets what differs from the file);
  this checkpoint is the best on valid, after {epochs} epochs and {time_min:.1f} minutes on {hardware}.
- reproduce the whole table of models:
  `python benchmarks/spg20_benchmark.py --data prepared/spg20 --results benchmarks/results`.
- regenerate this card: `python benchmarks/ship_spg20.py runs/spg20/best prepared/spg20 --out checkpoints/spg20`.

## Inference preprocessing

Training data was capped by truncation (the paper's policy; 251 of 16,000 SPG drawings exceeded 100 points).
For predictions, `config.json` sets `inference_preprocessing = {{"cap": "{cap}"}}`: a drawing that still has
more than 100 points after simplification is simplified again with a coarser tolerance instead of losing its
last strokes. Pass `cap="truncate"` to `SketchClassifier.from_pretrained` to get the training-time policy.

## Robustness (proxy)

{robustness}

## Real Google drawings of the same objects (proxy)

{nearby}

## Limits

Trained on 20 classes only; anything else is forced into one of them. SPG keeps recognised, clean
drawings, almost all with 3 strokes or more; messier drawings (Quick, Draw!'s unrecognised ones) are harder, and
drawings made in one or two strokes are learnt only through stroke-merge augmentation. Input is normalised and
simplified as in training (`config.json`, `preprocessing`), so raw canvas coordinates of any scale work, and held to
100 points, but not as in training: a drawing still over 100 points is simplified again with a coarser tolerance
(`inference_preprocessing`, `cap="adapt"`; see "Inference preprocessing"), where training truncated it
(`cap="truncate"` gives that policy back).
"""


ROBUSTNESS = ROOT / "benchmarks" / "results"


def robustness_table(weights_sha: str) -> str:
    """The SPG-20 test top-1 per input condition from ``benchmarks/results/robustness_{adapt,truncate}.json``,
    if those were measured on these weights (their ``weights_sha256``); otherwise how to measure it."""
    runs = {}
    for cap in ("adapt", "truncate"):
        path = ROBUSTNESS / f"robustness_{cap}.json"
        if path.is_file():
            record = json.loads(path.read_text())
            if record.get("weights_sha256") == weights_sha:
                runs[cap] = record
    how = ("measured by `python benchmarks/robustness.py --cap adapt --out benchmarks/results/robustness_adapt.json`"
           " and the same with `truncate`, then this script rerun")
    if not runs:
        return f"Not measured for these weights yet: {how}."
    caps = list(runs)
    conditions = runs[caps[0]]["conditions"]
    lines = [f"The 2,000 SPG-20 test drawings sent the way users send them, {how}. Google's RAW files for these "
             "classes are not available here, so the conditions are simulated from the stored drawings.", "",
             "| input | " + " | ".join(f"top-1 ({c})" for c in caps) + " |", "|---|" + "---:|" * len(caps)]
    for name, r in conditions.items():
        cells = [f"{100 * runs[c]['conditions'][name]['top1']:.2f}%" if name in runs[c]["conditions"] else "-"
                 for c in caps]
        lines.append(f"| {r['description']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def nearby_table(weights_sha: str) -> str:
    """The ``benchmarks/google_nearby.py`` result for these weights (its default ``--out``), or how to measure it."""
    how = "`python benchmarks/google_nearby.py`, then this script rerun"
    path = google_nearby.OUT  # kept out of the repository (it lists Google's key ids)
    record = json.loads(path.read_text()) if path.is_file() else {}
    if record.get("weights_sha256") != weights_sha:
        return f"Not measured for these weights yet: {how}."
    everything = record["groups"]["all"]
    se = 100 * math.sqrt(everything["top1"] * (1 - everything["top1"]) / everything["n"])
    lines = [f"The first drawings of Google's own files for {len(record['pairs'])} Quick, Draw! words that name an "
             f"object of these classes (recognized and unrecognized, not selected: "
             f"{record['groups']['1-2 strokes']['n']} of the {everything['n']} drawn in one or two strokes); a hit is "
             f"a top-1 on that class. Measured by {how}. The words differ a little from the classes (a wall clock "
             "has no bells, a cup may have no handle), so read it as a lower bound, with a standard error of "
             f"{se:.1f} points overall.", "", google_nearby.table(record)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", help="the trained checkpoint directory (e.g. runs/spg20/best)")
    p.add_argument("data", help="the prepared SPG-20 dataset")
    p.add_argument("--out", required=True,
                   help="the checkpoint folder to write (checkpoints/spg20 replaces the shipped one)")
    p.add_argument("--inference-cap", choices=("truncate", "adapt"), default="adapt",
                   help="point-cap policy for predictions (config.json inference_preprocessing); training used "
                        "the dataset's (truncate). adapt re-simplifies over-long drawings: see the robustness table")
    args = p.parse_args(argv)
    run, out = Path(args.run), Path(args.out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "config.json").is_file())):
        p.error(f"--out {out} exists and is not a checkpoint (no config.json): it would be replaced; "
                "name a new folder or an earlier checkpoint")
    if out.resolve() in run.resolve().parents:
        p.error(f"--out {out} holds the run {run}: name another folder (or the run itself, to redo its card)")
    valid = evaluate(run, args.data, "valid", progress=False)
    test = evaluate(run, args.data, "test", progress=False)
    config = json.loads((run / "config.json").read_text())
    tr = config.get("training", {})
    cfg = tr.get("config", {})

    def portable(command: str) -> str:  # this machine's paths -> the README's
        for old, new in ((cfg.get("data"), "prepared/spg20"), (cfg.get("out"), "runs/spg20")):
            if old:
                command = command.replace(str(old), new)
        return command

    tr["command"] = portable(str(tr.get("command", "")))
    if tr.get("commands"):  # every invocation of a resumed run
        tr["commands"] = [{**c, "command": portable(str(c.get("command", "")))} for c in tr["commands"]]
    for key in ("data", "out"):
        tr.get("config", {}).pop(key, None)
    tr.get("dataset", {}).pop("path", None)
    config["training"] = tr
    config["inference_preprocessing"] = {"cap": args.inference_cap}
    config["metrics"] = {
        **config.get("metrics", {}),
        **{f"valid_{k}": valid[k] for k in ("top1", "top5", "top10")},
        **{f"test_{k}": test[k] for k in ("top1", "top5", "top10")},
    }
    classes = config["classes"]
    acc = test["per_class_accuracy"]
    cells = [f"{c} | {acc[c]:.0%}" for c in classes]
    half = (len(cells) + 1) // 2
    rows = [f"| {a} | | {b} |" for a, b in zip(cells[:half], cells[half:] + [" | "])]
    confusions = ", ".join(f"{c['true']} -> {c['predicted']} ({c['count']})" for c in test["hardest_confusions"][:5])
    with atomic_dir(out) as tmp:
        shutil.copy2(run / "model.safetensors", tmp / "model.safetensors")
        (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        plot_confusion(np.array(test["confusion_matrix"]), classes, tmp / "confusion_test.png",
                       title=f"spg20 on test: top-1 {test['top1']:.2%}")
        model, _ = load_checkpoint(tmp)
        (tmp / "README.md").write_text(CARD.format(
            params=sum(p.numel() for p in model.parameters()),
            size_mb=(tmp / "model.safetensors").stat().st_size / 1e6,
            classes=", ".join(classes),
            v_top1=valid["top1"], v_top5=valid["top5"], v_top10=valid["top10"], v_n=valid["num_samples"],
            t_top1=test["top1"], t_top5=test["top5"], t_top10=test["top10"], t_n=test["num_samples"],
            confusions=confusions, per_class="\n".join(rows), command=tr["command"],
            cap=args.inference_cap, epochs=tr.get("epochs"), time_min=float(tr.get("time_s", 0)) / 60,
            hardware=tr.get("hardware"),
            robustness=robustness_table(weights_digest(run)),
            nearby=nearby_table(weights_digest(run)),
        ))
    print(f"shipped {out}: valid top-1 {valid['top1']:.2%}, test top-1 {test['top1']:.2%} top-5 {test['top5']:.2%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
