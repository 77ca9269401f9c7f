"""afm_sr.infer: safe weights loading, tiled == untiled, meters and scan size kept, outliers kept, gain check."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import afm_sr
import afm_sr.infer.tiling as tiling
import afm_sr.infer.weights as weights
import afm_sr.io as io
from afm_sr.degrade import imresize
from afm_sr.degrade.acquisition import FixedAcquisition
from afm_sr.errors import AFMFileError, AFMSRError, InputError
from afm_sr.infer import (
    SRModel,
    check_gain,
    enhance,
    export_weights,
    load_model,
    resolve_device,
    resolve_precision,
)
from afm_sr.io import HeightMap
from afm_sr.models import VDSR
from afm_sr.preprocess import fit_normalization

SAMPLES = Path(os.environ.get("AFM_SR_SAMPLES", Path(__file__).resolve().parents[1].parent / "shared" / "afm-samples"))


def write_tiny_checkpoint(path: Path, depth: int = 4, width: int = 8, scales: Sequence[int] = (2, 4, 8),
                          seed: int = 0, **record: Any) -> Path:
    """A checkpoint laid out like train.py's (net.body.* + metric buffers + 'afm_sr' record), tiny VDSR."""
    torch.manual_seed(seed)
    state = {f"net.{k}": v for k, v in VDSR(depth, width).state_dict().items()}
    state["val_metrics.psnr_x2.mean_value"] = torch.tensor(0.0)
    arch = {"arch": "VDSR", "scales": list(scales), "depth": depth, "width": width, "channels": 1, **record}
    torch.save({"state_dict": state, "afm_sr": arch, "epoch": 1, "global_step": 10}, path)
    return path


@pytest.fixture
def tiny_ckpt(tmp_path: Path) -> Path:
    return write_tiny_checkpoint(tmp_path / "tiny.ckpt")


def surface(n: int = 64, seed: int = 0) -> np.ndarray:
    """A smooth random surface of a few nm, like a leveled AFM scan."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:n, 0:n] / n
    bumps = sum(rng.normal() * np.sin(2 * np.pi * (rng.integers(1, 6) * x + rng.integers(1, 6) * y + rng.random()))
                for _ in range(6))
    return 1e-9 * (bumps + 0.1 * rng.standard_normal((n, n)))


@pytest.mark.parametrize("suffix", [".gwy", ".npy"])
@pytest.mark.parametrize("scale", [2, 4])
def test_enhance_written_file_end_to_end(tmp_path: Path, tiny_ckpt: Path, suffix: str, scale: int) -> None:
    src = io.write(HeightMap(surface(48), (2e-8, 2.5e-8), channel="Height"), tmp_path / f"scan{suffix}")
    hm = io.read(src)
    out = enhance(hm, scale=scale, model=tiny_ckpt, device="cpu")
    assert out.shape == (48 * scale, 48 * scale)
    np.testing.assert_allclose(out.scan_size, hm.scan_size, rtol=1e-12)
    assert out.pixel_size == pytest.approx((2e-8 / scale, 2.5e-8 / scale))
    assert out.z_unit == "m" and out.channel == "Height" and np.isfinite(out.data).all()
    assert 0.1 < out.data.std() / hm.data.std() < 10  # meters, not z-scores (1e9 times larger)
    back = io.read(io.write(out, tmp_path / f"scan_x{scale}{suffix}"))
    assert back.shape == out.shape and back.scan_size == pytest.approx(hm.scan_size)


def test_tiled_equals_untiled_on_512(tiny_ckpt: Path) -> None:
    lr = surface(512, seed=1)
    model = load_model(tiny_ckpt)
    tiled = enhance(lr, scale=2, model=model, device="cpu", tile=256, batch=3).data
    untiled = enhance(lr, scale=2, model=model, device="cpu", tile=None).data
    norm = fit_normalization(lr)  # the reference, computed here without the tiling code
    with torch.inference_mode():
        z_up = imresize(torch.from_numpy(norm.apply(lr).astype(np.float32))[None, None], scale=2)
        residual = model.net.body(z_up)[0, 0].double().numpy()
    reference = imresize(torch.from_numpy(lr), scale=2).numpy() + norm.std * residual
    assert np.abs(tiled - untiled).max() / norm.std < 1e-5
    assert np.abs(tiled - reference).max() / norm.std < 1e-5


def test_tiling_needs_its_margin(tiny_ckpt: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a margin smaller than the receptive field, seams show: the equality test above can fail."""
    lr = surface(128, seed=2)
    model = load_model(tiny_ckpt)
    untiled = enhance(lr, scale=2, model=model, device="cpu", tile=None).data
    monkeypatch.setattr(tiling, "exact_margin", lambda depth, scale: 1)
    tiled = enhance(lr, scale=2, model=model, device="cpu", tile=96).data
    assert np.abs(tiled - untiled).max() / lr.std() > 1e-3


def test_outliers_survive_in_meters(tiny_ckpt: Path) -> None:
    data = surface(64)
    spike = 50 * data.std()
    data[30, 30] = spike
    hi = np.percentile(data, 97.5)
    out = enhance(HeightMap(data, (1e-8, 1e-8)), scale=2, model=tiny_ckpt, device="cpu").data
    peak = out[56:66, 56:66].max()  # the spike's neighbourhood at x2
    assert peak > 0.5 * spike > 10 * hi


def test_array_input_and_lazy_api(tiny_ckpt: Path) -> None:
    out = afm_sr.enhance(surface(32), scale=2, model=tiny_ckpt, pixel_size=1e-8, device="cpu")
    assert afm_sr.enhance is enhance
    assert isinstance(out, HeightMap) and out.pixel_size == (5e-9, 5e-9)
    assert out.scan_size == pytest.approx((3.2e-7, 3.2e-7))
    assert enhance(surface(32), scale=2, model=tiny_ckpt, device="cpu").metadata["pixel_size_unknown"]


def test_import_afm_sr_is_cheap() -> None:
    code = "import sys, afm_sr; assert 'torch' not in sys.modules and 'afm_sr.infer' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_scale_validation(tmp_path: Path, tiny_ckpt: Path) -> None:
    with pytest.raises(InputError, match="scale 3 is not supported"):
        enhance(surface(32), scale=3, model=tiny_ckpt)
    with pytest.raises(InputError, match="too small for scale 8"):
        enhance(surface(32)[:10, :10], scale=8, model=tiny_ckpt)
    only_x2 = write_tiny_checkpoint(tmp_path / "x2.ckpt", scales=[2])
    with pytest.raises(InputError, match=r"trained for scales \[2\], not x4"):
        enhance(surface(32), scale=4, model=only_x2)


def test_device_and_precision_validation() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(InputError, match="'tpu' is not supported"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="sees no CUDA GPU"):
            resolve_device("cuda")
    with pytest.raises(InputError, match="precision '16'"):
        resolve_precision("16", torch.device("cpu"))


def test_bf16_is_close_to_fp32(tiny_ckpt: Path) -> None:
    lr = surface(64)
    fp32 = enhance(lr, scale=2, model=tiny_ckpt, device="cpu").data
    bf16 = enhance(lr, scale=2, model=tiny_ckpt, device="cpu", precision="bf16").data
    assert np.abs(bf16 - fp32).max() < 0.1 * lr.std()


class _Touch:
    """Unpickling this (weights_only=False) opens ``path`` for writing, i.e. creates the file."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return (open, (self.path, "w"))


def test_loading_never_unpickles_objects(tmp_path: Path) -> None:
    def payload(target: Path) -> Path:
        ckpt = write_tiny_checkpoint(tmp_path / f"{target.name}.ckpt")
        content = torch.load(ckpt, weights_only=True)
        content["hyper_parameters"] = _Touch(target)
        torch.save(content, ckpt)
        return ckpt

    proof = tmp_path / "proof"
    torch.load(payload(proof), weights_only=False)  # the payload works when unpickled naively...
    assert proof.exists()
    pwned = tmp_path / "pwned"
    with pytest.raises(AFMFileError, match="weights_only=True") as err:  # ...afm-sr refuses it
        load_model(payload(pwned))
    assert "pwned.ckpt" in str(err.value) and "never unpickles" in str(err.value)
    assert not pwned.exists()


@pytest.mark.parametrize("kind", ["ckpt", "safetensors"])
def test_truncated_weights_give_a_clear_error(tmp_path: Path, tiny_ckpt: Path, kind: str) -> None:
    good = tiny_ckpt if kind == "ckpt" else export_weights(tiny_ckpt, tmp_path / "w.safetensors")
    broken = tmp_path / f"broken.{kind}"
    broken.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(AFMFileError, match="corrupt") as err:
        load_model(broken)
    assert str(broken) in str(err.value)


def test_foreign_files_give_a_clear_error(tmp_path: Path) -> None:
    text = tmp_path / "notes.ckpt"
    text.write_text("hello")
    with pytest.raises(AFMFileError, match="neither a PyTorch"):
        load_model(text)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(AFMFileError, match="not afm-sr weights"):
        load_model(foreign)
    plain = tmp_path / "plain.ckpt"
    torch.save({"w": torch.zeros(2)}, plain)
    with pytest.raises(AFMFileError, match="not a checkpoint written by afm-sr"):
        load_model(plain)
    with pytest.raises(AFMFileError, match="no such weights file"):
        load_model(tmp_path / "missing.ckpt")


def test_architecture_mismatch_gives_a_clear_error(tmp_path: Path) -> None:
    lying = write_tiny_checkpoint(tmp_path / "lying.ckpt", depth=4, width=8)
    content = torch.load(lying, weights_only=True)
    content["afm_sr"]["depth"] = 6
    torch.save(content, lying)
    with pytest.raises(AFMFileError, match="do not match the architecture it declares") as err:
        load_model(lying)
    assert "lying.ckpt" in str(err.value) and "depth=6" in str(err.value)
    with pytest.raises(AFMFileError, match=r"'afm_sr\.models\.EDSR' is not supported"):
        load_model(write_tiny_checkpoint(tmp_path / "edsr.ckpt", arch="EDSR"))


def test_export_roundtrip_and_gain_warning(tmp_path: Path, tiny_ckpt: Path, caplog: pytest.LogCaptureFixture) -> None:
    exported = export_weights(tiny_ckpt, tmp_path / "w.safetensors", extra_metadata={"steps": 10},
                              gains={2: {"psnr": -0.4, "ssim": -0.01}, 4: {"psnr": 0.7, "ssim": 0.02}})
    assert exported.stat().st_size < 20_000
    model = load_model(exported)
    assert model.info.gains[2]["psnr"] == -0.4 and model.info.extra == {"steps": "10"}
    lr = surface(32)
    same = enhance(lr, scale=4, model=tiny_ckpt, device="cpu").data
    with caplog.at_level(logging.WARNING, logger="afm_sr"):
        np.testing.assert_array_equal(enhance(lr, scale=4, model=model, device="cpu").data, same)
        assert not caplog.records
        enhance(lr, scale=2, model=model, device="cpu")
    assert "does not beat bicubic at x2" in caplog.text and "-0.40 dB" in caplog.text
    with pytest.raises(AFMFileError, match="exists"):
        export_weights(tiny_ckpt, exported)
    with pytest.raises(AFMFileError, match="reserved"):
        export_weights(tiny_ckpt, tmp_path / "x.safetensors", extra_metadata={"depth": 3})


def test_check_gain_model_vs_bicubic(tmp_path: Path) -> None:
    ckpt = write_tiny_checkpoint(tmp_path / "zero.ckpt")
    model = load_model(ckpt)
    torch.nn.init.zeros_(model.net.body[-1].weight)  # residual 0: the model *is* bicubic
    hm = HeightMap(surface(70), (1e-8, 1e-8))
    res = check_gain(hm, scale=4, model=model, device="cpu")
    assert res.shape == (68, 68) and res.convention == "range01"
    assert res.psnr_gain == pytest.approx(0.0, abs=1e-6) and res.ssim_gain == pytest.approx(0.0, abs=1e-6)
    assert 15 < res.bicubic_psnr < 60 and 0 < res.bicubic_ssim <= 1
    noisy = check_gain(hm, scale=4, model=load_model(ckpt), device="cpu")  # random residual: worse than bicubic
    assert noisy.psnr_gain < 0 and noisy.bicubic_psnr == pytest.approx(res.bicubic_psnr)


def test_default_model_missing_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(weights, "default_weights_path", lambda: tmp_path / "default.safetensors")
    with pytest.raises(AFMSRError, match="no pretrained model is installed"):
        enhance(surface(32), scale=2)


def test_packaged_default_model_runs() -> None:
    if not weights.default_weights_path().is_file():
        pytest.skip(f"no packaged model at {weights.default_weights_path()} yet")
    model = load_model("default")
    assert isinstance(model, SRModel) and model.info.source == "default" and set(model.info.scales) == {2, 4, 8}
    out = enhance(surface(40), scale=2, model=model, pixel_size=1e-8, device="cpu")
    assert out.shape == (80, 80) and np.isfinite(out.data).all()


def test_real_ibw_at_x2(tiny_ckpt: Path) -> None:
    path = SAMPLES / "SciFiDatasets__IgorIBWReader_P0089OP0027.ibw"
    if not path.is_file():
        pytest.skip(f"real AFM samples not found at {SAMPLES} (set AFM_SR_SAMPLES)")
    hm = io.read(path)
    out = enhance(hm, scale=2, model=tiny_ckpt, device="cpu")
    assert hm.shape == (256, 256) and out.shape == (512, 512)
    assert out.scan_size == pytest.approx((2.008e-6, 2.008e-6), rel=1e-3) and out.z_unit == "m"
    assert out.channel == hm.channel == "HeightRetrace" and np.isfinite(out.data).all()
    assert 1e-9 < np.ptp(out.data) < 1e-6


def _checkpoint_of(net: torch.nn.Module, path: Path) -> Path:
    """A checkpoint laid out as SRModule.on_save_checkpoint writes it (version-2 record)."""
    from afm_sr.models.checkpoint import arch_record

    torch.save({"state_dict": {f"net.{k}": v for k, v in net.state_dict().items()},
                "afm_sr": arch_record(net, (2, 4, 8))}, path)
    return path


@pytest.mark.parametrize("arch", ["vdsr", "msr"])
def test_every_architecture_exports_and_enhances(tmp_path: Path, arch: str) -> None:
    """Checkpoint -> export -> load -> enhance, tiled equal to untiled, for each network of afm_sr.models."""
    from afm_sr.models import MultiScaleResNet

    torch.manual_seed(0)
    net = VDSR(4, 8) if arch == "vdsr" else MultiScaleResNet(blocks=2, width=8, tail_width=4)
    for m in net.modules():  # MultiScaleResNet starts as exact bicubic: give it a residual to carry
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.normal_(m.weight, std=0.1)
    exported = export_weights(_checkpoint_of(net, tmp_path / "a.ckpt"), tmp_path / "a.safetensors")
    model = load_model(exported)
    assert type(model.net) is type(net) and model.info.record.kwargs == net.arch_kwargs
    lr = surface(96, seed=3)
    for s in (2, 4):
        untiled = enhance(lr, scale=s, model=model, device="cpu", tile=None).data
        smallest = tiling.min_tile(tiling.exact_margin(model.net, s), s)  # many tiles, each barely exact
        tiled = enhance(lr, scale=s, model=model, device="cpu", tile=smallest).data
        norm = fit_normalization(lr)
        with torch.inference_mode():
            residual = net.eval().residual(torch.from_numpy(norm.apply(lr)).float()[None, None], s)[0, 0].double()
        reference = imresize(torch.from_numpy(lr), scale=s).numpy() + norm.std * residual.numpy()
        assert np.abs(untiled - reference).max() / norm.std < 1e-4
        assert np.abs(tiled - untiled).max() / norm.std < 1e-5
        assert np.abs(untiled - imresize(torch.from_numpy(lr), scale=s).numpy()).max() / norm.std > 1e-3


def test_v01_safetensors_still_load(tmp_path: Path) -> None:
    """Weights exported by afm-sr 0.1 (arch/depth/width/channels metadata, no _target_) load as VDSR."""
    torch.manual_seed(1)
    net = VDSR(4, 8)
    old = tmp_path / "v01.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(old),
              metadata={"format": "afm-sr", "arch": "VDSR", "depth": "4", "width": "8", "channels": "1",
                        "scales": "[2, 4, 8]", "gains": '{"2": {"psnr": 0.28, "ssim": 0.0085}}', "name": "v0.1"})
    model = load_model(old)
    assert model.info.record.target == "afm_sr.models.VDSR" and model.info.record.kwargs == {
        "depth": 4, "width": 8, "channels": 1}
    assert model.info.gains == {2: {"psnr": 0.28, "ssim": 0.0085}} and model.info.extra == {"name": "v0.1"}
    x = torch.randn(1, 1, 10, 10)
    assert torch.equal(model.net(x, 2), net.eval()(x, 2))
    again = load_model(export_weights(old, tmp_path / "v02.safetensors"))  # re-exported in the new format
    assert again.info.record == model.info.record and torch.equal(again.net(x, 4), model.net(x, 4))


def test_check_gain_records_the_scan_under_the_asked_acquisition():
    rng = np.random.default_rng(0)
    hm = HeightMap(rng.standard_normal((64, 64)).cumsum(0).cumsum(1) * 1e-9, (1e-8, 1e-8))
    paper = check_gain(hm, scale=2)
    boxed = check_gain(hm, scale=2, degradation=FixedAcquisition(fast_width=1.0))
    noisy = [check_gain(hm, scale=2, degradation=FixedAcquisition(white=0.05), seed=k).bicubic_psnr for k in (0, 0, 1)]
    assert boxed.bicubic_psnr != paper.bicubic_psnr
    assert noisy[0] == noisy[1] != noisy[2]


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_float32_assembly_keeps_the_detail_under_a_large_offset(scale: int) -> None:
    """Heights 5 um above zero with nm detail, the shipped network, whole image and 3 x 3 tiles: the float32
    bicubic of (heights - mean) plus the mean in float64 equals the old float64 path to float32 rounding of the
    detail, where a float32 bicubic of the heights themselves would not."""
    lr = 5e-6 + surface(48, seed=scale)
    model = load_model()
    norm = fit_normalization(lr)
    with torch.inference_mode():
        z = torch.from_numpy(norm.apply(lr).astype(np.float32))[None, None]
        residual = model.net.residual(z, scale)[0, 0].double().numpy()
    reference = imresize(torch.from_numpy(lr), scale=scale).numpy() + norm.std * residual  # the old path
    rounding = 8 * np.finfo(np.float32).eps * np.abs(lr - lr.mean()).max()
    nine = (2 * tiling.halo(tiling.exact_margin(model.net, scale), scale) + 16) * scale  # 3 x 3 cores of 16 px
    for tile in (None, "auto", nine):
        out = enhance(lr, scale=scale, model=model, device="cpu", tile=tile, adapt=False, self_check=False).data
        assert np.abs(out - reference).max() < rounding, tile
    naive = imresize(torch.from_numpy(lr).float(), scale=scale).double().numpy() + norm.std * residual
    assert np.abs(naive - reference).max() > 100 * rounding
