from functools import partial
from pathlib import Path

import pytest
import torch

from afm_sr.errors import AFMFileError, ConfigError
from afm_sr.infer.weights import default_weights_path
from afm_sr.models import VDSR, MultiScaleResNet
from afm_sr.models.checkpoint import read_weights
from afm_sr.module import SRModule


def _module(**kwargs):
    args = {"net": VDSR(depth=3, width=4), "optimizer": partial(torch.optim.SGD, lr=0.1, momentum=0.9),
            "scheduler": partial(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.1), **kwargs}
    return SRModule(**args)


@pytest.mark.parametrize("lr", [0.1, 0.01, 0.001])
def test_adjustable_clipping_follows_lr(lr):
    module = _module(clip_theta=0.01)
    opt = module.configure_optimizers()["optimizer"]
    opt.param_groups[0]["lr"] = lr
    for p in module.net.parameters():
        p.grad = torch.full_like(p, 100.0)
    module.net.body[0].weight.grad.view(-1)[0] = -100.0
    module.configure_gradient_clipping(opt)
    bound = 0.01 / lr
    for p in module.net.parameters():
        assert p.grad.max().item() == pytest.approx(bound)
    assert module.net.body[0].weight.grad.min().item() == pytest.approx(-bound)


def test_clipping_follows_the_scheduler():
    module = _module(clip_theta=0.01)
    cfg = module.configure_optimizers()
    opt, sched = cfg["optimizer"], cfg["lr_scheduler"]["scheduler"]
    opt.step()
    sched.step()  # lr 0.1 -> 0.01, so the bound goes 0.1 -> 1
    for p in module.net.parameters():
        p.grad = torch.full_like(p, 5.0)
    module.configure_gradient_clipping(opt)
    assert all(p.grad.max().item() == pytest.approx(1.0) for p in module.net.parameters())


def test_loss_weighting_balances_scales():
    target = torch.zeros(2, 1, 8, 8)
    bicubic = torch.stack([torch.full((1, 8, 8), 0.1), torch.full((1, 8, 8), 1.0)])
    pred = bicubic / 2  # both samples halve their bicubic error
    plain = _module(loss_weighting="none").loss(pred, target, bicubic)
    balanced = _module(loss_weighting="bicubic", loss_eps=0.0).loss(pred, target, bicubic)
    assert plain.item() == pytest.approx((0.05**2 + 0.5**2) / 2)
    assert balanced.item() == pytest.approx(0.25)


def test_validation_logs_per_scale_beside_bicubic():
    module = _module(scales=[2, 4])
    logged = {}
    module.log = lambda name, value, **kw: logged.__setitem__(name, float(value))
    for s in (2, 4):
        hr = torch.randn(1, 1, 32, 32)
        low = hr[..., ::s, ::s]
        batch = {"low": low, "input": hr + 0.1, "target": hr, "scale": torch.tensor([s]), "index": torch.tensor([0]),
                 "z_range": torch.tensor([[float(hr.min()), float(hr.max())]])}
        module.validation_step(batch, 0)
    module.on_validation_epoch_end()
    for s in (2, 4):
        for key in ("psnr", "ssim", "bicubic_psnr", "bicubic_ssim", "gain_psnr"):
            assert f"val/{key}_x{s}" in logged
    assert logged["val/min_gain_psnr"] == pytest.approx(min(logged["val/gain_psnr_x2"], logged["val/gain_psnr_x4"]))


@pytest.mark.parametrize(("kwargs", "match"), [({"loss_weighting": "l1"}, "loss_weighting"),
                                               ({"clip_theta": 0.0}, "clip_theta"),
                                               ({"scheduler_interval": "hour"}, "scheduler_interval")])
def test_bad_module_config(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        _module(**kwargs)


def test_atomic_checkpoint_io_replaces_in_one_step(tmp_path, monkeypatch):
    from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

    from afm_sr.callbacks import AtomicCheckpointIO

    io = AtomicCheckpointIO()
    target = tmp_path / "last.ckpt"
    io.save_checkpoint({"state_dict": {"w": torch.ones(2)}}, target)
    before = target.read_bytes()

    def write_half_then_die(self, checkpoint, path, storage_options=None):
        Path(path).write_bytes(b"PK\x03\x04 half a checkpoint")
        raise OSError("killed mid-save")

    monkeypatch.setattr(TorchCheckpointIO, "save_checkpoint", write_half_then_die)
    with pytest.raises(AFMFileError, match=r"last\.ckpt: could not write it .*killed mid-save"):
        io.save_checkpoint({"state_dict": {"w": torch.zeros(2)}}, target)
    assert target.read_bytes() == before  # the good checkpoint is untouched
    assert torch.load(target, weights_only=True)["state_dict"]["w"].sum() == 2


def test_compiled_network_keeps_checkpoint_names_and_outputs():
    torch.manual_seed(0)
    eager = _module()
    compiled = _module(net=VDSR(depth=3, width=4), compile=True)
    assert list(compiled.state_dict()) == list(eager.state_dict())
    compiled.load_state_dict(eager.state_dict())
    x = torch.randn(1, 1, 12, 12)
    assert torch.allclose(compiled(x, 2), eager(x, 2), atol=1e-5)


def test_init_weights_start_from_a_weights_file_of_the_same_architecture():
    path = str(default_weights_path())
    net = MultiScaleResNet(blocks=12, width=64, tail_width=32)
    fresh = {k: v.clone() for k, v in net.state_dict().items()}
    SRModule(net, partial(torch.optim.Adam, lr=1e-4), init_weights=path)
    tensors = read_weights(path).tensors
    assert all(torch.equal(net.state_dict()[k], tensors[k].float()) for k in tensors)
    assert not all(torch.equal(fresh[k], net.state_dict()[k]) for k in fresh)
    with pytest.raises(ConfigError, match=r"init_weights .* holds MultiScaleResNet"):
        SRModule(VDSR(depth=3, width=4), partial(torch.optim.Adam, lr=1e-4), init_weights=path)
