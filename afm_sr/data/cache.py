"""A memory-mapped cache of prepared float32 images, so real scans are parsed and degraded once, not every run.

One cache entry holds one material's prepared images (HR, network inputs and LR images per scale) as a
single raw float32 file plus a JSON index. It is keyed by everything that shaped those arrays: the
material's fingerprint (its files' names, sizes and modification times and its reading options), the
scales, the degradation, the clip percentiles, the degradation seed and the package version. Any change
gives a new key, so a stale entry is never read; an entry is written to a temporary folder and renamed
into place, so a killed run or two concurrent runs never leave a half-written one. Loaded entries are
memory-mapped copy-on-write: thousands of scans cost page cache, not process memory.

Integrity: ``index.json`` records a CRC-32 of each image's bytes (what zip and PNG use against storage errors,
about 2 GB/s with zlib) and a BLAKE2b digest of itself, and both are checked on every load (a fraction of a
second per run start for a few hundred MB: experiments/bench/RESULTS.md), so a flipped bit or a bad sector
makes the entry rebuilt with a warning naming it, never trained on. An entry also records the files its
material skipped (``Entry.retry``): the caller retries them and rebuilds the entry where one can be used now
(a file that was unreadable when the entry was built).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import zlib
from collections.abc import Sequence
from dataclasses import astuple, dataclass, field
from pathlib import Path

import numpy as np
import torch

from afm_sr import __version__
from afm_sr.atomic import remove_stale_temp_folders, temp_folder
from afm_sr.data.prepare import Prepared
from afm_sr.preprocess import Normalization

log = logging.getLogger(__name__)

#: Bump when the layout of an entry changes; old entries are then ignored (and can be deleted).
FORMAT = 2


@dataclass
class Entry:
    """A cache entry's images, their split groups, and what the material skipped (name -> reason).

    ``retry`` lists the skipped files to try again before trusting the entry (the material's own skips);
    ``skipped`` also holds images refused when prepared, which the key already decides.
    """

    images: list[Prepared]
    groups: list[object]
    skipped: dict[str, str] = field(default_factory=dict)
    retry: list[str] = field(default_factory=list)


def _index_digest(index: dict) -> str:
    """BLAKE2b of an index's content, everything but its own ``checksum`` field, serialized canonically."""
    text = json.dumps({k: v for k, v in index.items() if k != "checksum"}, sort_keys=True)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def describe(obj: object) -> object:
    """A JSON-able, address-free description of a config object (degradations, numbers, lists, tensors)."""
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    if isinstance(obj, list | tuple):
        return [describe(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): describe(v) for k, v in sorted(obj.items())}
    if hasattr(obj, "__dict__"):
        return {"type": type(obj).__qualname__, **{k: describe(v) for k, v in sorted(vars(obj).items())}}
    return obj


def cache_key(*parts: object) -> str:
    """A short stable hash of ``parts`` (and of the cache format and package version)."""
    text = json.dumps([FORMAT, __version__, *map(describe, parts)], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


class PreparedCache:
    """Prepared images of whole materials under ``root``, one folder per (material, key)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _entry(self, material: str, key: str) -> Path:
        return self.root / f"{material}-{key}"

    def load(self, material: str, key: str, verify: bool = True) -> Entry | None:
        """The cached entry, memory-mapped; ``None`` where no complete, intact entry exists.

        A damaged entry (unreadable, truncated, or failing its checksums where ``verify``) is removed with a
        warning naming it and what is wrong, so the caller rebuilds it.
        """
        entry = self._entry(material, key)
        try:
            index = json.loads((entry / "index.json").read_text())
            flat = np.memmap(entry / "arrays.f32", dtype=np.float32, mode="c")
        except (OSError, ValueError) as exc:
            if entry.exists():
                self.discard(material, key, f"is unreadable ({exc})")
            return None
        try:
            problem = _problem(index, flat) if verify else None
            if problem is None:
                arrays = torch.from_numpy(flat)
                return Entry([_unpack(arrays, item) for item in index["images"]],
                             [item["group"] for item in index["images"]], dict(index["skipped"]), list(index["retry"]))
        except (KeyError, TypeError, ValueError, IndexError, RuntimeError) as exc:  # a malformed index
            problem = f"is malformed ({type(exc).__name__}: {exc})"
        self.discard(material, key, problem)
        return None

    def discard(self, material: str, key: str, problem: str) -> None:
        """Warn that an entry cannot be used and why, and remove it (where the cache is writable)."""
        entry = self._entry(material, key)
        log.warning("cache entry %s %s; rebuilding it", entry, problem)
        shutil.rmtree(entry, ignore_errors=True)

    def store(self, material: str, key: str, images: Sequence[Prepared], groups: Sequence[object],
              skipped: dict[str, str] | None = None, retry: Sequence[str] = ()) -> None:
        """Write an entry for ``images`` (temp folder, then one rename); a concurrent writer's entry wins."""
        entry = self._entry(material, key)
        self.root.mkdir(parents=True, exist_ok=True)
        for stale in remove_stale_temp_folders(self.root):
            log.info("removed %s, left by a run that was killed while writing it", stale)
        with temp_folder(entry) as tmp:
            items, offset = [], 0
            with open(tmp / "arrays.f32", "wb") as f:
                for im, group in zip(images, groups, strict=True):
                    item, offset = _pack(f, im, group, offset)
                    items.append(item)
                f.flush()
                os.fsync(f.fileno())
            index = {"size": offset, "images": items, "skipped": dict(skipped or {}), "retry": list(retry)}
            (tmp / "index.json").write_text(json.dumps({**index, "checksum": _index_digest(index)}))
            try:
                tmp.rename(entry)
            except OSError:  # another run stored the same entry first: keep theirs
                log.info("cache entry %s appeared meanwhile; keeping it", entry)


def _problem(index: dict, flat: np.ndarray) -> str | None:
    """What is wrong with an entry (its index altered, its file cut short, an image's bytes changed), or None."""
    if not isinstance(index, dict) or index.get("checksum") != _index_digest(index):
        return "is corrupt: index.json does not match its checksum"
    if flat.size != index["size"]:
        return "is truncated" if flat.size < index["size"] else "holds more data than its index records"
    for item in index["images"]:
        start, end = item["span"]
        if zlib.crc32(flat[start:end]) != item["crc32"]:
            return f"is corrupt: the arrays of image {item['name']!r} do not match their checksum"
    return None


def _pack(f: object, im: Prepared, group: object, offset: int) -> tuple[dict, int]:
    """Append ``im``'s arrays to the open file ``f``; return its index record (with a checksum) and the new offset."""
    arrays = {"hr": im.hr, **{f"in{s}": t for s, t in im.inputs.items()}, **{f"low{s}": t for s, t in im.lows.items()}}
    layout, start, crc = {}, offset, 0
    for name, t in arrays.items():
        data = t.detach().to(torch.float32).contiguous().numpy()
        f.write(data.tobytes())
        crc = zlib.crc32(data, crc)
        layout[name] = [offset, list(data.shape)]
        offset += data.size
    record = {"layout": layout, "span": [start, offset], "crc32": crc, "scales": sorted(im.inputs),
              "z_range": list(im.z_range), "material": im.material, "name": im.name, "stats": list(astuple(im.stats)),
              "pixel_size": list(im.pixel_size), "group": group}
    return record, offset


def _unpack(flat: torch.Tensor, item: dict) -> Prepared:
    """A ``Prepared`` whose tensors are views into the memory-mapped file."""
    def view(name: str) -> torch.Tensor:
        start, shape = item["layout"][name]
        return flat[start:start + int(np.prod(shape))].view(shape)

    return Prepared(view("hr"), {s: view(f"in{s}") for s in item["scales"]},
                    {s: view(f"low{s}") for s in item["scales"]}, tuple(item["z_range"]), item["material"],
                    item["name"], Normalization(*item["stats"]), tuple(item["pixel_size"]))
