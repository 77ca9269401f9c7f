"""The LightningDataModule: compose per-material datasets, split by image, serve patches and images."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence

import pytorch_lightning as pl
from torch.utils.data import DataLoader

from afm_sr.choices import SUPPORTED_SCALES
from afm_sr.data.cache import PreparedCache, cache_key
from afm_sr.data.datasets import ImageDataset, PatchDataset
from afm_sr.data.prepare import Prepared, prepare
from afm_sr.degrade import Degradation
from afm_sr.errors import ConfigError
from afm_sr.io import HeightMap
from afm_sr.materials import Material

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


def _unit_hash(*parts: object) -> float:
    """A number in [0, 1) fixed by ``parts`` (stable across processes and Python versions)."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") / 2**64


def split_groups(groups: Sequence[object], fractions: Sequence[float], seed: int, key: str = "") -> list[str]:
    """Assign each item a split so that items sharing a group (e.g. rescans of one area) stay together.

    Each group draws a fixed number from a hash of (seed, key, group) and falls into test, val or train by
    the cumulative ``fractions``; a group therefore lands in the same split whatever other groups are
    present, so a subset of a folder (mono) and the whole folder (multi) never swap train and test images.
    Where a split with a non-zero fraction would stay empty (few groups), the train group closest to it
    is moved there.
    """
    unique = list(dict.fromkeys(groups))
    u = {g: _unit_hash(seed, key, g) for g in unique}
    f_test, f_val = float(fractions[2]), float(fractions[1])
    assign = {g: "test" if u[g] < f_test else "val" if u[g] < f_test + f_val else "train" for g in unique}
    for split, wanted in (("test", f_test), ("val", f_val)):
        train = [g for g in unique if assign[g] == "train"]
        if wanted > 0 and split not in assign.values() and len(train) > 1:
            assign[min(train, key=lambda g: u[g])] = split
    return [assign[g] for g in groups]


class AFMDataModule(pl.LightningDataModule):
    """Per-material HR maps -> normalized, degraded tensors -> patch batches (train) and images (val/test).

    Every material is split on its own (by ``metadata['group']`` where a reader gives one, else by image)
    with ``split_seed``, so each material is represented in val and test and no patch of a test image is
    ever trained on. With ``cache_dir``, materials that have a ``fingerprint()`` (folders of real scans)
    are prepared once and memory-mapped from a ``PreparedCache`` in later runs.
    """

    def __init__(self, materials: Mapping[str, Material], degradation: Degradation,
                 scales: Sequence[int] = (2, 4, 8), patch_size: int = 41, batch_size: int = 64,
                 patches_per_epoch: int = 6400, split: Sequence[float] = (0.7, 0.15, 0.15),
                 split_seed: int = 1234, clip_percentiles: Sequence[float] = (2.5, 97.5),
                 num_workers: int = 0, pin_memory: bool = False, cache_dir: str | None = None,
                 lr_patch: int | None = None, online_degradation: bool = False) -> None:
        super().__init__()
        if not materials:
            raise ConfigError("dataset: no materials configured (add entries under dataset.materials)")
        bad = [s for s in scales if int(s) not in SUPPORTED_SCALES]
        if bad or not scales:
            raise ConfigError(f"scales {list(scales)}: each must be one of {list(SUPPORTED_SCALES)}")
        if len(split) != 3 or abs(sum(split) - 1) > 1e-6 or min(split) < 0:
            raise ConfigError(f"dataset.split must be three fractions summing to 1, got {list(split)}")
        wrong = [f"dataset.{name} must be >= {least}, got {value}" for name, value, least in (  # patch: 2 x scale
            ("patch_size", patch_size, 2 * max(scales)), ("batch_size", batch_size, 1),
            ("patches_per_epoch", patches_per_epoch, 1)) if value < least]
        if wrong:
            raise ConfigError("; ".join(wrong))
        self.materials = dict(materials)
        self.degradation = degradation
        self.scales = [int(s) for s in scales]
        if lr_patch is not None and lr_patch < 2:
            raise ConfigError(f"dataset.lr_patch must be >= 2 LR pixels or null, got {lr_patch}")
        self.patch_size, self.batch_size, self.patches_per_epoch = patch_size, batch_size, patches_per_epoch
        self.lr_patch, self.online_degradation = lr_patch, online_degradation
        self.split, self.split_seed = tuple(split), split_seed
        self.clip = (float(clip_percentiles[0]), float(clip_percentiles[1]))
        self.num_workers, self.pin_memory = num_workers, pin_memory
        self.cache = PreparedCache(cache_dir) if cache_dir else None
        self.images: dict[str, list[Prepared]] = {}

    def setup(self, stage: str | None = None) -> None:
        """Load, split and prepare every material once; check the splits ``stage`` needs are not empty."""
        if not self.images:
            self.images = {k: [] for k in SPLITS}
            for key, material in self.materials.items():
                prepared, groups = self._material_images(key, material)
                parts = split_groups(groups, self.split, self.split_seed, key)
                for im, part in zip(prepared, parts, strict=True):
                    self.images[part].append(im)
            log.info("images per split: %s", ", ".join(f"{k} {len(v)}" for k, v in self.images.items()))
        counts = {k: len(v) for k, v in self.images.items()}
        needed = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",)}.get(stage or "", SPLITS)
        empty = [k for k in needed if counts[k] == 0]
        if empty:
            raise ConfigError(f"dataset: split(s) {empty} got no images ({counts}); use more images per material")

    def _material_images(self, key: str, material: Material) -> tuple[list[Prepared], list[object]]:
        """Every prepared image of one material and its split group, from the cache where it has them."""
        fingerprint = getattr(material, "fingerprint", None)
        entry = None
        if self.cache is not None and fingerprint is not None:
            entry = cache_key(fingerprint(), self.scales, self.degradation, self.clip, self.split_seed, key)
            cached = self.cache.load(key, entry)
            if cached is not None:
                log.info("material %r: %d prepared images memory-mapped from %s", key, len(cached[0]),
                         self.cache.root)
                return cached
        maps = material.load()
        groups = [hm.metadata.get("group", i) for i, hm in enumerate(maps)]
        prepared = [self._prepare(hm, key, i) for i, hm in enumerate(maps)]
        if entry is not None:
            try:
                self.cache.store(key, entry, prepared, groups)
            except OSError as exc:
                log.warning("material %r: could not write the cache under %s (%s); going on without it", key,
                            self.cache.root, exc)
                return prepared, groups
            cached = self.cache.load(key, entry)
            if cached is not None:  # serve the memory map, so in-memory copies can be freed
                return cached
        return prepared, groups

    def _prepare(self, hm: HeightMap, key: str, index: int) -> Prepared:
        """Prepare one map with a degradation seed fixed by its material and index (same in every dataset)."""
        name = hm.source.name if hm.source is not None else f"{key}_{index:03d}"
        seed = int(_unit_hash(self.split_seed, key, index) * 2**31)
        return prepare(hm, self.scales, self.degradation, seed=seed, clip_percentiles=self.clip, material=key,
                       name=name)

    def _loader(self, dataset: object, batch_size: int | None, shuffle: bool) -> DataLoader:
        """A DataLoader with the configured workers (``batch_size=None``: the dataset yields whole batches)."""
        return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=self.num_workers,
                          pin_memory=self.pin_memory, persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        """Batches of random augmented patches mixing every material, one scale per batch (scales cycle)."""
        ds = PatchDataset(self.images["train"], self.scales, self.patch_size,
                          max(1, self.patches_per_epoch // self.batch_size), self.batch_size,
                          lr_patch=self.lr_patch, degradation=self.degradation if self.online_degradation else None)
        return self._loader(ds, None, shuffle=False)

    def val_dataloader(self) -> DataLoader:
        """Whole validation images, every scale."""
        return self._loader(ImageDataset(self.images["val"], self.scales), 1, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        """Whole test images, every scale."""
        return self._loader(ImageDataset(self.images["test"], self.scales), 1, shuffle=False)
