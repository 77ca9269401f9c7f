"""The one owner of the weights formats: what a checkpoint or exported file records, and how a network is rebuilt.

Two file kinds are read, told apart by their content (not their name), and neither is ever unpickled:

- a Lightning checkpoint from ``train.py`` (read with ``torch.load(..., weights_only=True)``): ``state_dict``
  holds ``net.<name>`` tensors, ``afm_sr`` the architecture record and (where train.py recorded it)
  ``afm_sr_degradation`` the run's ``degradation`` config node (what the network trained on);
- an exported ``.safetensors`` file: the network's tensors and string metadata ``format=afm-sr``, ``target``,
  ``kwargs`` (JSON), ``scales`` (JSON list), optionally ``gains`` (JSON), ``degradation`` (JSON: the training
  degradation's config node) and free-form notes.

The architecture record (version 2) is ``{"_target_": "afm_sr.models.X", "kwargs": {...}, "scales": [...]}``;
``_target_`` must be in ``ARCHITECTURES``. Files of afm-sr 0.1 (``arch="VDSR"``, ``depth``, ``width``,
``channels``) still load. Before anything is allocated, the record is checked against each architecture's
bounds and the tensor shapes it implies against the tensors in the file (the network is first built on
PyTorch's ``meta`` device, which allocates nothing).

Integrity: a checkpoint is a zip archive whose members carry CRC-32 checksums, which ``torch.load`` does not
check; ``read_checkpoint`` verifies every one first (``check_archive``, about 2 GB/s: experiments/bench/
RESULTS.md), so a flipped bit, a bad sector or a cut file is refused naming the file, on resume, eval,
export and enhance alike.
"""

from __future__ import annotations

import json
import os
import zipfile
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from afm_sr.choices import SUPPORTED_SCALES
from afm_sr.errors import AFMFileError, AFMSRError
from afm_sr.models import ARCHITECTURES, SRNet

PathLike = str | os.PathLike
FORMAT_TAG = "afm-sr"
RECORD_VERSION = 2
#: Metadata keys of an exported file that are not free-form notes (``arch``..``channels``: afm-sr 0.1 files).
RESERVED = ("format", "target", "kwargs", "scales", "gains", "degradation", "version", "arch", "depth", "width",
            "channels", "crc32")
#: Where a checkpoint keeps its run's ``degradation`` config node (``afm_sr.callbacks.RecordDegradation``).
DEGRADATION_KEY = "afm_sr_degradation"
_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_MAGIC = b"\x80"


@dataclass(frozen=True)
class ArchRecord:
    """Which network a file holds: its allow-listed ``_target_``, constructor kwargs and trained scales."""

    target: str
    kwargs: dict[str, Any]
    scales: tuple[int, ...]

    @property
    def arch(self) -> str:
        """The class name (``VDSR``, ``MultiScaleResNet``)."""
        return self.target.rsplit(".", 1)[-1]

    def describe(self) -> str:
        """``VDSR(depth=16, width=32, channels=1)``: for messages and ``afm-sr info``."""
        return f"{self.arch}({', '.join(f'{k}={v}' for k, v in self.kwargs.items())})"

    @classmethod
    def of(cls, net: SRNet, scales: tuple[int, ...] | list[int]) -> ArchRecord:
        """The record of a network in memory (what a checkpoint of it would hold)."""
        rec = arch_record(net, scales)
        return cls(rec["_target_"], rec["kwargs"], tuple(rec["scales"]))

    def as_config(self) -> dict[str, Any]:
        """The Hydra ``model`` node that builds this network (``_target_`` plus kwargs)."""
        return {"_target_": self.target, **self.kwargs}


@dataclass(frozen=True)
class TrainingState:
    """What a resumed run must match in a checkpoint: its optimizers and LR schedulers.

    ``lightning`` is the file's ``pytorch-lightning_version`` (None: weights only, nothing to resume);
    ``*_classes`` are what afm-sr recorded (``module.qualname``; None in files written before it did), and
    ``optimizer_keys``/``scheduler_keys`` the keys of each saved param group / scheduler state.
    """

    lightning: str | None
    optimizer_classes: tuple[str, ...] | None
    scheduler_classes: tuple[str, ...] | None
    optimizer_keys: tuple[frozenset[str], ...]
    scheduler_keys: tuple[frozenset[str], ...]


@dataclass
class WeightsFile:
    """What a weights file holds: its architecture, the network's tensors, measured gains and free notes.

    ``degradation`` is the config node of what the network trained on (None where the file does not record it);
    ``training`` is set for a Lightning checkpoint (what resuming it needs to match), None for exported weights.
    """

    path: Path
    record: ArchRecord
    tensors: dict[str, torch.Tensor]
    gains: dict[int, dict[str, float]] = field(default_factory=dict)
    extra: dict[str, str] = field(default_factory=dict)
    degradation: dict[str, Any] | None = None
    training: TrainingState | None = None


def class_name(obj: object) -> str:
    """``module.qualname`` of an object's class: how a checkpoint records its optimizer and scheduler."""
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def weights_crc(tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str]) -> str:
    """CRC-32 of an exported file's tensors (by name) and metadata (``crc32`` itself left out), as 8 hex digits."""
    crc = zlib.crc32(json.dumps({k: v for k, v in metadata.items() if k != "crc32"}, sort_keys=True).encode())
    for name in sorted(tensors):
        data = tensors[name].detach().contiguous().reshape(-1).view(torch.uint8).numpy()
        crc = zlib.crc32(data, zlib.crc32(name.encode(), crc))
    return f"{crc:08x}"


def nonfinite_weights(tensors: Iterable[torch.Tensor]) -> str | None:
    """Why weights cannot produce a height map (how many are NaN or Inf), or None where all are finite."""
    broken = sum(int((~torch.isfinite(t)).sum()) for t in tensors)
    if not broken:
        return None
    return f"{broken} of the model's weights are NaN or Inf (a diverged training?)"


def arch_record(net: SRNet, scales: list[int] | tuple[int, ...]) -> dict[str, Any]:
    """The record ``SRModule`` stores in every checkpoint (and ``export_weights`` in the metadata)."""
    target = next((t for t, c in ARCHITECTURES.items() if type(net) is c), None)
    if target is None:
        raise AFMSRError(f"{type(net).__name__} is not in afm_sr.models.ARCHITECTURES; add it there to save it")
    return {"_target_": target, "kwargs": dict(net.arch_kwargs), "scales": [int(s) for s in scales],
            "version": RECORD_VERSION}


def parse_record(path: Path, record: Mapping[str, Any]) -> ArchRecord:
    """Validate an architecture record (either version) into an ArchRecord; AFMFileError if it is unusable."""
    try:
        if "_target_" in record:
            target, kwargs = str(record["_target_"]), dict(record["kwargs"])
        else:  # afm-sr 0.1: VDSR only, its three numbers at the top level
            target = f"afm_sr.models.{record['arch']}"
            kwargs = {k: int(record[k]) for k in ("depth", "width", "channels")}
        scales = tuple(int(s) for s in record["scales"])
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise AFMFileError(path, f"its architecture record is incomplete or malformed ({exc!r}); expected "
                                 "_target_, kwargs and scales") from exc
    if target not in ARCHITECTURES:
        raise AFMFileError(path, f"architecture {target!r} is not supported; afm-sr builds only "
                                 f"{sorted(ARCHITECTURES)}")
    if not scales or any(s not in SUPPORTED_SCALES for s in scales):
        raise AFMFileError(path, f"its scales {list(scales)} are not a non-empty subset of {list(SUPPORTED_SCALES)}")
    try:
        ARCHITECTURES[target].check_kwargs(kwargs)
    except AFMSRError as exc:
        raise AFMFileError(path, f"its architecture record is out of bounds: {exc}") from exc
    return ArchRecord(target, kwargs, scales)


def guess_kind(path: Path) -> str:
    """``'safetensors'`` or ``'torch'`` from the first bytes, or AFMFileError for anything else."""
    if not path.is_file():
        raise AFMFileError(path, "no such weights file" if not path.exists() else "is not a file")
    with path.open("rb") as handle:
        head = handle.read(9)
    if len(head) == 9 and head[8:9] == b"{":  # 8-byte header length, then the JSON header
        return "safetensors"
    if head.startswith((_ZIP_MAGIC, _PICKLE_MAGIC)):
        return "torch"
    raise AFMFileError(path, "is neither a PyTorch/Lightning checkpoint nor a .safetensors file "
                             "(give a checkpoint from train.py or weights from export_weights)")


def _parse_gains(path: Path, gains: Any) -> dict[int, dict[str, float]]:
    """``{"2": {"psnr": dB, "ssim": delta}}`` as ints and floats; AFMFileError if malformed."""
    try:
        return {int(s): {str(k): float(v) for k, v in g.items()} for s, g in (gains or {}).items()}
    except (TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise AFMFileError(path, f"its gains metadata is malformed ({exc!r})") from exc


def _parse_degradation(path: Path, node: Any) -> dict[str, Any] | None:
    """A recorded training degradation as a mapping (None where absent); AFMFileError if it is not one."""
    if node is not None and not isinstance(node, dict):
        raise AFMFileError(path, f"its training degradation record is not a mapping ({type(node).__name__})")
    return node


def check_archive(path: Path) -> None:
    """AFMFileError naming ``path`` where its zip members do not match their CRC-32s or the archive is damaged."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
        raise AFMFileError(path, f"is a damaged checkpoint: its zip archive cannot be read ({type(exc).__name__}: "
                                 f"{exc}); it may be truncated or corrupted on disk: use another checkpoint "
                                 "(e.g. best.ckpt, or an earlier run's)") from exc
    if bad is not None:
        raise AFMFileError(path, f"is a corrupted checkpoint: its member {bad!r} does not match its CRC-32 "
                                 "checksum (a flipped bit or a bad sector); use another checkpoint (e.g. best.ckpt, "
                                 "or an earlier run's)")


def _training_state(ckpt: Mapping[str, Any]) -> TrainingState:
    """What resuming ``ckpt`` must match (see ``TrainingState``), read leniently: odd entries count as absent."""
    recorded = ckpt.get("afm_sr_training") if isinstance(ckpt.get("afm_sr_training"), dict) else {}

    def names(key: str) -> tuple[str, ...] | None:
        value = recorded.get(key)
        return tuple(map(str, value)) if isinstance(value, list) else None

    def keys(states: Any, groups: bool) -> tuple[frozenset[str], ...]:
        states = states if isinstance(states, list) else []
        found = [(st.get("param_groups") or [{}])[0] if groups else st for st in states if isinstance(st, dict)]
        return tuple(frozenset(map(str, d)) for d in found if isinstance(d, dict))

    version = ckpt.get("pytorch-lightning_version")
    return TrainingState(None if version is None else str(version), names("optimizers"), names("schedulers"),
                         keys(ckpt.get("optimizer_states"), True), keys(ckpt.get("lr_schedulers"), False))


def read_checkpoint(path: Path) -> WeightsFile:
    """Architecture and ``net.*`` tensors of a Lightning checkpoint, loaded with ``weights_only=True``.

    A zip checkpoint's CRC-32s are verified first (``check_archive``); ``training`` says what it can resume.
    """
    try:
        with path.open("rb") as handle:
            zipped = handle.read(4) == _ZIP_MAGIC  # a legacy pickle file has no checksums to verify
    except OSError as exc:
        raise AFMFileError(path, f"cannot be read ({exc.strerror or exc})") from exc
    if zipped:
        check_archive(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError for foreign objects, RuntimeError/EOFError for broken files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AFMFileError(path, "could not be loaded as plain tensors (weights_only=True): it is corrupt, "
                                 f"truncated or holds arbitrary Python objects, which afm-sr never unpickles "
                                 f"({type(exc).__name__}: {first})") from exc
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict"), dict) or "afm_sr" not in ckpt:
        raise AFMFileError(path, "is not a checkpoint written by afm-sr's train.py (no 'state_dict' and "
                                 "'afm_sr' architecture record)")
    if not isinstance(ckpt["afm_sr"], dict):
        raise AFMFileError(path, "its 'afm_sr' architecture record is not a mapping")
    tensors = {k.removeprefix("net."): v for k, v in ckpt["state_dict"].items()
               if k.startswith("net.") and isinstance(v, torch.Tensor)}
    return WeightsFile(path, parse_record(path, ckpt["afm_sr"]), tensors,
                       degradation=_parse_degradation(path, ckpt.get(DEGRADATION_KEY)),
                       training=_training_state(ckpt))


def read_safetensors(path: Path) -> WeightsFile:
    """Architecture (metadata) and tensors of an exported ``.safetensors`` file."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            meta = dict(handle.metadata() or {})
            tensors = {k: handle.get_tensor(k) for k in handle.keys()}
    except Exception as exc:  # SafetensorError for bad headers or sizes, OSError for short reads
        raise AFMFileError(path, f"is a corrupt or truncated .safetensors file ({type(exc).__name__}: {exc})") from exc
    if meta.get("format") != FORMAT_TAG:
        raise AFMFileError(path, f"is a .safetensors file but not afm-sr weights (metadata format="
                                 f"{meta.get('format')!r}, expected {FORMAT_TAG!r}); export it with export_weights")
    if "crc32" in meta and meta["crc32"] != weights_crc(tensors, meta):  # files exported before it have none
        raise AFMFileError(path, "is corrupted: its tensors and metadata do not match the CRC-32 recorded when it "
                                 "was exported (a flipped bit or a bad sector); export it again from its checkpoint")
    try:
        record: dict[str, Any] = {**meta, "scales": json.loads(meta.get("scales", "null"))}
        if "target" in meta:
            record = {"_target_": meta["target"], "kwargs": json.loads(meta.get("kwargs", "null")),
                      "scales": record["scales"]}
        gains = json.loads(meta["gains"]) if "gains" in meta else None
        degradation = json.loads(meta["degradation"]) if "degradation" in meta else None
    except (json.JSONDecodeError, RecursionError) as exc:
        raise AFMFileError(path, f"its metadata is not valid JSON ({exc})") from exc
    extra = {k: v for k, v in meta.items() if k not in RESERVED}
    return WeightsFile(path, parse_record(path, record), tensors, _parse_gains(path, gains), extra,
                       _parse_degradation(path, degradation))


def read_weights(path: PathLike) -> WeightsFile:
    """Read a checkpoint or exported weights file (by content); every failure is one AFMFileError."""
    p = Path(path)
    return read_safetensors(p) if guess_kind(p) == "safetensors" else read_checkpoint(p)


def build_network(weights: WeightsFile) -> SRNet:
    """The network the record names, with the file's tensors, after checking shapes on the ``meta`` device.

    Raises AFMFileError where the tensors do not fit the declared architecture or are not finite.
    """
    cls, rec = ARCHITECTURES[weights.record.target], weights.record
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in cls(**rec.kwargs).state_dict().items()}
    found = {k: tuple(v.shape) for k, v in weights.tensors.items()}
    wrong = sorted(k for k in expected.keys() | found.keys() if expected.get(k) != found.get(k))
    if wrong:
        k = wrong[0]
        raise AFMFileError(weights.path, f"its tensors do not match the architecture it declares "
                                         f"({rec.describe()}): {len(wrong)} differ, e.g. {k!r} is "
                                         f"{found.get(k, 'missing')} where {expected.get(k, 'nothing')} is expected")
    if not all(v.is_floating_point() for v in weights.tensors.values()):
        raise AFMFileError(weights.path, "holds weights that are not floating-point numbers")
    problem = nonfinite_weights(weights.tensors.values())
    if problem:
        raise AFMFileError(weights.path, f"{problem}; it cannot produce a height map: use another checkpoint")
    net = cls(**rec.kwargs)
    net.load_state_dict({k: v.float() for k, v in weights.tensors.items()}, strict=True)
    return net.eval()
