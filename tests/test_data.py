
import numpy as np
import pytest
import torch
from lightning_fabric.utilities.apply_func import move_data_to_device

from afm_sr.data import AFMDataModule, ImageDataset, PatchDataset, Units, prepare, split_groups
from afm_sr.degrade import BicubicDegradation
from afm_sr.errors import ConfigError
from afm_sr.io import HeightMap
from afm_sr.materials import SyntheticMaterial


def _bumps(rng: np.random.Generator, n_px: int, pixel: float) -> np.ndarray:
    yy, xx = np.mgrid[0:n_px, 0:n_px] * pixel
    f = rng.uniform(2, 6) / (n_px * pixel)
    return 5e-9 * np.sin(2 * np.pi * f * xx) * np.cos(2 * np.pi * f * yy) + rng.normal(0, 1e-10, (n_px, n_px))


def _material(name="waves", n=8, n_px=48):
    return SyntheticMaterial(name, _bumps, n_images=n, n_px=n_px, scan_size_m=(1e-6, 2e-6), seed=3)


def test_split_keeps_groups_together_and_is_seeded():
    groups = ["a", "a", "b", "c", "c", "c", "d", "e", "f", "g"]
    parts = split_groups(groups, (0.6, 0.2, 0.2), seed=1)
    for g in set(groups):
        assert len({p for p, gg in zip(parts, groups, strict=False) if gg == g}) == 1
    assert parts == split_groups(groups, (0.6, 0.2, 0.2), seed=1)
    assert {"train", "val", "test"} <= set(parts)


def test_split_of_a_subset_agrees_with_the_whole():
    groups = [f"g{i}" for i in range(200)]
    whole = dict(zip(groups, split_groups(groups, (0.7, 0.15, 0.15), seed=5, key="real"), strict=True))
    subset = groups[::7]
    part = dict(zip(subset, split_groups(subset, (0.7, 0.15, 0.15), seed=5, key="real"), strict=True))
    assert part == {g: whole[g] for g in subset}
    shares = [list(whole.values()).count(s) / 200 for s in ("train", "val", "test")]
    assert all(abs(a - b) < 0.08 for a, b in zip(shares, (0.7, 0.15, 0.15), strict=True))
    assert set(split_groups(groups[:4], (0.0, 0.0, 1.0), seed=5)) == {"test"}


def test_prepare_crops_to_scales_and_degrades():
    hm = HeightMap(_bumps(np.random.default_rng(0), 50, 1e-8), (1e-8, 1e-8))
    p = prepare(hm, [2, 4, 8], BicubicDegradation(), seed=0)
    assert p.hr.shape == (48, 48)
    assert {s: tuple(p.lows[s].shape) for s in p.lows} == {2: (24, 24), 4: (12, 12), 8: (6, 6)}
    assert all(p.inputs[s].shape == p.hr.shape for s in (2, 4, 8))
    lo, hi = p.z_range
    assert float(p.hr.min()) == pytest.approx(lo, abs=1e-5) and float(p.hr.max()) == pytest.approx(hi, abs=1e-5)


@pytest.mark.parametrize("lr_patch", [None, 4])
def test_patch_batches_cycle_scales_and_keep_low_input_target_aligned(lr_patch):
    torch.manual_seed(0)
    rng = np.random.default_rng(1)
    images = [prepare(HeightMap(_bumps(rng, 48, 1e-8), (1e-8, 1e-8)), [2, 4, 8], BicubicDegradation(), seed=i)
              for i in range(3)]
    ds = PatchDataset(images, [2, 4, 8], patch_size=16, length=9, batch_size=5, lr_patch=lr_patch)
    batches = [ds[i] for i in range(9)]
    assert [int(b["scale"]) for b in batches] == [2, 4, 8] * 3  # one scale per batch, in turn
    for b in batches:
        s = int(b["scale"])
        n = lr_patch or 16 // s
        assert b["low"].shape == (5, 1, n, n) and b["input"].shape == b["target"].shape == (5, 1, n * s, n * s)
    # every (low, input, target) triple is a crop of one image under one dihedral transform
    for b in batches[:6]:
        s = int(b["scale"])
        n = b["low"].shape[-1]
        for low, up, hr in zip(b["low"][:, 0], b["input"][:, 0], b["target"][:, 0], strict=True):
            found = False
            for im in images:
                for k in range(4):
                    for flip in (False, True):
                        t, i, lo = torch.rot90(im.hr, k), torch.rot90(im.inputs[s], k), torch.rot90(im.lows[s], k)
                        if flip:
                            t, i, lo = t.flip(1), i.flip(1), lo.flip(1)
                        win = lo.unfold(0, n, 1).unfold(1, n, 1)
                        for r, c in (win == low).flatten(2).all(-1).nonzero().tolist():
                            hs = (slice(r * s, (r + n) * s), slice(c * s, (c + n) * s))
                            found |= torch.equal(t[hs], hr) and torch.equal(i[hs], up)
            assert found


def test_image_dataset_lists_every_scale():
    rng = np.random.default_rng(2)
    images = [prepare(HeightMap(_bumps(rng, 32, 1e-8), (1e-8, 1e-8)), [2, 4], BicubicDegradation(), seed=0)]
    ds = ImageDataset(images, [2, 4])
    assert len(ds) == 2 and [int(ds[i]["scale"]) for i in range(2)] == [2, 4]
    assert ds[1]["low"].shape == (1, 8, 8)


def test_datamodule_splits_each_material_by_image():
    dm = AFMDataModule({"a": _material("a"), "b": _material("b")}, BicubicDegradation(), scales=[2, 4],
                       patch_size=24, batch_size=4, patches_per_epoch=8)
    dm.setup("fit")
    names = {k: {im.name for im in v} for k, v in dm.images.items()}
    assert not (names["train"] & names["test"]) and not (names["train"] & names["val"])
    for split in ("val", "test"):
        assert {im.material for im in dm.images[split]} == {"a", "b"}
    batch = next(iter(dm.train_dataloader()))
    assert batch["input"].shape == (4, 1, 24, 24) and batch["low"].shape == (4, 1, 12, 12)
    assert len(dm.val_dataloader()) == 2 * len(dm.images["val"])
    units = move_data_to_device(next(iter(dm.val_dataloader())), torch.device("cpu"))["units"]  # as Lightning does
    first = dm.images["val"][0]
    assert isinstance(units, Units) and units.normalization(0) == first.stats
    assert units.scan_size[0].tolist() == pytest.approx(first.scan_size) and 1e-6 <= first.scan_size[0] <= 2e-6


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"materials": {}}, "no materials"),
    ({"scales": [3]}, "scales"),
    ({"split": [0.5, 0.5]}, "split"),
])
def test_datamodule_bad_config(kwargs, match):
    args = {"materials": {"a": _material()}, "degradation": BicubicDegradation(), **kwargs}
    with pytest.raises(ConfigError, match=match):
        AFMDataModule(**args)


def test_test_only_split_serves_evaluation():
    dm = AFMDataModule({"a": _material("a")}, BicubicDegradation(), scales=[2], patch_size=24, split=[0, 0, 1])
    dm.setup("test")
    assert len(dm.images["test"]) == 8
    with pytest.raises(ConfigError, match="train"):
        dm.setup("fit")


def test_ranks_with_the_same_seed_draw_different_patches():
    rng = np.random.default_rng(4)
    images = [prepare(HeightMap(_bumps(rng, 48, 1e-8), (1e-8, 1e-8)), [2, 4], BicubicDegradation(), seed=i)
              for i in range(4)]
    ds = PatchDataset(images, [2, 4], patch_size=16, length=64)
    torch.manual_seed(0)
    rank0 = [ds[i]["target"] for i in range(0, 64, 2)]  # DistributedSampler: rank 0 gets even indices
    torch.manual_seed(0)
    rank1 = [ds[i]["target"] for i in range(1, 64, 2)]
    assert sum(torch.equal(a, b) for a, b in zip(rank0, rank1, strict=True)) == 0
    torch.manual_seed(0)
    assert all(torch.equal(a, ds[i]["target"]) for a, i in zip(rank0, range(0, 64, 2), strict=True))
