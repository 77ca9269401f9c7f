"""eval.py with several checkpoints: one test set, bicubic once, rows named per model, figures, W&B offline."""

from __future__ import annotations

import csv
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from omegaconf import OmegaConf
from support import run_in_process, train_in_process

from afm_sr import entry
from afm_sr.errors import ConfigError
from afm_sr.report.evaluation import pick_figure_images

TINY = ["debug=tiny", "model.depth=2", "model.width=4",
        "dataset=mono", "dataset.materials.ceramic.n_images=5", "dataset.materials.ceramic.n_px=48"]


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def test_two_checkpoints_one_table(tmp_path):
    run_dir = train_in_process(TINY, tmp_path)
    best = run_dir / "checkpoints" / "best.ckpt"
    ckpt = torch.load(best, weights_only=True)  # a second, different model: the same net with halved weights
    ckpt["state_dict"] = {k: v * 0.5 if k.startswith("net.") else v for k, v in ckpt["state_dict"].items()}
    halved = tmp_path / "halved.ckpt"
    torch.save(ckpt, halved)

    eval_dir = tmp_path / "eval"
    _, objects = run_in_process("eval", [*TINY, f"checkpoints={{mono: {best}, halved: {halved}}}", "logger=wandb"],
                                eval_dir)
    objects["trainer"].logger.experiment.finish()
    table = _rows(eval_dir / "table1.csv")
    assert [(r["scale"], r["method"]) for r in table] == [(s, m) for s in ("2", "4", "8")
                                                          for m in ("bicubic", "mono", "halved")]
    records = _rows(eval_dir / "records.csv")
    assert sum(r["method"] == "bicubic" for r in records) == sum(r["method"] == "mono" for r in records) > 0
    # the named model's rows are what train.py's own test of the same checkpoint measured
    trained = {(r["image"], r["scale"], r["method"]): r["psnr"] for r in _rows(run_dir / "records.csv")}
    named = {(r["image"], r["scale"], r["method"].replace("mono", "model")): r["psnr"] for r in records
             if r["method"] != "halved"}
    assert named == trained
    assert {r["psnr"] for r in records if r["method"] == "halved"} != {r["psnr"] for r in records
                                                                        if r["method"] == "mono"}
    assert [r["method"] for r in _rows(eval_dir / "wilcoxon.csv")] == ["mono", "halved"] * 3
    assert "halved gain dB" in (eval_dir / "table1.md").read_text()
    pngs = sorted(p.name for p in (eval_dir / "figures").glob("*.png"))
    assert pngs == ["errors_0.png", "gain_bars.png", "panels_0.png", "profiles_0.png", "surface_0.png"]
    media = eval_dir / "wandb" / "latest-run" / "files" / "media"
    assert {p.name.split("_2_")[0] for p in (media / "table" / "eval").glob("*.table.json")} == {
        "table1", "table1_per_material", "wilcoxon"}
    assert len(list((media / "images" / "eval").glob("*.png"))) == len(pngs)


def _cfg(**values: object):
    return OmegaConf.create({"ckpt_path": None, "checkpoints": None, **values})


def test_checkpoints_from_ckpt_path_or_mapping(tmp_path):
    a, b = tmp_path / "a.ckpt", tmp_path / "b.ckpt"
    a.touch()
    b.touch()
    assert entry.checkpoints(_cfg(ckpt_path=str(a))) == {"model": a}
    assert entry.checkpoints(_cfg(checkpoints={"multi": str(b), "mono": str(a)})) == {"multi": b, "mono": a}
    assert list(entry.checkpoints(_cfg(checkpoints={"multi": str(b), "mono": str(a)}))) == ["multi", "mono"]


@pytest.mark.parametrize(("values", "message"), [
    ({}, "needs ckpt_path"),
    ({"ckpt_path": "a.ckpt", "checkpoints": {"m": "a.ckpt"}}, "not both"),
    ({"checkpoints": {"bicubic": "a.ckpt"}}, "baseline's name"),
    ({"checkpoints": {"m": "missing.ckpt"}}, "m=missing.ckpt"),
])
def test_checkpoints_errors(values, message):
    with pytest.raises(ConfigError, match=message):
        entry.checkpoints(_cfg(**values))


def test_checkpoints_must_be_a_mapping():
    with pytest.raises(ConfigError, match="must map names to files"):
        entry.checkpoints(_cfg(checkpoints="a.ckpt"))


def test_figure_images_come_from_each_material_in_turn():
    images = [SimpleNamespace(material=m, name=f"{m}{i}") for m, i in
              [("a", 0), ("a", 1), ("a", 2), ("b", 0), ("c", 0), ("c", 1)]]
    assert [im.name for im in pick_figure_images(images, 4)] == ["a0", "b0", "c0", "a1"]
    assert pick_figure_images(images, 0) == []
