"""Checkpoints: round trip for every architecture, atomic writes, resume state, and refusing unsafe files."""

from __future__ import annotations

import json
import os
import pickle

import pytest
import torch

from sketchgraph.batch import Batch
from sketchgraph.checkpoint import TrainState, load_checkpoint, load_config, load_train_state, save_checkpoint
from sketchgraph.errors import CheckpointError
from sketchgraph.graph import GraphSpec, sketch_flags
from sketchgraph.model import build_model
from sketchgraph.preprocess import Preprocessing

CLASSES = ["apple", "bee", "cat"]
TINY = {
    "mgt": dict(embed_dim=16, layers=1, heads=1, head_dim=8, ffn_dim=16, classifier=(16,)),
    "mgt-paper": dict(embed_dim=8, layers=1, heads=2, classifier=(16,)),
    "gt-full": dict(embed_dim=8, layers=1, heads=2, classifier=(8,)),
    "cnn": dict(channels=(4, 8), image_size=16),
    "bigru": dict(embed_dim=8, hidden=8, layers=1),
}


def tiny_model(preset: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(preset, len(CLASSES), **TINY[preset])


def example_batch(relations) -> Batch:
    g = torch.Generator().manual_seed(0)
    flags = torch.full((3, 12), 102)
    for b, lengths in enumerate([[4, 3], [12], [2, 2, 2]]):
        f = torch.from_numpy(sketch_flags(lengths))
        flags[b, : len(f)] = f
    coords = torch.rand(3, 12, 2, generator=g) * 255 * (flags != 102)[..., None]
    return Batch.from_padded(coords, flags, relations)


def save(path, model, **kw):
    return save_checkpoint(path, model, classes=CLASSES, preprocessing=Preprocessing(),
                           graph_spec=GraphSpec(model.relations or ("stroke1",)), preset=model.config.preset, **kw)


@pytest.mark.parametrize("preset", list(TINY))
def test_round_trip_every_architecture(tmp_path, preset):
    model = tiny_model(preset).eval()
    path = save(tmp_path / "ck", model, metrics={"valid_top1": 0.5}, training={"command": "sketchgraph train x"})
    assert sorted(p.name for p in path.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    loaded, config = load_checkpoint(path)
    assert config["format_version"] == 1 and config["classes"] == CLASSES and config["preset"] == preset
    assert config["preprocessing"] == Preprocessing().to_dict()
    assert config["metrics"] == {"valid_top1": 0.5}
    assert not loaded.training
    ref, new = model.state_dict(), loaded.state_dict()
    assert ref.keys() == new.keys() and all(torch.equal(ref[k], new[k]) for k in ref)
    batch = example_batch(model.relations)
    with torch.no_grad():
        assert torch.equal(model(batch), loaded(batch))
    assert "sketchgraph train x" in (path / "README.md").read_text()


def test_overwrite_is_atomic_and_leaves_no_temporaries(tmp_path):
    m1, m2 = tiny_model("mgt"), build_model("mgt", 3, **TINY["mgt"])
    save(tmp_path / "best", m1, metrics={"epoch": 1})
    save(tmp_path / "best", m2, metrics={"epoch": 2})
    assert [p.name for p in tmp_path.iterdir()] == ["best"]
    loaded, config = load_checkpoint(tmp_path / "best")
    assert config["metrics"]["epoch"] == 2
    assert all(torch.equal(a, b) for a, b in zip(m2.state_dict().values(), loaded.state_dict().values()))
    assert not all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), loaded.state_dict().values()))


def test_failed_save_keeps_the_old_checkpoint(tmp_path):
    save(tmp_path / "ck", tiny_model("mgt"), metrics={"epoch": 1})
    with pytest.raises(TypeError):
        save(tmp_path / "ck", tiny_model("mgt"), metrics={"epoch": object()})  # not JSON serialisable
    assert load_config(tmp_path / "ck")["metrics"] == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["ck"]


def test_train_state_round_trip(tmp_path):
    model = tiny_model("mgt")
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    batch = example_batch(model.relations)
    for _ in range(2):
        opt.zero_grad()
        model(batch).sum().backward()
        opt.step()
    state = TrainState(epoch=2, step=7, best_metric=0.25, best_epoch=1, bad_epochs=1, time_s=3.5, seed=9,
                       optimizer=opt.state_dict())
    save(tmp_path / "last", model, train_state=state)
    assert {"state.safetensors", "state.json"} <= {p.name for p in (tmp_path / "last").iterdir()}
    back = load_train_state(tmp_path / "last")
    assert (back.epoch, back.step, back.best_metric, back.best_epoch, back.bad_epochs, back.time_s, back.seed) == (
        2, 7, 0.25, 1, 1, 3.5, 9)
    opt2 = torch.optim.Adam(tiny_model("mgt").parameters(), lr=1e-3)
    opt2.load_state_dict(back.optimizer)
    s1, s2 = opt.state_dict(), opt2.state_dict()
    assert s1["param_groups"] == s2["param_groups"]
    assert s1["state"].keys() == s2["state"].keys()
    for pid, per in s1["state"].items():
        for key, value in per.items():
            assert torch.equal(value, s2["state"][pid][key]), (pid, key)


class _Evil:
    """Unpickling this runs ``touch marker``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("weights_name,message", [
    ("model.safetensors", "not a valid safetensors file"),
    ("model.pt", "weights_only=True"),
])
def test_refuses_a_crafted_pickle_without_running_it(tmp_path, weights_name, message):
    path = save(tmp_path / "ck", tiny_model("mgt"))
    (path / "model.safetensors").unlink()
    marker = tmp_path / "pwned"
    (path / weights_name).write_bytes(pickle.dumps(_Evil(marker)))
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path / weights_name)
    assert not marker.exists()


def test_loads_plain_pt_state_dict_with_weights_only(tmp_path):
    model = tiny_model("mgt")
    path = save(tmp_path / "ck", model)
    (path / "model.safetensors").unlink()
    torch.save(model.state_dict(), path / "model.pt")
    loaded, _ = load_checkpoint(path)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))


@pytest.mark.parametrize("version", [0, 2, 99, None])
def test_refuses_incompatible_format_version(tmp_path, version):
    path = save(tmp_path / "ck", tiny_model("mgt"))
    config = json.loads((path / "config.json").read_text())
    config["format_version"] = version
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=f"format_version {version!r} is incompatible"):
        load_checkpoint(path)


def test_refuses_weights_of_another_model(tmp_path):
    path = save(tmp_path / "ck", tiny_model("mgt"))
    other = save(tmp_path / "other", build_model("mgt", 3, **{**TINY["mgt"], "embed_dim": 32}))
    (path / "model.safetensors").write_bytes((other / "model.safetensors").read_bytes())
    with pytest.raises(CheckpointError, match="do not match"):
        load_checkpoint(path)


def test_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path / "nowhere")


def test_a_run_folder_given_for_its_checkpoint_names_the_checkpoints_in_it(tmp_path, tiny_checkpoint):
    """``runs/tiny`` (a training run's folder) instead of ``runs/tiny/best`` said only that config.json is missing."""
    import shutil

    run = tmp_path / "run"
    for name in ("best", "last"):
        shutil.copytree(tiny_checkpoint, run / name)
    (run / "log.jsonl").write_text("")
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(run)
    assert str(info.value) == (f"no checkpoint at {run}: {run / 'config.json'} does not exist (the checkpoints in "
                               f"it: {run / 'best'}, {run / 'last'}; a training run's folder holds best/ and last/)")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match=r"config.json does not exist$"):  # no checkpoint inside: no hint
        load_checkpoint(tmp_path / "empty")


def edit_config(path, edit) -> None:
    config = json.loads((path / "config.json").read_text())
    edit(config)
    (path / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize("edit, message", [
    (lambda c: c.update(format_version=True), "format_version True"),
    (lambda c: c.update(format_version=1.0), "format_version 1.0"),
    (lambda c: c.update(classes=CLASSES[:2]), "3 outputs but 'classes' names 2"),
    (lambda c: c.update(classes=CLASSES + ["dog"]), "3 outputs but 'classes' names 4"),
    (lambda c: c.update(classes="abc"), "'classes' must be a non-empty list"),
    (lambda c: c.update(classes=[1, 2, 3]), "'classes' must be a non-empty list"),
    (lambda c: c.update(classes=["a", "a", "b"]), "names a class twice"),
    (lambda c: c.update(model=[1]), "'model' must be a JSON object"),
    (lambda c: c["model"].update(no_such_field=1), "'model' does not describe a model"),
    (lambda c: c.update(preprocessing=None), "'preprocessing' must be a JSON object"),
    (lambda c: c.update(inference_preprocessing="adapt"), "'inference_preprocessing' must be a JSON object"),
])
def test_refuses_a_config_that_contradicts_itself_or_its_model(tmp_path, edit, message):
    path = save(tmp_path / "ck", tiny_model("mgt"))
    edit_config(path, edit)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


@pytest.mark.parametrize("edit, message", [
    (lambda c: c.update(graph_spec={"relations": ["stroke1"]}), "graph_spec .* lacks"),
    (lambda c: c.update(graph_spec={}), "does not fit its model"),
    (lambda c: c["preprocessing"].update(max_points=150), "max_points 150 exceeds the model's 100"),
    (lambda c: c["preprocessing"].update(max_points=0), "max_points must be a positive integer"),
    (lambda c: c["preprocessing"].update(epsilon=-1), "epsilon must be a number >= 0"),
    (lambda c: c["preprocessing"].update(simplify="yes"), "simplify must be true or false"),
])
def test_classifier_refuses_preprocessing_or_graphs_its_model_cannot_take(tmp_path, edit, message):
    from sketchgraph.predict import SketchClassifier

    path = save(tmp_path / "ck", tiny_model("mgt"))
    edit_config(path, edit)
    with pytest.raises(CheckpointError, match=message):
        SketchClassifier.from_pretrained(path)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_refuses_weights_that_hold_nan_or_infinity(tmp_path, bad):
    """A damaged weight would make every score NaN (and the ranking meaningless): refused at load, by name."""
    from safetensors.torch import save_file

    model = tiny_model("mgt")
    path = save(tmp_path / "ck", model)
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    name = next(k for k, v in weights.items() if v.is_floating_point() and k.endswith("bias"))
    weights[name].view(-1)[0] = bad
    save_file(weights, str(path / "model.safetensors"))
    with pytest.raises(CheckpointError, match=f"damaged: {name} holds NaN or infinity"):
        load_checkpoint(path)


def test_non_finite_scores_are_an_error_not_a_ranking(tmp_path):
    from sketchgraph.predict import SketchClassifier

    clf = SketchClassifier.from_pretrained(save(tmp_path / "ck", tiny_model("mgt")))
    with torch.no_grad():
        next(p for p in clf.model.parameters() if p.dim() == 1).fill_(float("nan"))
    with pytest.raises(CheckpointError, match="NaN or infinite scores"):
        clf.predict([[[0, 10, 20], [0, 5, 0]]])


def test_refuses_integer_weights_for_float_parameters(tmp_path):
    from safetensors.torch import save_file

    model = tiny_model("mgt")
    path = save(tmp_path / "ck", model)
    save_file({k: v.round().long() if v.is_floating_point() else v for k, v in model.state_dict().items()},
              str(path / "model.safetensors"))
    with pytest.raises(CheckpointError, match="is torch.int64, the model's is torch.float32"):
        load_checkpoint(path)


@pytest.mark.parametrize("text, message", [
    ("{", "not valid JSON"),
    ("[1]", "incompatible state format_version None"),
])
def test_corrupt_resume_state_is_a_checkpoint_error(tmp_path, text, message):
    model = tiny_model("mgt")
    opt = torch.optim.Adam(model.parameters())
    path = save(tmp_path / "ck", model, train_state=TrainState(epoch=1, step=2, optimizer=opt.state_dict()))
    load_train_state(path)
    (path / "state.json").write_text(text)
    with pytest.raises(CheckpointError, match=message):
        load_train_state(path)


@pytest.mark.parametrize("commands, expected", [
    ([], ["```", "sketchgraph train a.toml --out r"]),
    ([{"command": "sketchgraph train a.toml --out r", "from_epoch": 0}], ["```", "sketchgraph train a.toml --out r"]),
    ([{"command": "sketchgraph train a.toml --out r", "from_epoch": 0},
      {"command": "sketchgraph train a.toml --out r --resume", "from_epoch": 3}],
     ["- from the start:", "  sketchgraph train a.toml --out r", "- after epoch 3:",
      "  sketchgraph train a.toml --out r --resume"]),
    ([{"command": "old", "from_epoch": None}, {"command": "new --resume", "from_epoch": 5}],
     ["- first recorded:", "  old", "- after epoch 5:", "  new --resume"]),
])
def test_model_card_lists_every_invocation_of_a_resumed_run(commands, expected):
    from sketchgraph.checkpoint import model_card

    last = commands[-1]["command"] if commands else "sketchgraph train a.toml --out r"
    card = model_card({"model": {"name": "mgt"}, "classes": ["a"],
                       "training": {"command": last, "commands": commands, "epochs": 6}})
    lines = card.splitlines()
    at = [lines.index(e) for e in expected]  # each line present, in this order
    assert at == sorted(at)
    assert ("resumed the one before" in card) == (len(commands) > 1)


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640)])
def test_weights_files_get_the_mode_of_a_new_file(tmp_path, umask, mode):
    """safetensors creates its files 0600, so a checkpoint trained by one user could not be read by another; the
    weights and resume tensors get what the umask gives any new file, as config.json does."""
    old = os.umask(umask)
    try:
        path = save(tmp_path / "ck", tiny_model("mgt"), train_state=TrainState(epoch=1))
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in path.iterdir()}
    assert modes["model.safetensors"] == modes["state.safetensors"] == modes["config.json"] == mode, modes


def test_stale_temporaries_of_dead_processes_are_removed(tmp_path):
    import subprocess
    import sys

    from sketchgraph.checkpoint import remove_stale_temporaries

    gone = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout)
    dead, mine, alive = (tmp_path / f".best.tmp-{gone}", tmp_path / f".last.tmp-{os.getpid()}",
                         tmp_path / f".last.tmp-{os.getppid()}")
    kept = [alive, tmp_path / ".best.tmp-notapid", tmp_path / f".other.tmp-{gone}", tmp_path / "best"]
    for folder in (dead, mine, *kept):
        folder.mkdir()
    assert remove_stale_temporaries(tmp_path, ("best", "last")) == [dead, mine]
    assert all(p.is_dir() for p in kept) and not dead.exists() and not mine.exists()


def test_saving_leaves_the_umask_alone(tmp_path, monkeypatch):
    """The weights' mode used to be worked out by setting the umask and putting it back, which for a moment gave
    every other thread's new files the mode 0644 whatever the user's umask; the umask is now never set."""
    def no_umask(mask):
        raise AssertionError("os.umask called while saving a checkpoint")

    old = os.umask(0o027)
    try:
        with monkeypatch.context() as mp:
            mp.setattr(os, "umask", no_umask)
            path = save(tmp_path / "ck", tiny_model("mgt"), train_state=TrainState(epoch=1))
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in path.iterdir()}
    assert set(modes.values()) == {0o640}, modes


def test_temporary_folders_name_their_machine_and_only_this_machines_dead_ones_go(tmp_path):
    """``.<name>.tmp-<host>-<pid>``: a process id says nothing about a process of another machine (or container)
    sharing the folder, so such a folder is kept until it is a day old; folders named by earlier versions
    (``.<name>.tmp-<pid>``) still go by their pid."""
    import subprocess
    import sys
    import time

    from sketchgraph.checkpoint import atomic_dir, foreign_temporaries, remove_stale_temporaries
    from sketchgraph.temporaries import host as _host

    with atomic_dir(tmp_path / "best") as tmp:
        assert tmp.name == f".best.tmp-{_host()}-{os.getpid()}"
    gone = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout)
    host = _host()
    dead_old, dead = tmp_path / f".best.tmp-{gone}", tmp_path / f".best.tmp-{host}-{gone}"
    alive = tmp_path / f".last.tmp-{host}-{os.getppid()}"
    theirs = tmp_path / f".last.tmp-{host}x-{gone}"  # another machine: its pid may run there
    theirs_old = tmp_path / f".last.tmp-other-{gone}"
    for folder in (dead_old, dead, alive, theirs, theirs_old):
        folder.mkdir()
    os.utime(theirs_old, (time.time() - 25 * 3600,) * 2)
    assert foreign_temporaries(tmp_path, ("best", "last")) == sorted([theirs, theirs_old])
    assert remove_stale_temporaries(tmp_path, ("best", "last")) == sorted([dead_old, dead]) + [theirs_old]
    assert alive.is_dir() and theirs.is_dir() and not dead.exists() and not dead_old.exists()
    assert remove_stale_temporaries(tmp_path, ("last",), stale_after_s=0) == [theirs]
