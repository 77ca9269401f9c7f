import pytest
import torch

from afm_sr.degrade import imresize
from afm_sr.errors import ConfigError
from afm_sr.models import VDSR, MultiScaleResNet


def test_vdsr_layout_matches_paper():
    net = VDSR()
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    relus = [m for m in net.modules() if isinstance(m, torch.nn.ReLU)]
    assert len(convs) == 20 and len(relus) == 19
    assert convs[0].in_channels == 1 and convs[-1].out_channels == 1
    assert all(c.kernel_size == (3, 3) for c in convs)
    assert all(c.out_channels == 64 for c in convs[:-1])


NETS = {"vdsr": lambda: VDSR(depth=4, width=8), "msr": lambda: MultiScaleResNet(blocks=2, width=8, tail_width=4)}


@pytest.mark.parametrize("arch", NETS)
@pytest.mark.parametrize("scale", [2, 4, 8])
def test_contract_shapes_and_bicubic_plus_residual(arch, scale):
    torch.manual_seed(0)
    net = NETS[arch]()
    for h, w in [(12, 12), (7, 10)]:
        lr = torch.randn(2, 1, h, w)
        out = net(lr, scale)
        assert out.shape == (2, 1, h * scale, w * scale)
        assert torch.allclose(out, imresize(lr, scale=scale) + net.residual(lr, scale), atol=1e-6)


@pytest.mark.parametrize("arch", NETS)
@pytest.mark.parametrize("scale", [2, 4, 8])
def test_receptive_radius_bounds_the_true_reach(arch, scale):
    """An input change reaches no output pixel farther than receptive_radius(scale) (tiling relies on it)."""
    torch.manual_seed(0)
    net = NETS[arch]()
    for m in net.modules():  # zero-initialized tails would hide the reach
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.normal_(m.weight, std=0.3)
    n = 64 // scale + 1
    lr = torch.randn(1, 1, n, n)
    centre = n // 2
    tangent = torch.zeros_like(lr)
    tangent[0, 0, centre, centre] = 1.0  # forward-mode derivative of every output wrt one input pixel
    _, touched = torch.func.jvp(lambda x: net.residual(x, scale), (lr,), (tangent,))
    rows, cols = touched[0, 0].abs().gt(0).nonzero(as_tuple=True)
    lr_hr = centre * scale + (scale - 1) / 2  # the LR pixel's centre on the output grid
    true_reach = max((rows - lr_hr).abs().max().item(), (cols - lr_hr).abs().max().item())
    assert 0 < true_reach <= net.receptive_radius(scale)
    assert net.receptive_radius(scale) <= 2 * true_reach + 4 * scale  # a bound, not a wild overestimate


def test_untrained_multiscale_is_bicubic():
    net = MultiScaleResNet(blocks=1, width=4, tail_width=4)
    lr = torch.randn(1, 1, 9, 9)
    for s in (2, 4, 8):
        assert torch.equal(net.residual(lr, s), torch.zeros(1, 1, 9 * s, 9 * s))


def test_multiscale_refuses_a_scale_without_a_tail():
    with pytest.raises(ConfigError, match="x4"):
        MultiScaleResNet(blocks=1, width=4, scales=(2,))(torch.randn(1, 1, 8, 8), 4)


@pytest.mark.parametrize(("cls", "kwargs"), [(VDSR, {"depth": 10**6}), (VDSR, {"width": 10**6}),
                                             (MultiScaleResNet, {"blocks": -1}), (MultiScaleResNet, {"width": 2**20}),
                                             (MultiScaleResNet, {"scales": (3,)}), (VDSR, {"depth": 2.5})])
def test_limits_refuse_before_allocating(cls, kwargs):
    with pytest.raises(ConfigError, match="model"):
        cls(**kwargs)


def test_global_residual_identity_when_last_conv_zero():
    net = VDSR(depth=3, width=4)
    last = net.body[-1]
    torch.nn.init.zeros_(last.weight)
    torch.nn.init.zeros_(last.bias)
    x = torch.randn(1, 1, 12, 12)
    assert torch.equal(net(x, 2), imresize(x, scale=2))


def test_kaiming_init_scale():
    net = VDSR(depth=3, width=64)
    w = net.body[2].weight  # middle conv, fan_out = 64 * 9
    assert abs(w.std().item() - (2 / (64 * 9)) ** 0.5) < 0.01
    assert torch.count_nonzero(net.body[2].bias) == 0


@pytest.mark.parametrize("kwargs", [{"depth": 0}, {"depth": 1}, {"width": 0}])
def test_bad_architecture_is_a_clear_error(kwargs):
    with pytest.raises(ConfigError, match="model"):
        VDSR(**kwargs)


def test_upsampled_context_replaces_the_crop_bicubic():
    """A training crop's bicubic comes from the whole image: VDSR uses it, the input-grid network needs none."""
    torch.manual_seed(0)
    whole = torch.randn(1, 1, 20, 20)
    crop, up = whole[..., 5:10, 5:10], imresize(whole, scale=8)[..., 40:80, 40:80]
    vdsr, msr = NETS["vdsr"](), NETS["msr"]()
    assert not torch.allclose(imresize(crop, scale=8), up, atol=1e-3)  # the crop's own bicubic differs
    assert torch.equal(vdsr(crop, 8, up), up + vdsr.body(up))
    assert torch.equal(msr(crop, 8, up), up + msr.residual(crop, 8))
