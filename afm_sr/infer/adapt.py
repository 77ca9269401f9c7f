"""Learn from the user's own scan: fine-tune a copy of the model on the scan's own pairs, and estimate its gain.

The scan, downscaled by s (bicubic, or with the degradation the model's weights file records it trained on), next
to the scan itself, is a training pair from exactly the user's instrument, tip and sample (internal learning,
ZSSR; test-time adaptation, MZSR). A stripe of whole scan lines at the bottom of the scan is held out: it never
feeds training, it picks the step count (early stopping), and it gives the *self-check*: bicubic vs the base model
vs the adapted model on the held-out pairs, an estimate of the gain on this very scan. The better of the two models
is used. Only the network contract (``net(lr, s)`` = bicubic + ``net.residual(lr, s)``) and parameter names are
used, never an architecture's internals.
"""

from __future__ import annotations

import copy
import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from afm_sr.choices import ADAPT_PAIRS, CHECK_PAIRS
from afm_sr.degrade import BicubicDegradation, Degradation, MixedDegradation, ScanDegradation, check_scale, imresize
from afm_sr.degrade.acquisition import FixedAcquisition
from afm_sr.degrade.build import build_degradation
from afm_sr.errors import AFMFileError, InputError
from afm_sr.infer.devices import resolve_device, resolve_precision
from afm_sr.infer.tiling import tiled_sr
from afm_sr.infer.weights import SRModel, load_model
from afm_sr.io import HeightMap
from afm_sr.io.heightmap import as_heightmap
from afm_sr.preprocess import fit_normalization, level

#: Random crops per step and their LR side (the shipped model's training context).
DEFAULT_BATCH, PATCH_LR = 8, 24
#: The held-out stripe: this fraction of the scan lines, at least MIN_LR low-resolution rows; checked every
#: CHECK_EVERY steps.
HOLDOUT, MIN_LR, CHECK_EVERY = 0.25, 8, 10
#: Degradations drawn per flip of the training region, and the largest window (HR px a side) each is made of.
DRAWS, POOL_SIDE = 2, 1024
log = logging.getLogger(__name__)
Params = Literal["auto", "all"]
Pairs = Literal["bicubic", "trained"]


@dataclass(frozen=True)
class Recipe:
    """How to adapt at one scale: which parameters, learning rate, Adam steps and how the pairs are degraded."""

    params: Params
    lr: float
    steps: int
    pairs: Pairs


#: The best recipe measured per scale (experiments/adapt/RESULTS.md): all parameters on bicubic pairs at x2;
#: at x4/x8, where no recipe gained on average, the least harmful one (the scale's tail on trained pairs).
RECIPES: dict[int, Recipe] = {2: Recipe("all", 1e-5, 60, "bicubic"), 4: Recipe("auto", 3e-5, 40, "trained"),
                              8: Recipe("auto", 3e-5, 40, "trained")}
#: The share of the held-out lines' gain from adapting that the estimate counts: measured over 20 scans, adapting
#: added +1.69 dB there and +0.37 dB to the true gain (experiments/adapt/RESULTS.md).
ADAPT_CREDIT = 0.25
#: Where ``adapt`` is on by default (``enhance(adapt=None)``, ``afm-sr enhance`` without --adapt/--no-adapt): nowhere.
#: At x2 it raised the mean check-gain on afm-samples by +0.44 dB, but those pairs are bicubic like its own; on
#: real pairs (a scan and a later zoom into it, issue 21) the default x2 adaptation lost -0.18 dB to bicubic (1 of
#: 20 pairs better), the worst setting measured there. Until adapting is shown to help on real pairs it is opt-in.
ADAPT_BY_DEFAULT: dict[int, bool] = {2: False, 4: False, 8: False}
Progress = Callable[[int, int], None]


def training_degradation() -> Degradation:
    """v0.2's training mix (conf/degradation/mixed.yaml), bicubic or scan half each: for weights that record none."""
    return MixedDegradation([BicubicDegradation(), ScanDegradation((0.0, 0.05), (0.0, 0.03), (0.0, 1.0))])


def recorded_degradation(model: SRModel) -> Degradation:
    """The degradation ``model``'s weights file records it trained on, or ``training_degradation()`` where none.

    Files exported before the record existed (v0.1-v0.3) fall back, with an info message; a record naming a class
    outside ``afm_sr.degrade.build.DEGRADATIONS`` or with bad arguments is an AFMFileError naming the file.
    """
    node = model.info.degradation
    if node is None:
        log.info("the model %s records no training degradation: its trained pairs use v0.2's mix (bicubic or scan, "
                 "half each)", model.info.source)
        return training_degradation()
    try:
        return build_degradation(node)
    except ValueError as exc:
        raise AFMFileError(model.info.source, f"its training degradation record is unusable: {exc}") from None


def pair_degradation(pairs: Pairs, model: SRModel) -> Degradation:
    """How the scan is downscaled into its own training pairs: ``bicubic`` or ``trained``.

    ``bicubic`` degrades as check-gain and the self-check do; ``trained`` as ``model`` trained
    (``recorded_degradation``), for scans whose coarser rescans are acquisitions like its training's.
    """
    if pairs == "bicubic":
        return BicubicDegradation()
    if pairs == "trained":
        return recorded_degradation(model)
    raise InputError(f"adaptation pairs {pairs!r} must be one of {', '.join(map(repr, ADAPT_PAIRS))}")


#: What each self-check assumption says a coarser scan of the user's sample is (the message's words).
ASSUMED: dict[str, str] = {
    "instrument": "averages each pixel along the fast axis as a detector does (assumed: one scan cannot tell its "
                  "own acquisition)",
    "bicubic": "relates to yours as bicubic downscaling (a real instrument's coarser scan may gain less)",
}


def check_degradation(pairs: str) -> Degradation:
    """How the self-check downscales the scan into its own pairs: ``instrument`` (default) or ``bicubic``.

    ``instrument``: each coarser pixel the mean over its own width along the fast axis, lines at the pixel centres
    (the benchmark's ``box``). Over the benchmark's five acquisitions of 29 real maps its estimate erred by +0.14 dB
    on average at x2 and -0.20 at x4; bicubic pairs promised +1.02 and +0.60 dB more than the true gain
    (experiments/acquisition/RESULTS.md, "What a scan tells about its acquisition").
    """
    if pairs == "instrument":
        return FixedAcquisition(fast_width=1.0)
    if pairs == "bicubic":
        return BicubicDegradation()
    raise InputError(f"self-check pairs {pairs!r} must be one of {', '.join(map(repr, CHECK_PAIRS))}")


@dataclass(frozen=True)
class PairRegions:
    """The scan's rows (whole scan lines, full width) that feed training, and those held out for the check."""

    train: slice
    check: slice


def pair_regions(shape: tuple[int, int], scale: int, holdout: float = HOLDOUT) -> PairRegions:
    """Split the scan's rows: the top part for training pairs, a bottom stripe (a multiple of s rows) held out.

    Whole scan lines are held out, so a line artefact is never on both sides. InputError where either part would
    be under MIN_LR low-resolution pixels (rows or columns) once downscaled by ``scale``.
    """
    s = check_scale(scale, shape)
    ny, nx = shape
    if not 0 < holdout < 1:
        raise InputError(f"holdout {holdout!r} must be a fraction between 0 and 1")
    need = MIN_LR * s
    check_rows = max(need, round(ny * holdout / s) * s)
    train_rows = (ny - check_rows) // s * s
    if train_rows < need or nx < need:
        raise InputError(f"a {ny}x{nx} px scan is too small to adapt at x{s}: its own pairs need at least "
                         f"{2 * need} rows and {need} columns (use a smaller scale or no adaptation)")
    return PairRegions(slice(0, train_rows), slice(ny - check_rows, ny))


@dataclass(frozen=True)
class SelfCheck:
    """PSNR (dB, range01, border s) on the scan's own pairs: bicubic, the base model, the adapted one.

    Without adaptation the pairs are the whole scan's. With it they are the held-out lines, which also chose the
    step count and share the coarser scale adaptation learned at, so what adapting adds there runs about five times
    the true gain it adds (experiments/adapt/RESULTS.md); the estimate is then ``whole_gain`` (the base model on the
    whole scan's pairs) plus ``ADAPT_CREDIT`` times that.
    """

    scale: int
    region: str
    bicubic_psnr: float
    base_psnr: float
    adapted_psnr: float | None = None
    steps: int = 0
    whole_gain: float | None = None
    pairs: str = "bicubic"

    @property
    def used(self) -> str:
        """``adapted`` where adapting beat the base model on the held-out pairs, else ``base``."""
        adapted = self.adapted_psnr is not None and self.steps > 0 and self.adapted_psnr > self.base_psnr
        return "adapted" if adapted else "base"

    @property
    def gain(self) -> float:
        """Estimated PSNR gain (dB) over bicubic of the model used."""
        added = float(self.adapted_psnr) - self.base_psnr if self.used == "adapted" else 0.0
        base = self.base_psnr - self.bicubic_psnr if self.whole_gain is None else self.whole_gain
        return base + ADAPT_CREDIT * added

    def message(self) -> str:
        """One line for the user: the estimate, which model is used, and plainly when bicubic is not beaten."""
        parts = [f"base {self.base_psnr - self.bicubic_psnr:+.2f} dB"]
        if self.adapted_psnr is not None:
            parts.append(f"adapted ({self.steps} steps) {self.adapted_psnr - self.bicubic_psnr:+.2f} dB")
        head = f"self-check x{self.scale} on {self.region}: vs bicubic {', '.join(parts)}"
        if self.whole_gain is not None:
            head += f"; base on the whole scan's pairs {self.whole_gain:+.2f} dB"
        if self.gain <= 0:
            return (f"{head}; neither model beats bicubic on this scan where a coarser scan {ASSUMED[self.pairs]}: "
                    f"the result may be no better than bicubic")
        return (f"{head}; using the {self.used} model, estimated gain {self.gain:+.2f} dB where a coarser scan "
                f"{ASSUMED[self.pairs]}")

    def metadata(self) -> dict[str, str | float | int]:
        """What the output file keeps (plain numbers and strings, which every writer can store)."""
        out: dict[str, str | float | int] = {"afm_sr_self_check": self.message(),
                                             "afm_sr_estimated_gain_db": round(self.gain, 2),
                                             "afm_sr_model_used": self.used, "afm_sr_self_check_pairs": self.pairs}
        if self.used == "adapted":
            out["afm_sr_adapt_steps"] = self.steps
        return out


@dataclass
class Adapted:
    """The model to use (a copy; the base model is never changed) and the self-check that chose it."""

    model: SRModel
    check: SelfCheck


class _CheckPairs:
    """The held-out HR stripe and its LR (bicubic unless given), scored like ``check_gain`` (range01, clip range)."""

    def __init__(self, hr: np.ndarray, scale: int, z_range: tuple[float, float], device: torch.device,
                 dtype: torch.dtype, degradation: Degradation | None = None) -> None:
        self.scale, self.device, self.dtype = scale, device, dtype
        self.hr = torch.from_numpy(hr)
        self.lr = (degradation or BicubicDegradation()).downscale(self.hr, scale).numpy()
        self.lo, self.span = z_range[0], z_range[1] - z_range[0]

    def psnr(self, restored: torch.Tensor) -> float:
        """PSNR (dB) of a restored stripe against the HR, both mapped to [0, 1] and clamped, border s cropped."""
        b = self.scale
        pred, ref = ((t[b:-b, b:-b] - self.lo) / self.span for t in (restored, self.hr))
        mse = float(((pred.clamp(0, 1) - ref.clamp(0, 1)) ** 2).mean())
        return 10 * math.log10(1.0 / max(mse, 1e-20))

    def bicubic(self) -> float:
        """PSNR of the bicubic upscaling."""
        return self.psnr(imresize(torch.from_numpy(self.lr), size=tuple(self.hr.shape)))

    def model(self, net: torch.nn.Module) -> float:
        """PSNR of ``net`` (tiled, so a long stripe of a large scan fits)."""
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.dtype == torch.bfloat16):
            out = tiled_sr(net, self.lr.astype(np.float32), self.lr, self.scale, 1.0, batch=1, device=self.device)
        return self.psnr(torch.from_numpy(out))


def _trainable(net: torch.nn.Module, scale: int, params: Params) -> list[tuple[str, torch.nn.Parameter]]:
    """Parameters to adapt: ``auto`` this scale's own (``tails.<s>.*``) where the network has them, else all."""
    named = list(net.named_parameters())
    if params == "all":
        return named
    if params != "auto":
        raise InputError(f"params {params!r} must be 'auto' or 'all'")
    own = [(n, p) for n, p in named if n.startswith(f"tails.{scale}.")]
    return own or named


def _pool(hr: torch.Tensor, scale: int, draws: int, gen: torch.Generator, degradation: Degradation
          ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(LR, HR) pairs from the training region, random crops of the pool are what the model learns from.

    Each flip that keeps scan lines as rows (none, left-right, up-down, both = 180 degrees; never a transpose,
    which would turn line artefacts into columns), degraded ``draws`` times by ``degradation``; on a large scan
    each pair is a random window of at most POOL_SIDE px a side, so memory stays bounded.
    """
    pairs = []
    for flips in ([], [1], [0], [0, 1]):
        for _ in range(draws):
            h, w = (min(n, POOL_SIDE) for n in hr.shape)
            y, x = (int(torch.randint(0, (n - m) // scale + 1, (), generator=gen)) * scale
                    for n, m in zip(hr.shape, (h, w), strict=True))
            window = hr[y:y + h, x:x + w]
            window = window.flip(flips) if flips else window
            pairs.append((degradation.downscale(window, scale, gen).float(), window.float()))
    return pairs


def _batch(pool: list[tuple[torch.Tensor, torch.Tensor]], scale: int, patch_lr: int, batch: int,
           gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random aligned crops (``patch_lr`` LR pixels a side, ``scale`` times that in HR) from random pool pairs."""
    lrs, hrs = [], []
    for _ in range(batch):
        low, high = pool[int(torch.randint(0, len(pool), (), generator=gen))]
        y, x = (int(torch.randint(0, n - patch_lr + 1, (), generator=gen)) for n in low.shape)
        lrs.append(low[y:y + patch_lr, x:x + patch_lr])
        hrs.append(high[y * scale:(y + patch_lr) * scale, x * scale:(x + patch_lr) * scale])
    return torch.stack(lrs)[:, None], torch.stack(hrs)[:, None]


def _prepared(model: SRModel, scale: int, heightmap: HeightMap | np.ndarray, level_plane: bool
              ) -> tuple[int, np.ndarray, tuple[float, float]]:
    """The checked scale, the z-scored scan and its clip range in network units (InputError for NaN/constant)."""
    a = as_heightmap(heightmap).data
    a = level(a) if level_plane else a
    s = check_scale(scale, a.shape)
    if s not in model.info.scales:
        raise InputError(f"the model {model.info.source} was trained for scales {list(model.info.scales)}, "
                         f"not x{s}")
    norm = fit_normalization(a)
    return s, norm.apply(a.astype(np.float64)), norm.z_range


def self_check(model: str | os.PathLike | SRModel, heightmap: HeightMap | np.ndarray, scale: int,
               level_plane: bool = False, device: str | torch.device = "auto", precision: str | int = "32",
               lines: float = 1.0, pairs: str = CHECK_PAIRS[0]) -> SelfCheck:
    """Bicubic vs the model on the scan's own pairs (the scan downscaled by s, restored, compared with it).

    ``lines`` < 1 checks a central band of that share of the scan lines (whole lines, at least ``MIN_LR * s``),
    so the check costs that share of its whole-scan work (``enhance`` keeps it under a tenth of its own).
    ``pairs`` names how the scan is downscaled into its pairs (``check_degradation``).
    """
    degradation = check_degradation(pairs)
    model = load_model(model)
    s, z, z_range = _prepared(model, scale, heightmap, level_plane)
    if min(z.shape) < MIN_LR * s:
        raise InputError(f"a {z.shape[0]}x{z.shape[1]} px scan is too small for a self-check at x{s}: its own "
                         f"pairs need {MIN_LR * s} px a side")
    keep = min(z.shape[0], max(MIN_LR * s, math.ceil(lines * z.shape[0])))
    top = (z.shape[0] - keep) // 2
    region = ("the whole scan's own pairs" if keep == z.shape[0] else
              f"the own pairs of the middle {keep} of {z.shape[0]} scan lines")
    dev = resolve_device(device)
    own = _whole(z[top:top + keep], s, z_range, dev, resolve_precision(precision, dev), degradation)
    return SelfCheck(s, region, own.bicubic(), own.model(model.prepared(dev, torch.float32)), pairs=pairs)


def _whole(z: np.ndarray, scale: int, z_range: tuple[float, float], device: torch.device, dtype: torch.dtype,
           degradation: Degradation | None = None) -> _CheckPairs:
    """The whole scan (cropped to a multiple of ``scale``) as check pairs."""
    return _CheckPairs(z[: z.shape[0] // scale * scale, : z.shape[1] // scale * scale], scale, z_range, device, dtype,
                       degradation)


def adapt(model: str | os.PathLike | SRModel, heightmap: HeightMap | np.ndarray, scale: int,
          steps: int | None = None, lr: float | None = None, batch: int = DEFAULT_BATCH, params: Params | None = None,
          pairs: Pairs | None = None, anchor: float = 0.0, holdout: float = HOLDOUT, seed: int = 0,
          level_plane: bool = False,
          device: str | torch.device = "auto", precision: str | int = "32", progress: Progress | None = None
          ) -> Adapted:
    """Fine-tune a copy of ``model`` on the scan's own pairs and keep it where it beats the base on held-out lines.

    Parameters
    ----------
    model : str, os.PathLike or SRModel
        ``"default"``, a weights path or a loaded model; a loaded model is never changed (a deep copy is trained).
    heightmap : HeightMap or numpy.ndarray
        The scan (heights); it is clipped and z-scored like the network input.
    scale : int
        The scale to adapt (and enhance) at.
    steps, lr, batch : int, float, int
        Adam steps, learning rate (default: the scale's ``RECIPES``) and random crops (``PATCH_LR`` LR pixels a
        side, fewer on small scans) per step.
    params : ``"auto"``, ``"all"`` or None
        Adapt only the scale's own parameters (``tails.<s>.*``, where the network has them) or all (default: the
        scale's ``RECIPES``).
    pairs : ``"bicubic"``, ``"trained"`` or None
        How the scan is downscaled into its training pairs (``pair_degradation``; default: the scale's
        ``RECIPES``). The held-out check uses bicubic pairs, on which the recipes were chosen.
    anchor : float
        Weight of an L2 pull toward the base weights (0: none).
    holdout : float
        Fraction of the scan lines held out (``pair_regions``).
    seed : int
        Fixes the crops, flips and degradations: the same seed gives the same model.
    level_plane : bool
        Subtract the least-squares plane first, as ``enhance(level_plane=True)`` does.
    device, precision : str
        As in ``enhance``; ``bf16`` runs the convolutions under autocast.
    progress : callable, optional
        ``progress(done, steps)`` after each step.
    """
    model = load_model(model)
    s, z, z_range = _prepared(model, scale, heightmap, level_plane)
    recipe = RECIPES[s]
    params, lr, steps = params or recipe.params, lr or recipe.lr, recipe.steps if steps is None else steps
    degradation = pair_degradation(pairs or recipe.pairs, model)
    if steps < 0:
        raise InputError(f"adaptation steps {steps} must be 0 or more")
    if not -(2**63) <= int(seed) < 2**64:  # torch's generator takes 64 bits; more was an OverflowError traceback
        raise InputError(f"seed {seed} is out of range; give a whole number from 0 to 2**64 - 1")
    regions = pair_regions(z.shape, s, holdout)
    device = resolve_device(device)
    dtype = resolve_precision(precision, device)
    train_hr = torch.from_numpy(z[regions.train, : z.shape[1] // s * s])
    held = _CheckPairs(z[regions.check, : z.shape[1] // s * s], s, z_range, device, dtype)
    region = f"held-out rows {regions.check.start}..{regions.check.stop - 1} of the scan's own pairs"
    net = copy.deepcopy(model.net).to(device).float().eval()
    for p in net.parameters():
        p.requires_grad_(False)
    trainable = _trainable(net, s, params)
    for _, p in trainable:
        p.requires_grad_(True)
    base = [p.detach().clone() for _, p in trainable]
    bicubic_psnr, base_psnr = held.bicubic(), held.model(net)
    whole = _whole(z, s, z_range, device, dtype)
    whole_gain = whole.model(net) - whole.bicubic()
    best, best_step, best_state = -math.inf, 0, base
    patch_lr = min(PATCH_LR, *(n // s for n in train_hr.shape))
    gen = torch.Generator().manual_seed(int(seed))
    pool = _pool(train_hr, s, DRAWS, gen, degradation)
    opt = torch.optim.Adam([p for _, p in trainable], lr=lr)
    for step in range(1, steps + 1):
        low, high = (t.to(device) for t in _batch(pool, s, patch_lr, batch, gen))
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
            bicubic = imresize(low, scale=s)
            pred = bicubic + net.residual(low, s).float()
        # each crop's MSE divided by its bicubic MSE, like the shipped model's training loss
        mse = (pred - high).pow(2).mean(dim=(1, 2, 3)) / ((bicubic - high).pow(2).mean(dim=(1, 2, 3)) + 1e-3)
        loss = mse.mean()
        if anchor:
            loss = loss + anchor * sum(((p - b) ** 2).sum() for (_, p), b in zip(trainable, base, strict=True))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % CHECK_EVERY == 0 or step == steps:
            score = held.model(net)
            if score > best:
                best, best_step, best_state = score, step, [p.detach().clone() for _, p in trainable]
        if progress is not None:
            progress(step, steps)
    with torch.no_grad():
        for (_, p), value in zip(trainable, best_state, strict=True):
            p.copy_(value)
    net = net.cpu().requires_grad_(False).eval()
    check = SelfCheck(s, region, bicubic_psnr, base_psnr, best if best_step else None, best_step, whole_gain,
                      pairs="bicubic")  # the held-out pairs are bicubic, unlike the default self-check's
    chosen = SRModel(net, model.info) if check.used == "adapted" else model
    return Adapted(chosen, check)
