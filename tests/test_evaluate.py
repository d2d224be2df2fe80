"""Evaluation metrics against hand-computed and scikit-learn numbers; the report on a prepared dataset."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, recall_score

from sketchgraph.evaluate import classification_metrics, hardest_confusions, plot_confusion, topk_correct


def test_topk_hand_example():
    logits = torch.tensor([
        [0.1, 0.9, 0.5, 0.3],  # ranking 1, 2, 3, 0
        [0.8, 0.1, 0.2, 0.7],  # ranking 0, 3, 2, 1
        [0.3, 0.2, 0.1, 0.4],  # ranking 3, 0, 1, 2
    ])
    labels = torch.tensor([2, 0, 2])  # ranks 2, 1, 4
    assert topk_correct(logits, labels, (1, 2, 3, 4)).tolist() == [1, 2, 2, 3]
    assert topk_correct(logits, labels, (10,)).tolist() == [3]  # k capped at C = 4
    assert topk_correct(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long), (1, 5)).tolist() == [0, 0]


def logits_for(y_true: np.ndarray, y_pred: np.ndarray, C: int, seed: int = 0) -> torch.Tensor:
    """Random logits whose argmax is ``y_pred`` and whose second choice is the true class when wrong."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.rand(len(y_true), C, generator=g)
    logits[np.arange(len(y_true)), y_true] += 2.0
    logits[np.arange(len(y_pred)), y_pred] += 5.0
    return logits


CONFUSIONS = [
    np.array([[5, 1, 0], [2, 3, 1], [0, 0, 4]]),
    np.array([[9, 0, 0, 1], [0, 0, 0, 0], [3, 1, 6, 0], [0, 2, 0, 1]]),  # a class with no samples
    np.diag([3, 3, 3, 3, 3, 3]),
]


@pytest.mark.parametrize("cm", CONFUSIONS)
def test_metrics_equal_scikit_learn_on_a_known_confusion_matrix(cm):
    C = len(cm)
    classes = [f"c{i}" for i in range(C)]
    t, p = np.nonzero(cm)
    y_true = np.repeat(t, cm[t, p])
    y_pred = np.repeat(p, cm[t, p])
    logits = logits_for(y_true, y_pred, C)
    m = classification_metrics(logits, torch.from_numpy(y_true), classes)

    assert m["num_samples"] == cm.sum()
    assert np.array_equal(m["confusion_matrix"], cm)
    assert np.array_equal(confusion_matrix(y_true, y_pred, labels=range(C)), cm)
    assert m["top1"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert m["top1"] == pytest.approx(np.trace(cm) / cm.sum())
    assert m["top5"] == (1.0 if C <= 5 else pytest.approx(accuracy_score(y_true, y_pred)))
    # top-2 is perfect by construction (the true class is the runner-up when wrong)
    assert topk_correct(logits, torch.from_numpy(y_true), (2,)).item() == cm.sum()
    have = [i for i in range(C) if cm[i].sum()]  # a class without samples has no recall to report
    recall = recall_score(y_true, y_pred, labels=have, average=None, zero_division=0)
    assert list(m["per_class_accuracy"].values()) == pytest.approx(list(recall))
    assert m["classes_without_samples"] == [classes[i] for i in range(C) if i not in have]
    ref = classification_report(y_true, y_pred, labels=have, target_names=[classes[i] for i in have],
                                output_dict=True, zero_division=0)
    assert m["classification_report"] == ref
    assert m["loss"] == pytest.approx(torch.nn.functional.cross_entropy(logits, torch.from_numpy(y_true)).item())


def test_confusion_matrix_breaks_ties_as_top1_does():
    """Rows whose best scores tie (common in bfloat16): the confusion matrix's prediction is the top-1 that
    ``topk_correct`` counts, so its diagonal adds up to the top-1 hits whatever way the tie is broken."""
    torch.manual_seed(0)
    logits = torch.randn(400, 6).round()  # many ties among the largest scores
    labels = torch.randint(0, 6, (400,))
    m = classification_metrics(logits, labels, [str(i) for i in range(6)])
    assert np.trace(np.asarray(m["confusion_matrix"])) == round(m["top1"] * 400)
    assert np.trace(np.asarray(m["confusion_matrix"])) == int(topk_correct(logits, labels, (1, 5, 10))[0])
    recall = np.asarray([m["per_class_accuracy"][str(i)] for i in range(6)])
    assert round(float(recall @ np.bincount(labels.numpy(), minlength=6))) == round(m["top1"] * 400)


def test_hardest_confusions_ranked():
    cm = np.array([[5, 1, 7], [4, 3, 0], [0, 2, 9]])
    out = hardest_confusions(cm, ["a", "b", "c"], n=3)
    assert [(c["true"], c["predicted"], c["count"]) for c in out] == [("a", "c", 7), ("b", "a", 4), ("c", "b", 2)]
    assert out[0]["rate"] == pytest.approx(7 / 13)
    assert hardest_confusions(np.diag([2, 2]), ["a", "b"]) == []


def test_confusion_plot_is_a_png_and_leaves_matplotlib_alone(tmp_path):
    """The figure is drawn without pyplot: a notebook's backend and open figures are untouched."""
    import matplotlib
    import matplotlib.pyplot as plt

    backend, figures = matplotlib.get_backend(), plt.get_fignums()
    path = plot_confusion(np.array(CONFUSIONS[0]), ["apple", "bee", "cat"], tmp_path / "cm.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    assert (matplotlib.get_backend(), plt.get_fignums()) == (backend, figures)


def test_a_class_without_samples_is_left_out_not_counted_as_zero():
    """A split without any 'b' (the class exists, this split lacks it): its recall is unknown, so the per-class
    figures and the averages skip it, and the report names it."""
    y_true = np.array([0, 0, 2, 2, 2])
    y_pred = np.array([0, 1, 2, 2, 0])
    m = classification_metrics(logits_for(y_true, y_pred, 3), torch.from_numpy(y_true), ["a", "b", "c"])
    assert m["per_class_accuracy"] == pytest.approx({"a": 0.5, "c": 2 / 3})
    assert m["classes_without_samples"] == ["b"]
    assert m["classification_report"]["macro avg"]["recall"] == pytest.approx((0.5 + 2 / 3) / 2)
    assert m["top1"] == pytest.approx(3 / 5) and np.array(m["confusion_matrix"])[1].sum() == 0


# ------------------------------------------------------------------------------------------ on a dataset
EASY = ["circle", "cross", "square", "zigzag"]
TINY = {
    "mgt": dict(embed_dim=16, layers=1, heads=1, head_dim=8, ffn_dim=16, classifier=(16,)),
    "gt-full": dict(embed_dim=8, layers=1, heads=2, classifier=(8,)),
    "cnn": dict(channels=(4,), image_size=16),
    "bigru": dict(embed_dim=8, hidden=8, layers=1),
}


def random_checkpoint(path, preset, classes=EASY):
    from sketchgraph.checkpoint import save_checkpoint
    from sketchgraph.graph import GraphSpec
    from sketchgraph.model import build_model
    from sketchgraph.preprocess import Preprocessing

    torch.manual_seed(0)
    model = build_model(preset, len(classes), **TINY[preset])
    return save_checkpoint(path, model, classes=classes, preprocessing=Preprocessing(),
                           graph_spec=GraphSpec(model.relations or ("stroke1",)), preset=preset)


@pytest.mark.parametrize("preset", list(TINY))
def test_report_for_any_preset(easy_prepared, tmp_path, preset):
    from sketchgraph.data import PreparedDataset
    from sketchgraph.evaluate import evaluate

    ckpt = random_checkpoint(tmp_path / preset, preset)
    report = evaluate(ckpt, easy_prepared, "test", batch_size=20, progress=False)
    n = len(PreparedDataset(easy_prepared).split("test"))
    assert report["num_samples"] == n == 48
    cm = np.array(report["confusion_matrix"])
    assert cm.shape == (4, 4) and cm.sum() == n and list(cm.sum(1)) == [12] * 4
    assert report["top1"] == pytest.approx(np.trace(cm) / n)
    assert report["top1"] <= report["top5"] == report["top10"] == 1.0  # 4 classes
    assert report["classes"] == EASY and set(report["per_class_accuracy"]) == set(EASY)


def test_dense_and_dgl_backends_agree(easy_prepared, tmp_path):
    from sketchgraph.evaluate import evaluate

    ckpt = random_checkpoint(tmp_path / "mgt", "mgt")
    dense = evaluate(ckpt, easy_prepared, "valid", progress=False)
    dgl = evaluate(ckpt, easy_prepared, "valid", backend="dgl", progress=False)
    assert dense["confusion_matrix"] == dgl["confusion_matrix"]
    assert dense["loss"] == pytest.approx(dgl["loss"], abs=1e-5)


def test_refuses_a_dataset_with_other_classes(easy_prepared, tmp_path):
    from sketchgraph.errors import CheckpointError
    from sketchgraph.evaluate import evaluate

    ckpt = random_checkpoint(tmp_path / "mgt", "mgt", classes=["a", "b", "c", "d"])
    with pytest.raises(CheckpointError, match="classes"):
        evaluate(ckpt, easy_prepared, progress=False)


def test_class_names_match_across_spellings(easy_prepared, tmp_path):
    """A checkpoint whose classes are spelled differently (case, ``_`` for a space) evaluates on the
    dataset, e.g. one prepared from SPG's ``alarm_clock`` files against Quick, Draw!'s ``alarm clock``."""
    from sketchgraph.evaluate import evaluate

    respelled = [c.upper().replace(" ", "_") + " " for c in EASY]
    report = evaluate(random_checkpoint(tmp_path / "mgt", "mgt", classes=respelled), easy_prepared, progress=False)
    assert report["classes"] == respelled and report["num_samples"] == 48


def test_classes_in_another_order_are_matched_by_name(easy_prepared, tmp_path):
    """The same classes in another order (a respelling that sorts differently, ``Zigzag``): each dataset label
    is mapped to the model's output of that name, not compared position by position."""
    from sketchgraph.evaluate import evaluate

    a = evaluate(random_checkpoint(tmp_path / "a", "mgt"), easy_prepared, progress=False)
    b = evaluate(random_checkpoint(tmp_path / "b", "mgt", classes=EASY[::-1]), easy_prepared, progress=False)
    # the same weights: output i is the same logit; the true class of row r of b is EASY[3 - r]
    assert np.array_equal(np.array(b["confusion_matrix"]), np.array(a["confusion_matrix"])[::-1])
    assert b["classes"] == EASY[::-1] and b["num_samples"] == a["num_samples"]


def test_class_map_prefers_equal_names():
    """Classes equal as canonical names but both in the model (a model from before prepare merged spellings, or
    letters ``A`` / ``a``) still pair up: equal names first."""
    from sketchgraph.evaluate import _class_map

    names = ["Alarm clock", "alarm_clock", "cat"]
    assert _class_map(names, names).tolist() == [0, 1, 2]
    assert _class_map(["a", "A", "b"], ["A", "a", "B"]).tolist() == [1, 0, 2]  # b matches B loosely


def test_other_classes_are_named(easy_prepared, tmp_path):
    from sketchgraph.errors import CheckpointError
    from sketchgraph.evaluate import evaluate

    ckpt = random_checkpoint(tmp_path / "mgt", "mgt", classes=[*EASY[:3], "moon"])
    with pytest.raises(CheckpointError, match=r"the dataset's classes \['zigzag'\] are not among"):
        evaluate(ckpt, easy_prepared, progress=False)


def test_a_dataset_of_some_of_the_model_classes(easy_prepared, tmp_path):
    """A user's dataset of a few of the model's classes evaluates; per-class figures are for those classes."""
    from sketchgraph.evaluate import evaluate

    model_classes = ["apple", *EASY, "moon"]
    a = evaluate(random_checkpoint(tmp_path / "a", "mgt", classes=model_classes), easy_prepared, progress=False)
    assert a["num_samples"] == 48 and a["classes"] == model_classes and a["dataset_classes"] == EASY
    assert set(a["per_class_accuracy"]) == set(EASY)
    report = a["classification_report"]
    assert "apple" not in report and "moon" not in report  # averages over the dataset's 4 classes only
    assert report["macro avg"]["recall"] == pytest.approx(np.mean(list(a["per_class_accuracy"].values())))
    cm = np.array(a["confusion_matrix"])
    assert cm.shape == (6, 6) and cm[0].sum() == cm[5].sum() == 0 and cm[1:5].sum(1).tolist() == [12] * 4


def test_cli_device_auto(easy_prepared, tmp_path, capsys):
    from sketchgraph.cli import main

    ckpt = random_checkpoint(tmp_path / "mgt", "mgt")
    assert main(["evaluate", str(ckpt), str(easy_prepared), "--device", "auto", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["num_samples"] == 48


def test_cli(easy_prepared, tmp_path, capsys):
    from sketchgraph.cli import main

    ckpt = random_checkpoint(tmp_path / "mgt", "mgt")
    assert main(["evaluate", str(ckpt), str(easy_prepared), "--split", "test", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["split"] == "test" and report["num_samples"] == 48
    assert main(["evaluate", str(ckpt), str(easy_prepared), "--out", str(tmp_path / "e")]) == 0
    text = capsys.readouterr().out
    assert "top-1" in text and "report.json" in text
    saved = json.loads((tmp_path / "e" / "report.json").read_text())
    assert saved["top1"] == report["top1"] and saved["confusion_matrix"] == report["confusion_matrix"]
    assert (tmp_path / "e" / "confusion.png").read_bytes()[:4] == b"\x89PNG"


def test_a_shipped_checkpoint_by_name(tmp_path, capsys):
    """``sketchgraph evaluate spg20 DATASET`` takes the shipped checkpoint's name, as predict / serve / export do (it
    said "no checkpoint at spg20"); a path that is not there is named."""
    from sketchgraph.cli import main
    from sketchgraph.data import prepare
    from sketchgraph.examples import example_paths

    drawings = [p for p in example_paths() if p.suffix == ".ndjson"]  # 5 drawings of SPG-20 classes
    dataset = prepare(drawings, tmp_path / "examples", workers=1, progress=False).path
    assert main(["evaluate", "spg20", str(dataset), "--split", "all", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["num_samples"] == 5 and len(report["classes"]) == 20 and report["checkpoint"].endswith("spg20")
    assert report["dataset_classes"] == ["alarm clock", "cactus", "candle", "face", "ice cream"]

    missing = tmp_path / "runs" / "best"
    assert main(["evaluate", str(missing), str(dataset), "--split", "all"]) == 1
    assert capsys.readouterr().err == (f"sketchgraph evaluate: error: checkpoint '{missing}' not found; looked in: "
                                       f"{missing}\n")


# ------------------------------------------------------------------------ preprocessing, provenance, --out
def restamped(prepared, folder, preprocessing):
    """A copy of a prepared dataset whose ``meta.json`` records ``preprocessing`` (the arrays are unchanged: the
    check reads what the dataset says it went through)."""
    import shutil

    shutil.copytree(prepared, folder)
    meta = json.loads((folder / "meta.json").read_text())
    if preprocessing is None:
        del meta["preprocessing"]
    else:
        meta["preprocessing"] = preprocessing
    (folder / "meta.json").write_text(json.dumps(meta))
    return folder


NOSIMP = {"simplify": False, "epsilon": 2.0, "max_points": 30, "cap": "truncate"}


def test_refuses_a_dataset_prepared_otherwise(easy_prepared, tmp_path):
    """A test set prepared without simplification and with another cap gave silently wrong numbers (29% instead
    of 94% for the same drawings); it is refused, naming each field, both values and both files."""
    from sketchgraph.errors import CheckpointError
    from sketchgraph.evaluate import PreprocessingMismatchError, evaluate

    ckpt = random_checkpoint(tmp_path / "run" / "best", "mgt")
    data = restamped(easy_prepared, tmp_path / "nosimp", NOSIMP)
    with pytest.raises(PreprocessingMismatchError) as info:
        evaluate(ckpt, data, "test", progress=False)
    message = str(info.value)
    assert isinstance(info.value, CheckpointError)
    assert info.value.differences == {"simplify": {"dataset": False, "checkpoint": True},
                                      "max_points": {"dataset": 30, "checkpoint": 100}}
    assert (f"the dataset {data} was prepared differently from the data the checkpoint {ckpt} was trained on "
            f"('preprocessing' in {data / 'meta.json'} vs {ckpt / 'config.json'}): simplify: False in the dataset, "
            "True in the checkpoint; max_points: 30 in the dataset, 100 in the checkpoint.") in message
    assert "--epsilon 2.0 --cap truncate --max-points 100" in message
    assert "--allow-preprocessing-mismatch" in message and "epsilon:" not in message  # epsilon: unused without simplify

    report = evaluate(ckpt, data, "test", progress=False, allow_preprocessing_mismatch=True)
    assert report["num_samples"] == 48 and report["allow_preprocessing_mismatch"] is True
    assert report["preprocessing_mismatch"] == info.value.differences
    assert report["preprocessing"] == {"dataset": NOSIMP, "checkpoint": {**NOSIMP, "simplify": True,
                                                                         "max_points": 100}}


def test_cli_refuses_a_mismatch_and_records_the_opt_in(easy_prepared, tmp_path, capsys):
    from sketchgraph.cli import main

    ckpt = random_checkpoint(tmp_path / "run" / "best", "mgt")
    data = restamped(easy_prepared, tmp_path / "nosimp", NOSIMP)
    out = tmp_path / "eval"
    assert main(["evaluate", str(ckpt), str(data), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"sketchgraph evaluate: error: the dataset {data} was prepared differently")
    assert "simplify: False in the dataset, True in the checkpoint" in err and not out.exists()

    assert main(["evaluate", str(ckpt), str(data), "--out", str(out), "--allow-preprocessing-mismatch"]) == 0
    captured = capsys.readouterr()
    assert ("sketchgraph evaluate: warning: the dataset was prepared differently from the checkpoint's training "
            "data: simplify False (dataset) vs True (checkpoint); max_points 30 (dataset) vs 100 (checkpoint)"
            ) in captured.err
    assert "evaluated despite a preprocessing mismatch (--allow-preprocessing-mismatch)" in captured.out
    saved = json.loads((out / "report.json").read_text())
    assert saved["allow_preprocessing_mismatch"] is True
    assert saved["preprocessing_mismatch"]["max_points"] == {"dataset": 30, "checkpoint": 100}


def test_matching_preprocessing_is_compared_by_meaning(easy_prepared, tmp_path):
    """An older ``meta.json`` that leaves fields out (or has no ``preprocessing`` at all) means the defaults, which
    the checkpoint used: no refusal. The checkpoint's ``inference_preprocessing`` (what predict applies) is not
    what its training data went through and is not compared."""
    from sketchgraph.evaluate import evaluate

    ckpt = random_checkpoint(tmp_path / "mgt", "mgt")
    config = json.loads((ckpt / "config.json").read_text())
    config["inference_preprocessing"] = {"cap": "adapt"}
    (ckpt / "config.json").write_text(json.dumps(config))
    default = {"simplify": True, "epsilon": 2.0, "max_points": 100, "cap": "truncate"}
    for i, stored in enumerate(({}, {"simplify": True}, {"max_points": 100.0, "epsilon": 2}, None)):
        data = restamped(easy_prepared, tmp_path / f"old{i}", stored)
        report = evaluate(ckpt, data, "test", progress=False)
        assert report["preprocessing_mismatch"] == {} and report["allow_preprocessing_mismatch"] is False
        assert report["preprocessing"] == {"dataset": default, "checkpoint": default}


def test_preprocessing_differences_rules():
    from sketchgraph.evaluate import preprocessing_differences as diff

    assert diff({}, {"simplify": True, "epsilon": 2.0, "max_points": 100, "cap": "truncate"}) == {}
    assert diff({"epsilon": 1.0}, {}) == {"epsilon": {"dataset": 1.0, "checkpoint": 2.0}}
    assert diff({"cap": "adapt"}, {}) == {"cap": {"dataset": "adapt", "checkpoint": "truncate"}}
    # without simplification epsilon and cap change nothing; a simplify difference is reported alone
    assert diff({"simplify": False, "epsilon": 1.0, "cap": "adapt"}, {"simplify": False}) == {}
    assert diff({"simplify": False, "epsilon": 5.0}, {}) == {"simplify": {"dataset": False, "checkpoint": True}}
    # a field this version does not know: compared only when both record it
    assert diff({"future": 1}, {}) == {}
    assert diff({"future": 1}, {"future": 2}) == {"future": {"dataset": 1, "checkpoint": 2}}
    with pytest.raises(ValueError, match=r"dataset: 'preprocessing' is invalid: Preprocessing.max_points must be a "
                                         r"positive integer, got 'many'"):
        diff({"max_points": "many"}, {})


def test_an_invalid_stored_preprocessing_names_its_file(easy_prepared, tmp_path):
    from sketchgraph.errors import CheckpointError, SketchError
    from sketchgraph.evaluate import evaluate

    ckpt = random_checkpoint(tmp_path / "mgt", "mgt")
    bad = restamped(easy_prepared, tmp_path / "bad", {"cap": "squash"})
    with pytest.raises(SketchError, match=rf"^{bad / 'meta.json'}: 'preprocessing' is invalid: Preprocessing.cap "):
        evaluate(ckpt, bad, progress=False)
    config = json.loads((ckpt / "config.json").read_text())
    config["preprocessing"] = {"max_points": 0}
    (ckpt / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=rf"^{ckpt / 'config.json'}: 'preprocessing' is invalid: "
                                              r"Preprocessing.max_points must be a positive integer, got 0"):
        evaluate(ckpt, easy_prepared, progress=False)


def test_an_in_memory_checkpoint_without_preprocessing_is_not_checked(easy_prepared):
    """``(model, config)`` built in memory may record no preprocessing: nothing to compare, and no weights file to
    digest."""
    from sketchgraph.evaluate import evaluate
    from sketchgraph.model import build_model

    torch.manual_seed(0)
    model = build_model("mgt", 4, **TINY["mgt"])
    report = evaluate((model, {"classes": EASY, "graph_spec": {"relations": list(model.relations)}}), easy_prepared,
                      progress=False)
    assert report["checkpoint"] == "<in memory>" and report["weights_sha256"] is None
    assert report["preprocessing"]["checkpoint"] is None and report["preprocessing_mismatch"] == {}


def test_report_names_the_weights_and_the_data(easy_prepared, tmp_path):
    """A report next to a retrained model shows it is stale: it holds the digest of the weights it measured and the
    dataset's content fingerprint."""
    from sketchgraph.checkpoint import weights_digest
    from sketchgraph.data import PreparedDataset
    from sketchgraph.evaluate import evaluate

    a = random_checkpoint(tmp_path / "a", "mgt")
    b = random_checkpoint(tmp_path / "b", "gt-full")
    ra = evaluate(a, easy_prepared, out=tmp_path / "eval", progress=False)
    saved = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert saved["weights_sha256"] == ra["weights_sha256"] == weights_digest(a)
    assert len(ra["weights_sha256"]) == 64 and ra["weights_sha256"] != weights_digest(b)
    assert saved["dataset_fingerprint"] == PreparedDataset(easy_prepared).fingerprint
    assert evaluate(b, easy_prepared, progress=False)["weights_sha256"] == weights_digest(b)


def test_a_bad_out_is_refused_before_anything_is_loaded(tmp_path, capsys):
    """``--out`` naming a file used to fail only after the whole evaluation; now it fails first (here the checkpoint
    and the dataset do not even exist), and nothing is created."""
    from sketchgraph.cli import main
    from sketchgraph.evaluate import evaluate

    afile = tmp_path / "afile"
    afile.write_text("x")
    missing = tmp_path / "nothing"
    with pytest.raises(FileExistsError, match=rf"^--out {afile} is an existing file, not a folder: evaluate writes "
                                              "report.json and confusion.png into a folder"):
        evaluate(missing, missing, out=afile, progress=False)
    with pytest.raises(NotADirectoryError, match=rf"^--out {afile / 'sub'} cannot be created: {afile} is a file"):
        evaluate(missing, missing, out=afile / "sub", progress=False)
    (tmp_path / "eval" / "report.json").mkdir(parents=True)
    with pytest.raises(IsADirectoryError, match=r"report.json is a folder, so report.json cannot be written there"):
        evaluate(missing, missing, out=tmp_path / "eval", progress=False)
    assert main(["evaluate", str(missing), str(missing), "--out", str(afile)]) == 1
    assert capsys.readouterr().err.startswith(f"sketchgraph evaluate: error: --out {afile} is an existing file")
    assert afile.read_text() == "x" and sorted(p.name for p in tmp_path.iterdir()) == ["afile", "eval"]


def test_a_training_run_folder_suggests_its_checkpoints(easy_prepared, tmp_path, capsys):
    """``evaluate RUN`` (the run, not ``RUN/best``) said "RUN/config.json does not exist"; it names best/ and last/."""
    from sketchgraph.cli import main
    from sketchgraph.errors import CheckpointError
    from sketchgraph.evaluate import evaluate

    run = tmp_path / "run1"
    random_checkpoint(run / "last", "mgt")
    random_checkpoint(run / "best", "mgt")
    expected = (f"{run} is not a checkpoint (no config.json) but holds 2 checkpoints: evaluate {run / 'best'} (the "
                f"epoch of best validation accuracy) or {run / 'last'} (the latest epoch)")
    with pytest.raises(CheckpointError) as info:
        evaluate(run, easy_prepared, progress=False)
    assert str(info.value) == expected
    assert main(["evaluate", str(run), str(easy_prepared)]) == 1
    assert capsys.readouterr().err == f"sketchgraph evaluate: error: {expected}\n"


def test_confusion_title_names_the_run(easy_prepared, tmp_path, monkeypatch):
    """Every run's checkpoint is called ``best``: the title says ``run1/best``, not ``best``."""
    from sketchgraph import evaluate as ev

    titles = []
    real = ev.plot_confusion
    monkeypatch.setattr(ev, "plot_confusion", lambda *a, title="": (titles.append(title), real(*a, title=title))[1])
    ckpt = random_checkpoint(tmp_path / "run1" / "best", "mgt")
    report = ev.evaluate(ckpt, easy_prepared, "test", out=tmp_path / "eval", progress=False)
    assert titles == [f"run1/best on test: top-1 {report['top1']:.2%}"]
    monkeypatch.chdir(ckpt)
    assert ev._checkpoint_title(".") == "run1/best" and ev._checkpoint_title("<in memory>") == "<in memory>"
