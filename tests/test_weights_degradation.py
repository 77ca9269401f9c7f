"""Weights record what they trained on: train.py keeps the degradation, export writes it, adapt's trained pairs
build it without Hydra from allow-listed classes only, and files without a record fall back to v0.2's mix."""

from __future__ import annotations

import json
import logging
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from safetensors import safe_open
from safetensors.torch import save_file
from support import REPO, train_in_process
from test_infer import surface, write_tiny_checkpoint

from afm_sr.cli import main
from afm_sr.degrade import BicubicDegradation, MixedDegradation, ScanDegradation
from afm_sr.degrade.acquisition import AcquisitionDegradation
from afm_sr.errors import AFMFileError, InputError
from afm_sr.infer import export_weights, load_model
from afm_sr.infer.adapt import adapt, pair_degradation
from afm_sr.models.checkpoint import DEGRADATION_KEY, weights_crc

#: v0.4's last run: conf/degradation/robust.yaml with the weights of conf/experiment/robust_v04.yaml.
ROBUST_V04 = {**yaml.safe_load((REPO / "conf" / "degradation" / "robust.yaml").read_text()), "weights": [0.4, 0.6]}


def recording_checkpoint(path: Path, node: dict[str, Any] | None) -> Path:
    """A tiny checkpoint that records ``node`` as its run's degradation (as train.py's RecordDegradation does)."""
    ckpt = torch.load(write_tiny_checkpoint(path), weights_only=True)
    ckpt[DEGRADATION_KEY] = node
    torch.save(ckpt, path)
    return path


def with_record(weights: Path, node: Any, out: Path) -> Path:
    """``weights`` re-saved with ``node`` as its degradation record (checksum recomputed): a stranger's file."""
    with safe_open(str(weights), framework="pt") as handle:
        meta, tensors = dict(handle.metadata()), {k: handle.get_tensor(k) for k in handle.keys()}
    meta["degradation"] = json.dumps(node)
    meta["crc32"] = weights_crc(tensors, meta)
    save_file(tensors, str(out), metadata=meta)
    return out


def assert_robust_v04(degradation: Any) -> None:
    """Bicubic or the randomized acquisition family, 0.4 / 0.6, with robust.yaml's ranges."""
    assert type(degradation) is MixedDegradation
    assert [type(d) for d in degradation.degradations] == [BicubicDegradation, AcquisitionDegradation]
    assert degradation.weights.tolist() == [0.4, 0.6]
    family = degradation.degradations[1]
    assert family.ranges["tip"] == (0.1, 2.0) and family.ranges["drift"] == (0.0, 0.25)
    assert family.prob == {"tip": 0.3, "lag": 0.0, "retrace": 0.5}


def test_a_training_run_records_its_degradation_through_export(tmp_path: Path) -> None:
    """train.py -> checkpoint -> export -> load: the run's degradation node arrives in ``info`` and the pairs."""
    tiny = ["debug=tiny", "model.depth=2", "model.width=4", "dataset=mono", "dataset.materials.ceramic.n_images=5",
            "dataset.materials.ceramic.n_px=48", "test=false", "logger=none", "degradation=robust",
            "degradation.weights=[0.4,0.6]"]
    ckpt = train_in_process(tiny, tmp_path) / "checkpoints" / "last.ckpt"
    exported = export_weights(ckpt, tmp_path / "w.safetensors")
    with safe_open(str(exported), framework="pt") as handle:
        assert json.loads(handle.metadata()["degradation"]) == ROBUST_V04
    model = load_model(exported)
    assert model.info.degradation == ROBUST_V04 and "degradation" not in model.info.extra
    assert_robust_v04(pair_degradation("trained", model))


def test_export_keeps_the_record_and_takes_an_override(tmp_path: Path) -> None:
    """Re-exporting keeps the record (and everything else); ``degradation=`` replaces it, checked before writing."""
    first = export_weights(recording_checkpoint(tmp_path / "r.ckpt", ROBUST_V04), tmp_path / "a.safetensors",
                           extra_metadata={"release": "test"}, gains={2: {"psnr": 0.5, "ssim": 0.01}})
    again = load_model(export_weights(first, tmp_path / "b.safetensors"))
    assert again.info.degradation == ROBUST_V04 and again.info.extra == {"release": "test"}
    assert again.info.gains == {2: {"psnr": 0.5, "ssim": 0.01}}
    bicubic = {"_target_": "afm_sr.degrade.BicubicDegradation"}
    override = load_model(export_weights(first, tmp_path / "c.safetensors", degradation=bicubic))
    assert override.info.degradation == bicubic
    assert type(pair_degradation("trained", override)) is BicubicDegradation
    with pytest.raises(InputError, match=r"'os\.system' is not a degradation"):
        export_weights(first, tmp_path / "d.safetensors", degradation={"_target_": "os.system", "command": "true"})
    assert not (tmp_path / "d.safetensors").exists()
    with pytest.raises(AFMFileError, match="reserved"):
        export_weights(first, tmp_path / "e.safetensors", extra_metadata={"degradation": "bicubic"})


def test_the_packaged_model_records_its_last_runs_degradation() -> None:
    model = load_model("default")
    assert model.info.degradation == ROBUST_V04 and model.info.extra["release"] == "v0.4"
    assert_robust_v04(pair_degradation("trained", model))


@pytest.mark.parametrize(("node", "message"), [
    ({"_target_": "os.system", "command": "touch pwned"}, "'os.system' is not a degradation afm-sr builds"),
    ({"_target_": "afm_sr.degrade.MixedDegradation",
      "degradations": [{"_target_": "afm_sr_never_imported.payload"}]}, "is not a degradation afm-sr builds"),
    ({"_target_": "afm_sr.degrade.ScanDegradation", "_partial_": True}, "bad arguments"),
    ({"_target_": "afm_sr.degrade.MixedDegradation", "degradations": [1, 2]}, "bad arguments"),
    ({"_target_": "afm_sr.degrade.acquisition.FixedAcquisition", "tip": "steep"}, "bad arguments"),
    ({"weights": [1]}, "a mapping with a _target_"),
])
def test_a_foreign_record_is_one_clear_error_and_runs_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               node: dict[str, Any], message: str) -> None:
    monkeypatch.chdir(tmp_path)
    weights = with_record(export_weights(write_tiny_checkpoint(tmp_path / "t.ckpt"), tmp_path / "t.safetensors"),
                          node, tmp_path / "stranger.safetensors")
    model = load_model(weights)  # enhancing never needs the record
    for run in (lambda: pair_degradation("trained", model),
                lambda: adapt(model, surface(96), 4, steps=1, pairs="trained", device="cpu")):
        with pytest.raises(AFMFileError, match=re.escape(message)) as err:
            run()
        assert "stranger.safetensors" in str(err.value) and "training degradation record" in str(err.value)
    assert "afm_sr_never_imported" not in sys.modules and not (tmp_path / "pwned").exists()


def test_a_record_that_is_not_a_mapping_is_refused_on_load(tmp_path: Path) -> None:
    weights = export_weights(write_tiny_checkpoint(tmp_path / "t.ckpt"), tmp_path / "t.safetensors")
    with pytest.raises(AFMFileError, match="not a mapping"):
        load_model(with_record(weights, ["bicubic"], tmp_path / "list.safetensors"))


def test_weights_without_a_record_fall_back_to_v02s_mix(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Files of v0.1-v0.3 (and checkpoints of runs before the record) keep today's trained pairs, and say so."""
    model = load_model(export_weights(write_tiny_checkpoint(tmp_path / "old.ckpt"), tmp_path / "old.safetensors"))
    assert model.info.degradation is None
    with caplog.at_level(logging.INFO, logger="afm_sr.infer.adapt"):
        fallback = pair_degradation("trained", model)
    assert type(fallback) is MixedDegradation and fallback.weights.tolist() == [1.0, 1.0]  # half each
    assert [type(d) for d in fallback.degradations] == [BicubicDegradation, ScanDegradation]
    assert "records no training degradation" in caplog.text and "old.safetensors" in caplog.text
    assert type(pair_degradation("bicubic", model)) is BicubicDegradation


def test_cli_export_takes_a_degradation_file_or_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = write_tiny_checkpoint(tmp_path / "t.ckpt")
    robust = REPO / "conf" / "degradation" / "robust.yaml"
    assert main(["export", str(ckpt), str(tmp_path / "a.safetensors"), "--degradation", str(robust)]) == 0
    assert load_model(tmp_path / "a.safetensors").info.degradation == yaml.safe_load(robust.read_text())
    inline = '{"_target_": "afm_sr.degrade.BicubicDegradation"}'
    assert main(["export", str(ckpt), str(tmp_path / "b.safetensors"), "--degradation", inline]) == 0
    assert load_model(tmp_path / "b.safetensors").info.degradation == json.loads(inline)
    capsys.readouterr()
    assert main(["export", str(ckpt), str(tmp_path / "c.safetensors"), "--degradation",
                 '{"_target_": "builtins.eval"}']) == 2
    assert "'builtins.eval' is not a degradation afm-sr builds" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["export", str(ckpt), str(tmp_path / "d.safetensors"), "--degradation", str(tmp_path / "missing.yaml")])
    assert "cannot be read as YAML or JSON" in capsys.readouterr().err
