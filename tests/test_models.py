import pytest
import torch

from afm_sr.errors import ConfigError
from afm_sr.models import VDSR


def test_vdsr_layout_matches_paper():
    net = VDSR()
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    relus = [m for m in net.modules() if isinstance(m, torch.nn.ReLU)]
    assert len(convs) == 20 and len(relus) == 19
    assert convs[0].in_channels == 1 and convs[-1].out_channels == 1
    assert all(c.kernel_size == (3, 3) for c in convs)
    assert all(c.out_channels == 64 for c in convs[:-1])


def test_output_shape_any_size():
    net = VDSR(depth=4, width=8)
    for h, w in [(41, 41), (17, 30)]:
        assert net(torch.randn(2, 1, h, w)).shape == (2, 1, h, w)


def test_global_residual_identity_when_last_conv_zero():
    net = VDSR(depth=3, width=4)
    last = net.body[-1]
    torch.nn.init.zeros_(last.weight)
    torch.nn.init.zeros_(last.bias)
    x = torch.randn(1, 1, 12, 12)
    assert torch.equal(net(x), x)


def test_kaiming_init_scale():
    net = VDSR(depth=3, width=64)
    w = net.body[2].weight  # middle conv, fan_out = 64 * 9
    assert abs(w.std().item() - (2 / (64 * 9)) ** 0.5) < 0.01
    assert torch.count_nonzero(net.body[2].bias) == 0


@pytest.mark.parametrize("kwargs", [{"depth": 0}, {"depth": 1}, {"width": 0}])
def test_bad_architecture_is_a_clear_error(kwargs):
    with pytest.raises(ConfigError, match="model"):
        VDSR(**kwargs)
