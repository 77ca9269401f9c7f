"""afm_sr.infer.tiling's memory estimate: the probe's live-tensor peak against the peak a process really reaches."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from support import REPO

from afm_sr.infer import tiling
from afm_sr.models import VDSR, MultiScaleResNet

#: What the estimate leaves to the runtime (kernels, their caches; the memory budget does not count them either).
RUNTIME = 64 << 20
#: Output pixels of each measured forward: large enough that the activations dwarf the runtime's share.
OUT_PX = 1024 * 1024

#: Run in a fresh process: the peak RSS (VmHWM, reset just before; getrusage's ru_maxrss would carry the parent's
#: peak over fork and exec) that one forward adds to the RSS before it.
MEASURE = """
import json, sys, torch
import afm_sr.models
torch.set_num_threads(1)
torch.manual_seed(0)

def kib(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":")) * 1024

net = getattr(afm_sr.models, sys.argv[1])(**json.loads(sys.argv[2])).to(memory_format=torch.channels_last).eval()
s, n = int(sys.argv[3]), int(sys.argv[4])
with torch.inference_mode():
    net.residual(torch.zeros(1, 1, 16, 16).contiguous(memory_format=torch.channels_last), s)  # kernels loaded
    lr = torch.randn(1, 1, n, n).contiguous(memory_format=torch.channels_last)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # the peak RSS (VmHWM) restarts from the RSS now
    before = kib("VmRSS")
    out = net.residual(lr, s)
    peak = kib("VmHWM")
print(json.dumps(peak - before))
"""


def test_live_peak_counts_what_is_alive_at_once() -> None:
    x = torch.ones(1000)  # 4000 B, counted as the input

    def run() -> torch.Tensor:
        a = x * 2  # 4000 B alive with x
        b = a + 1  # and 4000 more: the peak, 12 000 B
        del a
        return b.relu_()  # in place: no new storage

    assert tiling.live_peak(run, [x], []) == 12000
    assert tiling.live_peak(lambda: x[:10].clone(), [], [x]) == 40  # views of ignored tensors are not counted


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="measures the peak RSS through Linux's /proc")
@pytest.mark.parametrize(("arch", "kwargs", "scale"), [
    *(("MultiScaleResNet", {"blocks": 2}, s) for s in (2, 4, 8)), ("VDSR", {"depth": 3, "width": 32}, 4)])
def test_estimate_covers_the_measured_peak_and_is_not_far_above(arch: str, kwargs: dict[str, int], scale: int) -> None:
    """Never below what a forward really holds (it must not plan a run that runs out of memory), at most 1.3x it."""
    n = math.isqrt(OUT_PX) // scale
    run = subprocess.run([sys.executable, "-c", MEASURE, arch, json.dumps(kwargs), str(scale), str(n)], cwd=REPO,
                         check=True, capture_output=True, text=True, timeout=600)
    measured = json.loads(run.stdout)
    net = {"VDSR": VDSR, "MultiScaleResNet": MultiScaleResNet}[arch](**kwargs)
    estimate = tiling.activation_bytes(net, scale) * (n * scale) ** 2
    assert measured <= estimate + RUNTIME, (measured, estimate)
    assert estimate <= 1.3 * measured, (measured, estimate)



def _split_net() -> MultiScaleResNet:
    """A small split network with a residual to carry (MultiScaleResNet starts as exact bicubic)."""
    torch.manual_seed(0)
    net = MultiScaleResNet(blocks=2, width=16, tail_width=8).eval()
    for m in net.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.normal_(m.weight, std=0.1)
    return net


def test_a_split_network_runs_its_body_once_and_cuts_only_the_upsampling() -> None:
    """Under a memory bound that a fused pass meets only in many tiles, the body runs once over the whole image, the
    upsampling in strips that repeat a few pixels, the result equals the untiled one, and the plan's peak covers
    what its operators hold (the pipeline counts the output's OUTPUT_BYTES per pixel beside it)."""
    from afm_sr.infer.pipeline import OUTPUT_BYTES

    net, s = _split_net(), 8
    lr = np.random.default_rng(0).standard_normal((96, 96)).astype(np.float32)
    memory = int(lr.size * s * s * tiling.activation_bytes(net, s) / 4)
    work = tiling.plan(net, lr.shape, s, "auto", memory=memory)
    fused = tiling.plan_tiles(tiling.exact_margin(net, s), lr.shape, s, "auto", tiling.activation_bytes(net, s), memory)
    assert work.features is not None and len(work.features) == 1 and len(work.tiles) > 1
    assert sum(t.read_px for t in work.tiles) < 1.5 * lr.size < 3 * lr.size < sum(t.read_px for t in fused)
    assert work.peak <= memory
    with torch.inference_mode():
        whole = tiling.tiled_sr(net, lr, lr.astype(np.float64), s, 1.0, tile=None)
        held = tiling.live_peak(lambda: tiling.tiled_sr(net, lr, lr.astype(np.float64), s, 1.0, tile=work), [],
                                list(net.parameters()))
        tiled = tiling.tiled_sr(net, lr, lr.astype(np.float64), s, 1.0, tile=work)
    assert np.abs(tiled - whole).max() < 1e-5 * np.abs(whole).max()
    assert held <= work.peak + OUTPUT_BYTES * lr.size * s * s


def test_a_feature_map_over_the_memory_bound_falls_back_to_fused_tiles() -> None:
    net, s = _split_net(), 2
    shape = (64, 64)
    feature_map = net.feature_channels * shape[0] * shape[1] * 4
    assert tiling.plan(net, shape, s, "auto", memory=feature_map - 1).features is None
    assert tiling.plan(net, shape, s, "auto", memory=4 * feature_map).features is not None
