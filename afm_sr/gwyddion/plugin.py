"""The program each afm-sr menu entry's launcher runs when Gwyddion runs it: ``ENTRY run MODE DUMPFILE``.

(The launcher answers Gwyddion's ``register`` itself, see ``install.launcher``.) It reads the current channel from
the dump, super-resolves it with ``afm_sr.enhance`` (or bicubic, for comparison) and writes it back with ``s``
times the pixels, the same scan size and units, and its mask upsampled (nearest); Gwyddion adds it as a new
channel.

A failure reaches the user in three places: stderr (the terminal Gwyddion was started from), Gwyddion's program
messages (through the refusal dump, see ``dump.refusal``) and the log file the message names, which also keeps
the traceback of anything unexpected.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from afm_sr.choices import check_scale
from afm_sr.errors import AFMSRError, InputError
from afm_sr.gwyddion.entries import ENTRIES, RUN_MODES, Entry, log_file, options_file

if TYPE_CHECKING:
    from afm_sr.gwyddion.dump import Field
    from afm_sr.io import HeightMap

#: Options and their defaults (those of ``afm-sr enhance``); ``AFM_SR_GWYDDION_<KEY>`` overrides the options file.
OPTIONS = {"model": "default", "tile": "auto", "device": "auto", "adapt": "auto"}
ENV_PREFIX = "AFM_SR_GWYDDION_"
_ADAPT = {"auto": None, "yes": True, "no": False}
#: The log is cut back to its last half once it grows past this many bytes.
LOG_LIMIT = 1_000_000


def read_options(path: Path | None = None) -> dict[str, str]:
    """The options: defaults, then the options file's ``key = value`` lines (``#`` comments), then the environment."""
    path = options_file() if path is None else path
    options = dict(OPTIONS)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    except OSError as exc:
        raise AFMSRError(f"cannot read the options file {path} ({exc.strerror or exc})") from exc
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        key, sep, value = (part.strip() for part in line.partition("="))
        if not sep or key not in OPTIONS:
            raise AFMSRError(f"{path}, line {number}: {raw.strip()!r} is not one of "
                             f"{', '.join(f'{k} = ...' for k in OPTIONS)}")
        options[key] = value
    options.update({key: os.environ[f"{ENV_PREFIX}{key.upper()}"] for key in OPTIONS
                    if f"{ENV_PREFIX}{key.upper()}" in os.environ})
    return options


def enhance_arguments(options: dict[str, str]) -> dict[str, object]:
    """``afm_sr.enhance`` keyword arguments from the options (InputError naming the bad one)."""
    adapt = options["adapt"].lower()
    if adapt not in _ADAPT:
        raise InputError(f"adapt = {options['adapt']!r}: use auto (afm-sr enhance's default), "
                         "yes or no")
    tile: int | str = options["tile"]
    if tile != "auto":
        try:
            tile = int(tile)
        except ValueError:
            tile = 0
        if tile < 1:
            raise InputError(f"tile = {options['tile']!r}: use auto or a whole number of output pixels >= 1")
    return {"model": options["model"], "device": options["device"], "tile": tile, "adapt": _ADAPT[adapt]}


def _check_height(unit_z: str) -> None:
    """Refuse a channel whose values are not lengths: the model knows heights only."""
    if unit_z != "m":
        raise InputError(f"the current channel holds {unit_z or 'values without a unit'}, not heights in m: afm-sr "
                         "enhances height (topography) channels; select one and run it again")


def run(entry: Entry, dump_path: Path) -> str:
    """Super-resolve the dump's channel in place; return a one-line summary of what was done."""
    from afm_sr.gwyddion import dump

    fields = dump.read(dump_path)
    data = fields[dump.DATA]
    _check_height(data.unit_z)
    check_scale(entry.scale, data.data.shape)
    yres, xres = data.data.shape
    out = _upscaled(entry, data, enhance_arguments(read_options()))  # a bad option is refused before torch loads
    s = entry.scale
    result = {dump.DATA: dump.Field(out.data, data.xreal, data.yreal, data.unit_xy, data.unit_z)}
    if dump.MASK in fields:
        mask = fields[dump.MASK]
        result[dump.MASK] = dump.Field(mask.data.repeat(s, axis=0).repeat(s, axis=1), mask.xreal, mask.yreal,
                                       mask.unit_xy, mask.unit_z)
    dump.write(dump_path, b"".join(field.lines(name) for name, field in result.items()))
    check = out.metadata.get("afm_sr_self_check")
    return (f"{xres}x{yres} px -> {xres * s}x{yres * s} px, scan size {data.xreal:.4g} x {data.yreal:.4g} "
            f"{data.unit_xy}" + (f"; {check}" if check else ""))


def _upscaled(entry: Entry, field: Field, arguments: dict[str, object]) -> HeightMap:
    """The channel's heights upscaled by the entry's method (torch is imported here, never at registration)."""
    from afm_sr.infer import enhance
    from afm_sr.infer.pipeline import bicubic_upscale
    from afm_sr.io import HeightMap

    yres, xres = field.data.shape
    hm = HeightMap(field.data, (field.xreal / xres, field.yreal / yres), channel="Gwyddion channel")
    if entry.method == "bicubic":
        return bicubic_upscale(hm, entry.scale)
    return enhance(hm, entry.scale, **arguments)


def _log(text: str) -> None:
    """Append ``text`` to the log file (cut back to its newer half past LOG_LIMIT); never fails the run."""
    path = log_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() and path.stat().st_size > LOG_LIMIT:
            path.write_bytes(path.read_bytes()[-LOG_LIMIT // 2:])
        with path.open("a", encoding="utf-8") as log:
            log.write(text if text.endswith("\n") else text + "\n")
    except OSError as exc:
        print(f"afm-sr: warning: cannot write the log {path} ({exc.strerror or exc})", file=sys.stderr)


def _fail(entry: Entry, dump_path: Path | None, problem: str) -> int:
    """Tell the user why ``entry`` failed (stderr, Gwyddion's messages, the log) and leave no channel behind."""
    from afm_sr.gwyddion import dump

    lines = [f"afm-sr: error: {entry.label}: {problem}",
             f"afm-sr: nothing was added; every run is logged in {log_file()}"]
    for line in lines:
        print(line, file=sys.stderr)
    if dump_path is None:
        return 2
    try:
        dump.write(dump_path, dump.refusal(lines))
    except AFMSRError as exc:
        print(f"afm-sr: error: {exc}", file=sys.stderr)
        return 2
    return 0  # Gwyddion reads the dump (and shows its lines) only after a zero exit code


def main(argv: Sequence[str] | None = None) -> int:
    """``ENTRY run MODE DUMPFILE`` (what Gwyddion's plug-in proxy calls through the launcher); the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    entry = ENTRIES.get(args[0]) if args else None
    if entry is None or len(args) != 4 or args[1] != "run" or args[2] not in RUN_MODES.split():
        print(f"usage: ENTRY run {RUN_MODES} DUMPFILE (ENTRY: {', '.join(ENTRIES)}); Gwyddion runs this through "
              "the launchers afm-sr gwyddion install writes", file=sys.stderr)
        return 2
    dump_path = Path(args[3])
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    clock = time.perf_counter()
    try:
        summary = run(entry, dump_path)
    except (AFMSRError, MemoryError) as exc:
        problem = str(exc) or type(exc).__name__
        _log(f"{started} {entry.label}: failed: {problem}")
        return _fail(entry, dump_path, problem)
    except Exception as exc:  # anything else still ends as a message in Gwyddion, its traceback in the log
        _log(f"{started} {entry.label}: failed:\n{traceback.format_exc()}")
        return _fail(entry, dump_path, f"unexpected {type(exc).__name__}: {exc} (the traceback is in the log)")
    _log(f"{started} {entry.label}: {summary} in {time.perf_counter() - clock:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
