"""The LightningDataModule: compose per-material datasets, split by image, serve patches and images."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytorch_lightning as pl
from torch.utils.data import DataLoader

from afm_sr.choices import SUPPORTED_SCALES
from afm_sr.data.cache import PreparedCache, cache_key
from afm_sr.data.datasets import ImageDataset, PatchDataset
from afm_sr.data.prepare import Prepared, prepare
from afm_sr.degrade import Degradation
from afm_sr.errors import AFMFileError, ConfigError, InputError
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


def _usable_now(material: Material, names: Sequence[str]) -> str | None:
    """The first file the material skipped when a cache entry was built that it can use now, else None."""
    scan = getattr(material, "scan", None)
    for name in names if scan is not None else ():
        try:
            scan(Path(name))
        except AFMFileError:
            continue
        return name
    return None


class AFMDataModule(pl.LightningDataModule):
    """Per-material HR maps -> normalized, degraded tensors -> patch batches (train) and images (val/test).

    Every material is split on its own (by ``metadata['group']`` where a reader gives one, else by image)
    with ``split_seed``, so each material is represented in val and test and no patch of a test image is
    ever trained on. With ``cache_dir``, materials that have a ``fingerprint()`` (folders of real scans)
    are prepared once and memory-mapped from a ``PreparedCache`` in later runs.

    An image that cannot be used (the material's ``skipped`` files, and maps ``prepare`` refuses: too small,
    NaN, constant) is skipped with a warning naming it, and each material's summary (used, skipped and why)
    is logged once; with ``strict`` the first such image is an InputError naming it instead, and a material
    left without images is always one.
    """

    def __init__(self, materials: Mapping[str, Material], degradation: Degradation,
                 scales: Sequence[int] = (2, 4, 8), patch_size: int = 41, batch_size: int = 64,
                 patches_per_epoch: int = 6400, split: Sequence[float] = (0.7, 0.15, 0.15),
                 split_seed: int = 1234, clip_percentiles: Sequence[float] = (2.5, 97.5),
                 num_workers: int = 0, pin_memory: bool = False, cache_dir: str | None = None,
                 lr_patch: int | None = None, online_degradation: bool = False, strict: bool = False) -> None:
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
        self.strict = strict
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
        """Every usable prepared image of one material and its split group, from the cache where it has them."""
        fingerprint = getattr(material, "fingerprint", None)
        entry = None
        if self.cache is not None and fingerprint is not None:
            entry = cache_key(fingerprint(), self.scales, self.degradation, self.clip, self.split_seed, key)
            cached = self.cache.load(key, entry)
            now = _usable_now(material, cached.retry) if cached is not None else None
            if now is not None:
                self.cache.discard(key, entry, f"left out {now}, which can be used now")
            elif cached is not None:
                log.info("material %r: %d prepared images memory-mapped from %s", key, len(cached.images),
                         self.cache.root)
                self._account(key, len(cached.images), cached.skipped)
                return cached.images, cached.groups
        maps = material.load()
        skipped = dict(getattr(material, "skipped", {}))
        retry = list(skipped)  # the material's own refusals: tried again before a cache entry is trusted
        prepared, groups = [], []
        for i, hm in enumerate(maps):
            try:
                prepared.append(self._prepare(hm, key, i))
            except InputError as exc:
                name = str(hm.source) if hm.source is not None else f"{key}_{i:03d}"
                log.warning("material %r: skipping %s: %s", key, name, exc)
                skipped[name] = str(exc)
                continue
            groups.append(hm.metadata.get("group", i))
        self._account(key, len(prepared), skipped)
        if entry is not None:
            try:
                self.cache.store(key, entry, prepared, groups, skipped, retry)
            except OSError as exc:
                log.warning("material %r: could not write the cache under %s (%s); going on without it", key,
                            self.cache.root, exc)
                return prepared, groups
            cached = self.cache.load(key, entry, verify=False)  # just written and checked
            if cached is not None:  # serve the memory map, so in-memory copies can be freed
                return cached.images, cached.groups
        return prepared, groups

    def _account(self, key: str, used: int, skipped: Mapping[str, str]) -> None:
        """Log what a material gives and skips, once; InputError where ``strict`` and one is skipped or none is left."""
        if skipped and self.strict:
            name, reason = next(iter(skipped.items()))
            more = f" ({len(skipped) - 1} more skipped)" if len(skipped) > 1 else ""
            raise InputError(f"{name}: {reason}{more}; dataset.strict=true refuses such files (false: skip them "
                             "with a warning)")
        listed = "; ".join(f"{Path(name).name} ({reason})" for name, reason in list(skipped.items())[:10])
        listed += f"; and {len(skipped) - 10} more" if len(skipped) > 10 else ""
        if not used:
            raise InputError(f"material {key!r}: every image was skipped: {listed}")
        if skipped:
            log.warning("material %r: using %d images, skipped %d: %s", key, used, len(skipped), listed)
        else:
            log.info("material %r: using %d images", key, used)

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
