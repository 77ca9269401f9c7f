"""The ``afm-sr`` command: thin argparse subcommands over the library (logic lives in afm_sr.io, ...).

A subcommand is one function ``add_<name>(subparsers)`` that registers its parser and sets
``func=<handler>``; ``main`` dispatches and turns any ``AFMSRError`` into one line on stderr.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from afm_sr.errors import AFMSRError
from afm_sr.io import FileInfo, describe

Handler = Callable[[argparse.Namespace], int]
EXIT_ERROR = 2


def _pixel_size(text: str) -> tuple[float, float]:
    """``'1e-8'`` or ``'1e-8,2e-8'`` (meters) as ``(dx, dy)``."""
    values = [float(v) for v in text.split(",")]
    if len(values) not in (1, 2) or min(values) <= 0:
        raise argparse.ArgumentTypeError("give one or two positive numbers in meters, e.g. 1e-8,2e-8")
    return (values[0], values[-1])


def add_file_options(parser: argparse.ArgumentParser) -> None:
    """Options every file-reading subcommand shares: channel, pixel size and z unit."""
    parser.add_argument("--channel", help="channel to read (default: the height/topography channel)")
    parser.add_argument("--pixel-size", type=_pixel_size, metavar="DX[,DY]",
                        help="pixel size in meters, for files that do not store it (text, bare .npy)")
    parser.add_argument("--z-unit", help="unit of the values in files that do not store it (default m)")


def _info_row(info: FileInfo) -> list[str]:
    """One table row: file, format, channels, pixels, scan size (um), height range (nm)."""
    ny, nx = info.shape
    return [info.path.name, info.format, f"{info.channel} ({len(info.channels)} channels)", f"{nx}x{ny}",
            f"{info.scan_size[0] * 1e6:.4g} x {info.scan_size[1] * 1e6:.4g}",
            f"{info.z_range[0] * 1e9:.4g} .. {info.z_range[1] * 1e9:.4g}"]


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns separated by two spaces, with a dashed rule under the header."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def run_info(args: argparse.Namespace) -> int:
    """Print one row per file; a file that fails is reported on stderr and the exit code says so."""
    rows, failed = [], 0
    for path in args.files:
        try:
            rows.append(_info_row(describe(path, args.channel, args.pixel_size, args.z_unit)))
        except AFMSRError as exc:
            print(f"afm-sr: error: {exc}", file=sys.stderr)
            failed += 1
    if rows:
        print(format_table(["file", "format", "channel read", "pixels", "scan size (um)",
                            "height range (nm)"], rows))
    return EXIT_ERROR if failed else 0


def add_info(subparsers: argparse._SubParsersAction) -> None:
    """``afm-sr info FILE...``: format, channels, pixels, scan size and height range of AFM files."""
    parser = subparsers.add_parser("info", help="show format, channels, size and height range of AFM files")
    parser.add_argument("files", nargs="+", metavar="FILE")
    add_file_options(parser)
    parser.set_defaults(func=run_info)


#: Each subcommand registers itself through one of these (enhance, check-gain, ... plug in here).
SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [add_info]


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every subcommand in SUBCOMMANDS."""
    parser = argparse.ArgumentParser(prog="afm-sr", description="Super-resolution for AFM height maps.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logging")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in SUBCOMMANDS:
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``afm-sr`` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="afm-sr: %(levelname)s: %(message)s")
    try:
        return args.func(args)
    except AFMSRError as exc:
        if args.debug:
            raise
        print(f"afm-sr: error: {exc}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
