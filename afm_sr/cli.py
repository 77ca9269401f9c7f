"""The ``afm-sr`` command: thin argparse subcommands over the library (logic lives in afm_sr.io, ...).

A subcommand is one function ``add_<name>(subparsers)`` that registers its parser and sets
``func=<handler>``; ``main`` dispatches and turns any ``AFMSRError`` into one line on stderr.
"""

from __future__ import annotations

import argparse
import csv
import glob
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from afm_sr.archive import Row, parse_shard, pipelined, shard, write_summary
from afm_sr.atomic import check_destination, make_folder
from afm_sr.choices import ADAPT_PAIRS, CHECK_PAIRS, DEVICES, PRECISIONS, SUPPORTED_SCALES
from afm_sr.errors import AFMFileError, AFMSRError, InputError, Interrupted, OutputExistsError, stop_on_signals
from afm_sr.io import WRITERS, FileInfo, HeightMap, check_output, describe, read, reserve_write, write
from afm_sr.io.budget import ENV as MEMORY_ENV
from afm_sr.io.budget import parse_size
from afm_sr.io.heightmap import check_pixel_size

Handler = Callable[[argparse.Namespace], int]
EXIT_ERROR = 2


class Parser(argparse.ArgumentParser):
    """argparse with usage errors on one ``afm-sr: error:`` line, like every other error of the command."""

    def error(self, message: str) -> NoReturn:
        """Print ``afm-sr: error: <message> (see <prog> --help)`` and exit with code 2."""
        self.exit(EXIT_ERROR, f"afm-sr: error: {message} (see {self.prog} --help)\n")


def _pixel_size(text: str) -> tuple[float, float]:
    """``'1e-8'`` or ``'1e-8,2e-8'`` (meters) as ``(dx, dy)``: finite, 1 pm .. 1 mm."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not one or two numbers in meters, e.g. 1e-8,2e-8") from None
    try:
        return check_pixel_size(values)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _size(text: str) -> str:
    """A memory size such as ``8G`` or ``512M``, checked and kept as written (so messages quote it)."""
    try:
        parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _positive_int(text: str) -> int:
    """A whole number >= 1 (argparse type)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value


def add_file_options(parser: argparse.ArgumentParser) -> None:
    """Options every file-reading subcommand shares: channel, pixel size, z unit and the memory limit."""
    parser.add_argument("--channel", help="channel to read (default: the height/topography channel)")
    parser.add_argument("--pixel-size", type=_pixel_size, metavar="DX[,DY]",
                        help="pixel size in meters (1e-12 .. 1e-3), for files that do not store it (text, bare .npy)")
    parser.add_argument("--z-unit", help="unit of the values in files that do not store it (default m)")
    parser.add_argument("--memory-limit", type=_size, metavar="SIZE",
                        help=f"memory the decoded files, results and work arrays may take, e.g. 8G (default: "
                             f"${MEMORY_ENV}, else half of the available memory)")


#: A file name may hold line breaks; in an error line they are shown escaped, so it stays one line.
_ONE_LINE = str.maketrans({"\n": "\\n", "\r": "\\r"})


def _error_line(exc: BaseException, subject: object = None) -> str:
    """The one ``afm-sr: error:`` line for ``exc``; ``subject`` (an input file) leads where the message names none."""
    if isinstance(exc, OutputExistsError):
        return f"afm-sr: error: {exc.advice('--force')}".translate(_ONE_LINE)
    text = (f"out of memory ({exc or type(exc).__name__}); free memory or lower --memory-limit so such work is "
            "refused before it starts") if isinstance(exc, MemoryError) else str(exc)
    named = isinstance(exc, AFMFileError) and exc.path is not None
    line = f"afm-sr: error: {text}" if named or subject is None else f"afm-sr: error: {subject}: {text}"
    return line.translate(_ONE_LINE)


def _pixels_and_size(shape: tuple[int, int], scan_size: tuple[float, float]) -> list[str]:
    """Pixels as ``nx x ny`` and the scan size in um."""
    return [f"{shape[1]}x{shape[0]}", f"{scan_size[0] * 1e6:.4g} x {scan_size[1] * 1e6:.4g}"]


def _range(z_range: tuple[float, float], unit: str) -> str:
    """A value range with its unit: heights in nm, anything else in its SI unit."""
    if unit == "m":
        return f"{z_range[0] * 1e9:.4g} .. {z_range[1] * 1e9:.4g} nm"
    return f"{z_range[0]:.4g} .. {z_range[1]:.4g} {unit or '(no unit)'}"


def _info_row(info: FileInfo) -> list[str]:
    """One table row: file, format, channel read, pixels, scan size (um), value range with its unit."""
    count = f"{len(info.channels)} channel{'s' * (len(info.channels) != 1)}"
    if info.channel is None or info.z_range is None:
        return [info.path.name, info.format, f"no height channel ({count}: see --channels)", "", "", ""]
    return [info.path.name, info.format, f"{info.channel.name} ({count})",
            *_pixels_and_size(info.channel.shape, info.channel.scan_size), _range(info.z_range, info.channel.z_unit)]


def _channel_rows(info: FileInfo) -> list[list[str]]:
    """One row per channel: file, channel, unit, pixels, scan size (um), and whether it is the one read."""
    return [[info.path.name, ch.name, ch.z_unit or "(no unit)", *_pixels_and_size(ch.shape, ch.scan_size),
             "yes" if info.channel is not None and ch.name == info.channel.name else ""] for ch in info.channels]


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns separated by two spaces, with a dashed rule under the header."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def run_info(args: argparse.Namespace) -> int:
    """Print one row per file (per channel with ``--channels``); a file that fails goes to stderr, exit code 2."""
    rows, failed = [], 0
    for path in args.files:
        try:
            info = describe(path, args.channel, args.pixel_size, args.z_unit, args.memory_limit)
        except (AFMSRError, MemoryError) as exc:
            print(_error_line(exc, path), file=sys.stderr)
            failed += 1
            continue
        rows += _channel_rows(info) if args.channels else [_info_row(info)]
    if rows and args.channels:
        print(format_table(["file", "channel", "unit", "pixels", "scan size (um)", "read"], rows))
    elif rows:
        print(format_table(["file", "format", "channel read", "pixels", "scan size (um)", "value range"], rows))
    return EXIT_ERROR if failed else 0


def add_info(subparsers: argparse._SubParsersAction) -> None:
    """``afm-sr info FILE...``: format, channels, pixels, scan size and height range of AFM files."""
    parser = subparsers.add_parser("info", help="show format, channels, size and height range of AFM files")
    parser.add_argument("files", nargs="+", metavar="FILE")
    parser.add_argument("--channels", action="store_true",
                        help="list every channel of each file with its unit, pixels and scan size")
    add_file_options(parser)
    parser.set_defaults(func=run_info)


def _expand(patterns: Sequence[str]) -> tuple[list[Path], list[str]]:
    """Files named by each argument, expanding globs the shell left alone; patterns that match nothing apart."""
    files: list[Path] = []
    unmatched: list[str] = []
    for pattern in patterns:
        if any(c in pattern for c in "*?[") and not Path(pattern).exists():
            matches = sorted(glob.glob(pattern, recursive=True))
            files += [Path(m) for m in matches]
            unmatched += [] if matches else [pattern]
        else:
            files.append(Path(pattern))
    return files, unmatched


def _destination(src: Path, args: argparse.Namespace, into_folder: bool) -> Path:
    """Where the enhanced ``src`` goes: ``-o`` FILE, or ``<stem>_x<s>.<format>`` in ``-o`` FOLDER or beside it."""
    name = f"{src.stem}_x{args.scale}.{args.format or 'gwy'}"
    if args.output is None:
        return src.with_name(name)
    if into_folder:
        return args.output / name
    if args.format and args.output.suffix.lower().lstrip(".") not in {args.format, "tif" if args.format == "tiff"
                                                                     else args.format}:
        raise InputError(f"-o {args.output} and --format {args.format} disagree; drop one of them")
    return args.output


#: Why a path a run already holds cannot be written: one of its inputs, or an earlier input's output.
INPUT, OUTPUT = ("is an input of this run: afm-sr never writes over its inputs, even with --force",
                 "is also the output of an earlier input of this run; give -o a folder or rename the inputs")


def _claim(path: Path, force: bool, claimed: dict[Path, str],
           check: Callable[[Path, bool], object] = check_output) -> Path:
    """``path`` if ``check`` passes (a height-map format, writable, new or --force), not an input or earlier output."""
    if path.resolve() in claimed:
        raise AFMFileError(path, claimed[path.resolve()])
    check(path, force)
    claimed[path.resolve()] = OUTPUT
    return path


def run_enhance(args: argparse.Namespace) -> int:
    """Enhance each file (one read ahead, one written behind), isolating failures; non-zero exit if any failed."""
    from afm_sr.infer import load_model, resolve_device, resolve_precision

    if args.resume and args.force:
        raise InputError("--resume keeps existing outputs and --force replaces them: pass one of them")
    resolve_precision(args.precision, resolve_device(args.device))  # bad options fail once, before any file
    model = load_model(args.model)
    files, unmatched = _expand(args.inputs)
    files = shard(files, *args.shard) if args.shard else files
    for pattern in unmatched:
        print(f"afm-sr: error: {pattern}: no file matches", file=sys.stderr)
    # os.path.isdir is False (no OSError) for a name too long to look up; _claim then says what is wrong with it
    into_folder = args.output is not None and (len(files) > 1 or os.path.isdir(args.output) or not args.output.suffix)
    if into_folder and files:
        make_folder(args.output)
    archive = into_folder and (len(files) > 1 or args.shard is not None)  # one file needs no table
    summary = args.summary or (args.output / _summary_name(args.shard) if archive else None)
    if summary is not None:
        check_destination(summary, args.force or args.resume)
    earlier = _earlier_rows(summary) if args.resume else {}
    claimed = dict.fromkeys((f.resolve() for f in files), INPUT)
    jobs, rows = [], []
    for src in files:
        try:
            dest = _destination(src, args, into_folder)
            if args.resume and dest.exists():
                rows.append(earlier.get(str(src), Row(str(src), str(dest), "skipped", message="output existed")))
                continue
            dest = _claim(dest, args.force, claimed)
            preview = (_claim(dest.with_name(f"{dest.stem}_preview.png"), args.force, claimed, check_destination)
                       if args.preview else None)
        except AFMSRError as exc:
            print(_error_line(exc, src), file=sys.stderr)
            rows.append(Row(str(src), "", "failed", message=str(exc)))
            continue
        jobs.append((src, dest, preview))
    try:
        _enhance_jobs(jobs, model, args, rows)
    finally:
        if summary is not None:
            write_summary(rows, summary, overwrite=args.force or args.resume)
    return EXIT_ERROR if unmatched or any(row.status == "failed" for row in rows) else 0


Job = tuple[Path, Path, Path | None]


def _enhance_jobs(jobs: list[Job], model: object, args: argparse.Namespace, rows: list[Row]) -> None:
    """Run the jobs through ``pipelined``; one line per file (with files/s and ETA), a row each in ``rows``."""
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    from afm_sr.infer import enhance, save_preview

    tiles = tqdm(desc="tiles", unit="tile", leave=False, disable=None, position=1)
    tile_progress, adapt_progress = _bar_progress(tiles), _bar_progress(tiles, "adapting")

    def read_job(job: Job) -> HeightMap:
        return read(job[0], args.channel, args.pixel_size, args.z_unit, args.memory_limit)

    def compute(job: Job, hm: HeightMap) -> tuple[HeightMap, HeightMap]:
        reserve_write(job[1], (hm.shape[0] * args.scale, hm.shape[1] * args.scale), args.memory_limit)
        tiles.reset()
        out = enhance(hm, args.scale, model, level_plane=args.level, device=args.device, precision=args.precision,
                      tile=args.tile, progress=tile_progress, memory_limit=args.memory_limit, adapt=args.adapt,
                      seed=args.seed, adapt_progress=adapt_progress, adapt_pairs=args.adapt_pairs,
                      check_pairs=args.check_pairs)
        if "afm_sr_self_check" in out.metadata:
            tqdm.write(f"{job[0].name}: {out.metadata['afm_sr_self_check']}")
        return hm, out

    def write_job(job: Job, pair: tuple[HeightMap, HeightMap]) -> None:
        src, dest, preview = job
        if preview is not None:  # the preview first: an existing output means its file is complete (--resume)
            save_preview(*pair, preview, title=f"{src.name} x{args.scale}", level_plane=args.level)
        write(pair[1], dest, overwrite=args.force, memory_limit=args.memory_limit)

    def undo(job: Job) -> None:  # a write that finished after the run was stopped: not reported, so not left
        if not args.force:
            for path in (job[1], job[2]):
                if path is not None:
                    path.unlink(missing_ok=True)

    start = time.perf_counter()
    with logging_redirect_tqdm(), tqdm(total=len(jobs), desc="files", unit="file", disable=None, position=0) as bar:
        for n, done in enumerate(pipelined(jobs, read_job, compute, write_job, undo), 1):
            bar.update(1)
            (src, dest, preview), pace = done.item, _pace(n, len(jobs), time.perf_counter() - start)
            if done.error is not None:
                tqdm.write(_error_line(done.error, src), file=sys.stderr)
                rows.append(Row(str(src), str(dest), "failed", message=str(done.error)))
                continue
            hm, out = done.result
            gain = out.metadata.get("afm_sr_estimated_gain_db", "")
            rows.append(Row(str(src), str(dest), "ok", f"{hm.shape[1]}x{hm.shape[0]}", f"{out.shape[1]}x{out.shape[0]}",
                            str(gain), f"{done.seconds:.3f}"))
            tqdm.write(f"{src} -> {dest} ({hm.shape[1]}x{hm.shape[0]} -> {out.shape[1]}x{out.shape[0]} px, scan size "
                       f"{out.scan_size[0] * 1e6:.4g} x {out.scan_size[1] * 1e6:.4g} um"
                       + (f", preview {preview.name}" if preview else "") + f", {done.seconds:.2f} s) {pace}")
    tiles.close()


def _pace(done: int, total: int, elapsed: float) -> str:
    """``[done/total, files/s, ETA]`` for the line of a file off a terminal."""
    rate = done / max(elapsed, 1e-9)
    eta = (total - done) / rate
    return f"[{done}/{total}, {rate:.2f} files/s, ETA {int(eta // 60)}:{int(eta % 60):02d}]"


def _summary_name(shard_spec: tuple[int, int] | None) -> str:
    """The summary table's file name in the output folder (one per shard of an array job)."""
    return "enhance_summary.csv" if shard_spec is None else f"enhance_summary_{shard_spec[0]}-of-{shard_spec[1]}.csv"


def _earlier_rows(summary: Path | None) -> dict[str, Row]:
    """The rows of a stopped run's summary, by input file (empty where there is none), for files it finished."""
    if summary is None or not summary.is_file():
        return {}
    with summary.open(newline="", encoding="utf-8") as handle:
        return {r["file"]: Row(**r) for r in csv.DictReader(handle) if r.get("status") in {"ok", "skipped"}}


def _bar_progress(bar: object, what: str = "tiles") -> Callable[[int, int], None]:
    """A ``progress(done, total)`` callback that shows ``what`` on the tqdm ``bar``."""

    def progress(done: int, total: int) -> None:
        bar.set_description_str(what, refresh=False)
        bar.total = total
        bar.n = done
        bar.refresh()

    return progress


def add_adapt_options(parser: argparse.ArgumentParser, default: bool | None) -> None:
    """``--adapt/--no-adapt`` (learn from the scan's own pairs first) and ``--seed``."""
    parser.add_argument("--adapt", action=argparse.BooleanOptionalAction, default=default,
                        help="fine-tune a copy of the model on the scan's own pairs (the scan downscaled by S) first "
                             "and use it where it beats the model on held-out scan lines"
                             + (" (default: where experiments/adapt measured a gain)" if default is None else ""))
    parser.add_argument("--seed", type=int, default=0, help="seed of the adaptation's random crops (default 0)")


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """Options of every subcommand that runs the network: weights, device, precision, tile, leveling."""
    parser.add_argument("--scale", type=int, choices=SUPPORTED_SCALES, default=4, help="scale factor (default 4)")
    parser.add_argument("--model", default="default",
                        help="'default' (the packaged model), a checkpoint from train.py or exported .safetensors")
    parser.add_argument("--level", action=argparse.BooleanOptionalAction, default=False,
                        help="subtract the least-squares plane first (default: heights as in the file)")
    parser.add_argument("--device", default="auto", help=f"{', '.join(DEVICES)} or cuda:N (default auto)")
    parser.add_argument("--precision", choices=list(PRECISIONS), default="32", help="convolution precision")
    parser.add_argument("--tile", type=_tile, default="auto", metavar="PX",
                        help="output tile side in pixels or 'auto' (default: the whole image where its network "
                             "activations fit the memory limit, else the largest strips or tiles that do), bounds "
                             "memory; the result does not depend on it")


def _shard(text: str) -> tuple[int, int]:
    """``--shard``: I/N with 0 <= I < N."""
    try:
        return parse_shard(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _tile(text: str) -> int | str:
    """``--tile``: 'auto' or a whole number of output pixels >= 1."""
    return text if text == "auto" else _positive_int(text)


def add_enhance(subparsers: argparse._SubParsersAction) -> None:
    """``afm-sr enhance INPUT... --scale S``: super-resolved height maps in meters, same scan size."""
    parser = subparsers.add_parser("enhance", help="upscale AFM height maps with the model (same scan size, meters)")
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="AFM files or glob patterns")
    parser.add_argument("-o", "--output", type=Path,
                        help="output file (one input) or folder (default: beside each input, <name>_x<S>.gwy)")
    parser.add_argument("--format", choices=sorted({suffix.lstrip(".") for suffix in WRITERS} - {"tif"}),
                        help="output format (default gwy, or the suffix of -o FILE)")
    parser.add_argument("--force", action="store_true", help="replace existing outputs")
    parser.add_argument("--resume", action="store_true",
                        help="skip inputs whose output exists (a stopped run's finished files: outputs are written "
                             "atomically, so an existing one is complete) and update the summary table")
    parser.add_argument("--shard", type=_shard, metavar="I/N",
                        help="enhance only every N-th file from the I-th (0 <= I < N), e.g. "
                             "--shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT in a SLURM array")
    parser.add_argument("--summary", type=Path, metavar="CSV",
                        help="write the table of files, pixels, self-check gain and seconds here (default: "
                             "enhance_summary.csv in the -o folder when it receives several files or a shard)")
    parser.add_argument("--preview", action="store_true",
                        help="also write <output>_preview.png: input | bicubic | afm-sr in nm, one colour scale, "
                             "with zoomed crops where they differ most")
    add_model_options(parser)
    add_adapt_options(parser, None)
    parser.add_argument("--adapt-pairs", choices=ADAPT_PAIRS, default=None,
                        help="how the scan is downscaled into its own pairs: bicubic (as check-gain and the "
                             "self-check degrade) or trained (as the model's weights record it trained, e.g. v0.4: "
                             "bicubic or randomized acquisitions); default: the scale's measured recipe (bicubic at "
                             "x2)")
    parser.add_argument("--check-pairs", choices=CHECK_PAIRS, default=CHECK_PAIRS[0],
                        help="what the printed self-check assumes a coarser scan of your sample is: instrument "
                             "(each pixel averaged along the fast axis; default) or bicubic (the paper's protocol, "
                             "which promises more than real acquisitions give)")
    add_file_options(parser)
    parser.set_defaults(func=run_enhance)


def run_check_gain(args: argparse.Namespace) -> int:
    """Print PSNR/SSIM of bicubic and afm-sr per file under the paper's protocol."""
    from afm_sr.infer import check_gain, load_model, resolve_device, resolve_precision

    resolve_precision(args.precision, resolve_device(args.device))
    model = load_model(args.model)
    rows, failed = [], 0
    for path in args.files:
        try:
            res = check_gain(read(path, args.channel, args.pixel_size, args.z_unit, args.memory_limit), args.scale,
                             model, level_plane=args.level, device=args.device, precision=args.precision,
                             tile=args.tile, memory_limit=args.memory_limit, adapt=args.adapt, seed=args.seed)
        except (AFMSRError, MemoryError) as exc:
            print(_error_line(exc, path), file=sys.stderr)
            failed += 1
            continue
        pixels = f"{res.shape[1]}x{res.shape[0]}"
        rows += [[Path(path).name, pixels, "bicubic", f"{res.bicubic_psnr:.2f}", f"{res.bicubic_ssim:.4f}"],
                 [Path(path).name, pixels, _method(res), f"{res.model_psnr:.2f}", f"{res.model_ssim:.4f}"],
                 ["", "", "gain", f"{res.psnr_gain:+.2f}", f"{res.ssim_gain:+.4f}"]]
        if res.self_check is not None:
            rows.append(["", "", f"estimated ({res.self_check.used})", f"{res.self_check.gain:+.2f}", ""])
            print(f"{Path(path).name}: {res.self_check.message()}")
    if rows:
        print(f"x{args.scale}: each scan clipped to its 2.5..97.5th percentile and z-scored, bicubic-downscaled by "
              f"{args.scale}, restored by bicubic and by afm-sr; range01 PSNR/SSIM, border {args.scale} px")
        print(format_table(["file", "HR pixels", "method", "PSNR (dB)", "SSIM"], rows))
    return EXIT_ERROR if failed else 0


def _method(res: object) -> str:
    """``afm-sr``, or ``afm-sr adapted`` where check-gain --adapt used the adapted model."""
    check = getattr(res, "self_check", None)
    return "afm-sr adapted" if check is not None and check.used == "adapted" else "afm-sr"


def add_check_gain(subparsers: argparse._SubParsersAction) -> None:
    """``afm-sr check-gain FILE... --scale S``: what the model gains over bicubic on your own HR scans."""
    parser = subparsers.add_parser("check-gain", help="degrade your high-resolution scan, restore it with bicubic "
                                                      "and afm-sr, print PSNR/SSIM of both")
    parser.add_argument("files", nargs="+", metavar="FILE")
    add_model_options(parser)
    add_adapt_options(parser, False)
    add_file_options(parser)
    parser.set_defaults(func=run_check_gain)


def _json_object(text: str) -> dict:
    """A JSON object given on the command line (argparse type)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not valid JSON: {err}") from err
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object, e.g. '{\"2\": {\"psnr\": 0.5, \"ssim\": 0.01}}'")
    return value


def _gains(text: str) -> dict[int, dict[str, float]]:
    """Measured gains as JSON, checked: scales 2/4/8 mapping to ``{"psnr": dB, "ssim": delta}`` (argparse type)."""
    from afm_sr.infer import check_gains

    try:
        return check_gains(_json_object(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _degradation(text: str) -> dict:
    """A degradation config node: inline JSON or a YAML/JSON file like conf/degradation/robust.yaml (argparse type)."""
    if text.lstrip().startswith("{"):
        return _json_object(text)
    import yaml  # only here: the CLI's start-up stays light

    try:
        node = yaml.safe_load(Path(text).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise argparse.ArgumentTypeError(f"{text}: cannot be read as YAML or JSON ({err})") from err
    if not isinstance(node, dict):
        raise argparse.ArgumentTypeError(f"{text}: expected a degradation config node (a mapping with a _target_)")
    return node


def run_export(args: argparse.Namespace) -> int:
    """Write the checkpoint's weights as .safetensors with architecture, gains, training degradation and notes."""
    from afm_sr.infer import export_weights

    out = export_weights(args.checkpoint, args.output, extra_metadata=args.notes, gains=args.gains,
                         overwrite=args.force, degradation=args.degradation)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB)")
    return 0


def add_export(subparsers: argparse._SubParsersAction) -> None:
    """``afm-sr export CKPT OUT``: small, pickle-free weights for ``enhance --model`` or shipping."""
    parser = subparsers.add_parser("export", help="turn a train.py checkpoint into .safetensors weights")
    parser.add_argument("checkpoint", help="a train.py checkpoint (.ckpt) or weights file")
    parser.add_argument("output", help="the .safetensors file to write")
    parser.add_argument("--gains", type=_gains, default=None,
                        help="measured gain over bicubic per scale as JSON, e.g. "
                             "'{\"2\": {\"psnr\": 0.5, \"ssim\": 0.01}}'; enhance warns where it is not positive")
    parser.add_argument("--degradation", type=_degradation, default=None,
                        help="what the network trained on, for weights made by other means (e.g. averaged): a "
                             "degradation config node as a YAML/JSON file (conf/degradation/*.yaml, resolved) or "
                             "inline JSON; adapt's trained pairs use it (default: what the checkpoint records)")
    parser.add_argument("--notes", type=_json_object, default=None,
                        help="free-form metadata as a JSON object (data, steps, licences, ...)")
    parser.add_argument("--force", action="store_true", help="replace an existing output file")
    parser.set_defaults(func=run_export)


def run_gwyddion(args: argparse.Namespace) -> int:
    """Install or uninstall the Gwyddion plug-in and say what was written or removed, and where."""
    from afm_sr.gwyddion.entries import ENTRIES, log_file, options_file
    from afm_sr.gwyddion.install import install, uninstall

    if args.action == "install":
        report = install(args.dir)
        print(f"installed {len(ENTRIES)} Gwyddion plug-ins in {report.folder} (a launcher and its .rgi file each, "
              "and afm-sr-plugins.json):")
        print("\n".join(f"  {entry.menu}" for entry in ENTRIES.values()))
        print(f"they run {sys.executable}; restart Gwyddion to see them. Options: {options_file()} "
              f"(see README.md), log: {log_file()}")
        return 0
    report = uninstall(args.dir)
    print(f"removed {len(report.done)} files from {report.folder}" + "".join(f"\n  {name}" for name in report.done))
    for name, why in report.kept.items():
        print(f"left {report.folder / name}: {why}")
    return 0


def add_gwyddion(subparsers: argparse._SubParsersAction) -> None:
    """``afm-sr gwyddion install|uninstall [--dir D]``: the Data Process > Plug-Ins > afm-sr menu in Gwyddion."""
    from afm_sr.gwyddion.entries import default_plugin_dir

    parser = subparsers.add_parser("gwyddion", help="install or remove the Gwyddion plug-in (Data Process > "
                                                    "Plug-Ins > afm-sr)")
    parser.add_argument("action", choices=["install", "uninstall"],
                        help="install: write the plug-in's files (again); uninstall: remove exactly those")
    parser.add_argument("--dir", type=Path, default=default_plugin_dir(),
                        help="Gwyddion's plug-in folder for data processing (default: %(default)s)")
    parser.set_defaults(func=run_gwyddion)


#: Each subcommand registers itself through one of these (enhance, check-gain, ... plug in here).
SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [add_info, add_enhance, add_check_gain,
                                                                      add_export, add_gwyddion]


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every subcommand in SUBCOMMANDS."""
    parser = Parser(prog="afm-sr", description="Super-resolution for AFM height maps.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logging")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in SUBCOMMANDS:
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``afm-sr`` console script; returns the exit code.

    Errors print one ``afm-sr: error:`` line (exit 2); SIGINT/SIGTERM stop the run through its cleanup (no
    partial output is left) with one line and exit code 130/143.
    """
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="afm-sr: %(levelname)s: %(message)s")
    try:
        with stop_on_signals():
            return args.func(args)
    except Interrupted as exc:
        print(f"afm-sr: error: {exc}; outputs finished before it are complete, no partial file was left",
              file=sys.stderr)
        return exc.exit_code
    except (AFMSRError, MemoryError) as exc:
        if args.debug:
            raise
        print(_error_line(exc), file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
