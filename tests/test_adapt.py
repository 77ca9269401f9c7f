"""afm_sr.adapt: the base model is never changed, seeded runs repeat, held-out lines never train, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from test_infer import _checkpoint_of, surface

import afm_sr
import afm_sr.infer.adapt as adapt_module
import afm_sr.io as io
from afm_sr.cli import main
from afm_sr.errors import InputError
from afm_sr.infer import SRModel, enhance, load_model
from afm_sr.infer.adapt import adapt, pair_regions, self_check
from afm_sr.io import HeightMap
from afm_sr.models import MultiScaleResNet


@pytest.fixture
def model(tmp_path: Path) -> SRModel:
    """A tiny MultiScaleResNet with a non-zero residual (one tail per scale)."""
    torch.manual_seed(0)
    net = MultiScaleResNet(blocks=1, width=8, tail_width=4)
    for m in net.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.normal_(m.weight, std=0.05)
    return load_model(_checkpoint_of(net, tmp_path / "msr.ckpt"))


def _state(model: SRModel) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.net.state_dict().items()}


def test_adapt_never_changes_the_model_and_repeats_for_a_seed(model: SRModel) -> None:
    before = _state(model)
    scan = surface(96, seed=1)
    runs = [adapt(model, scan, 2, steps=12, batch=4, seed=7, device="cpu") for _ in range(2)]
    assert all(torch.equal(before[k], v) for k, v in model.net.state_dict().items())
    assert runs[0].check == runs[1].check and runs[0].check.adapted_psnr is not None
    for a, b in zip(runs[0].model.net.parameters(), runs[1].model.net.parameters(), strict=True):
        assert torch.equal(a, b)
    other = adapt(model, scan, 2, steps=12, batch=4, seed=8, device="cpu")
    assert other.check.adapted_psnr != runs[0].check.adapted_psnr
    if runs[0].check.used == "adapted":
        assert runs[0].model.net is not model.net


def test_only_this_scales_parameters_are_adapted(model: SRModel) -> None:
    """``params='auto'`` trains tails.<s>.* alone: the body and the other scales' tails stay the base's."""
    result = adapt(model, surface(96, seed=2), 2, steps=10, batch=4, lr=1e-2, params="auto", device="cpu")
    new = dict(result.model.net.named_parameters())
    for name, p in model.net.named_parameters():
        if not name.startswith("tails.2."):
            assert torch.equal(p, new[name])


@pytest.mark.parametrize(("side", "scale"), [(100, 2), (75, 4)])
def test_held_out_lines_never_feed_training(model: SRModel, monkeypatch: pytest.MonkeyPatch, side: int,
                                            scale: int) -> None:
    seen: list[torch.Tensor] = []
    pool = adapt_module._pool
    monkeypatch.setattr(adapt_module, "_pool", lambda hr, *a: seen.append(hr) or pool(hr, *a))
    scan = surface(side, seed=3)
    regions = pair_regions(scan.shape, scale)
    assert regions.train.stop <= regions.check.start and regions.check.stop <= scan.shape[0]
    assert (regions.check.stop - regions.check.start) % scale == 0 and regions.train.stop % scale == 0
    scan[regions.check] += 1e-6  # a tall plateau only on the held-out lines
    result = adapt(model, scan, scale, steps=2, batch=2, device="cpu")
    z = adapt_module.fit_normalization(scan).apply(scan)
    assert len(seen) == 1 and seen[0].shape[0] == regions.train.stop
    np.testing.assert_array_equal(seen[0].numpy(), z[regions.train, : side // scale * scale])
    assert str(regions.check.start) in result.check.region


@pytest.mark.parametrize(("scan", "message"), [
    (surface(20), "too small to adapt"),
    (np.full((64, 64), np.nan), "NaN"),
    (np.ones((64, 64)), "constant"),
])
def test_bad_inputs_are_clear(model: SRModel, scan: np.ndarray, message: str) -> None:
    with pytest.raises(InputError, match=message):
        adapt(model, scan, 2, steps=1, device="cpu")


def test_self_check_assumes_an_instrument_and_says_so(model: SRModel) -> None:
    """Default pairs average each pixel along the fast axis (the benchmark's box), named in the message."""
    scan = surface(64, seed=3)
    inst, bic = (self_check(model, scan, 4, device="cpu", pairs=p) for p in ("instrument", "bicubic"))
    assert self_check(model, scan, 4, device="cpu") == inst and inst.pairs == "instrument"
    assert "along the fast axis" in inst.message() and "bicubic downscaling" in bic.message()
    assert inst.bicubic_psnr != pytest.approx(bic.bicubic_psnr, abs=0.01)
    with pytest.raises(InputError, match="self-check pairs 'gauss' must be one of 'instrument', 'bicubic'"):
        self_check(model, scan, 4, pairs="gauss")
    out = enhance(HeightMap(scan, (1e-8, 1e-8)), 4, model, device="cpu", check_pairs="bicubic")
    assert out.metadata["afm_sr_self_check_pairs"] == "bicubic"
    assert out.metadata["afm_sr_estimated_gain_db"] == pytest.approx(bic.gain, abs=0.005)


def test_enhance_stores_the_self_check(model: SRModel) -> None:
    """x4 checks the whole scan; x2 (where the check costs 1/4 of the enhancement) the middle 40 % of its lines."""
    out = enhance(HeightMap(surface(64), (1e-8, 1e-8)), 2, model, device="cpu")
    check = self_check(model, surface(64), 2, device="cpu", lines=0.4)
    assert out.metadata["afm_sr_estimated_gain_db"] == pytest.approx(check.gain, abs=0.005)
    assert out.metadata["afm_sr_self_check"].startswith("self-check x2 on the own pairs of the middle 26 of 64 scan")
    whole = enhance(HeightMap(surface(64), (1e-8, 1e-8)), 4, model, device="cpu")
    expected = self_check(model, surface(64), 4).gain
    assert whole.metadata["afm_sr_estimated_gain_db"] == pytest.approx(expected, abs=0.005)
    assert whole.metadata["afm_sr_self_check"].startswith("self-check x4 on the whole scan")
    tiny = enhance(surface(12), 4, model, device="cpu")  # too small for a self-check: enhanced anyway
    assert "afm_sr_self_check" not in tiny.metadata and afm_sr.adapt is adapt


@pytest.mark.default_adaptation
def test_default_adapts_nowhere(model: SRModel) -> None:
    assert adapt_module.ADAPT_BY_DEFAULT == {2: False, 4: False, 8: False}  # it lost on real zoom pairs (issue 21)
    scan = HeightMap(surface(64), (1e-8, 1e-8))
    assert enhance(scan, 2, model, device="cpu").metadata["afm_sr_self_check"].startswith(
        "self-check x2 on the own pairs of the middle")  # the self-check, no adaptation


@pytest.mark.default_adaptation
def test_a_default_adaptation_falls_back_on_small_scans(model: SRModel, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(adapt_module.ADAPT_BY_DEFAULT, 2, True)
    scan = HeightMap(surface(64), (1e-8, 1e-8))
    assert enhance(scan, 2, model, device="cpu").metadata["afm_sr_self_check"].startswith("self-check x2 on held-out")
    assert enhance(scan, 4, model, device="cpu").metadata["afm_sr_self_check"].startswith("self-check x4 on the whole")
    small = enhance(HeightMap(surface(24), (1e-8, 1e-8)), 2, model, device="cpu")  # too small to hold lines out
    assert small.metadata["afm_sr_self_check"].startswith("self-check x2 on the own pairs of the middle 16 of 24")
    with pytest.raises(InputError, match="too small to adapt"):
        enhance(HeightMap(surface(24), (1e-8, 1e-8)), 2, model, device="cpu", adapt=True)


def test_pairs_choose_the_degradation(model: SRModel) -> None:
    scan = surface(96, seed=2)
    bicubic = adapt(model, scan, 2, steps=3, pairs="bicubic", device="cpu", seed=0)
    trained = adapt(model, scan, 2, steps=3, pairs="trained", device="cpu", seed=0)
    assert bicubic.check.adapted_psnr != trained.check.adapted_psnr
    with pytest.raises(InputError, match="one of 'bicubic', 'trained'"):
        adapt(model, scan, 2, steps=1, pairs="gaussian", device="cpu")  # type: ignore[arg-type]


def test_cli_adapt_end_to_end(model: SRModel, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = io.write(HeightMap(surface(64), (1e-8, 1e-8), channel="Height"), tmp_path / "scan.npy")
    weights = model.info.source
    out = tmp_path / "out.npy"
    assert main(["enhance", str(src), "--scale", "2", "--model", weights, "--device", "cpu", "--adapt", "-o",
                 str(out), "--preview"]) == 0
    text = capsys.readouterr().out
    assert "self-check x2 on held-out rows" in text and (tmp_path / "out_preview.png").is_file()
    assert io.read(out).shape == (128, 128)
    assert main(["check-gain", str(src), "--scale", "2", "--model", weights, "--device", "cpu", "--adapt"]) == 0
    assert "estimated" in capsys.readouterr().out


def test_estimate_counts_a_share_of_the_held_out_gain() -> None:
    check = adapt_module.SelfCheck(2, "held-out rows", bicubic_psnr=30.0, base_psnr=31.0, adapted_psnr=33.0, steps=20,
                                   whole_gain=0.8)
    assert check.used == "adapted"
    assert check.gain == pytest.approx(0.8 + adapt_module.ADAPT_CREDIT * 2.0)
    worse = adapt_module.SelfCheck(2, "held-out rows", 30.0, 31.0, 30.5, 20, whole_gain=-0.2)
    assert worse.used == "base" and worse.gain == pytest.approx(-0.2)
    assert "neither model beats bicubic" in worse.message()
