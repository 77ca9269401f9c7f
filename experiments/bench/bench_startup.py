"""Start-up of the afm-sr commands and the Gwyddion plug-in: two checkouts side by side, fresh processes, interleaved.

Usage: ``python experiments/bench/bench_startup.py --old /tmp/afm_base [--new .] [--repeats 3]``, where ``--old``
is another checkout's root (e.g. ``git archive main afm_sr | tar -x -C /tmp/afm_base``). Each command runs as a
fresh ``python`` process with ``PYTHONPATH`` on the checkout, alternating old and new (order swapped each round) so
that load from other jobs hits both alike; the table gives the best wall time of each and old/new. The inputs are
small (a 64 px .npy, a 32 px plug-in dump) so start-up dominates; the plug-in's log goes to a temporary HOME.
Both checkouts' ``afm_sr`` are byte-compiled first (as an install is), so neither pays for compiling its sources.
"""

from __future__ import annotations

import argparse
import compileall
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import REPO, cpu_name

from afm_sr.gwyddion import dump

#: name -> arguments after ``python``; ``{dir}`` is the temporary folder.
COMMANDS = {
    "python -c 'import afm_sr.infer'": ["-c", "import afm_sr.infer"],
    "afm-sr --help": ["-m", "afm_sr.cli", "--help"],
    "afm-sr info scan.npy": ["-m", "afm_sr.cli", "info", "{dir}/scan.npy", "--pixel-size", "1e-8"],
    "afm-sr enhance scan.npy (64 px, x2, cpu)": ["-m", "afm_sr.cli", "enhance", "{dir}/scan.npy", "--scale", "2",
                                                 "--pixel-size", "1e-8", "--device", "cpu", "-o", "{dir}/out.npy",
                                                 "--force"],
    "plug-in: Bicubic x4 (32 px dump)": ["-m", "afm_sr.gwyddion.plugin", "afm_sr_bicubic_x4", "run",
                                         "noninteractive", "{dir}/dump"],
    "plug-in: Enhance x2 (32 px dump)": ["-m", "afm_sr.gwyddion.plugin", "afm_sr_enhance_x2", "run",
                                         "noninteractive", "{dir}/dump"],
}


def timed(args: list[str], tree: Path, folder: Path, scan: dump.Field) -> float:
    """Wall seconds of ``python args`` importing afm_sr from ``tree`` (the plug-in's dump rewritten first)."""
    (folder / "dump").write_bytes(scan.lines(dump.DATA))
    env = {**os.environ, "PYTHONPATH": str(tree), "HOME": str(folder)}
    command = [sys.executable, *(a.format(dir=folder) for a in args)]
    start = time.perf_counter()
    subprocess.run(command, env=env, cwd=folder, check=True, capture_output=True)
    return time.perf_counter() - start


def load() -> str:
    """The 1-minute load average."""
    return f"{os.getloadavg()[0]:.2f}"


def main() -> None:
    """Time every command for both checkouts, interleaved; print a Markdown table of best times and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", type=Path, required=True, help="root of the checkout to compare against")
    parser.add_argument("--new", type=Path, default=REPO, help="root of the checkout measured (default: this one)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    trees = {"old": args.old.resolve(), "new": args.new.resolve()}
    for tree in trees.values():
        compileall.compile_dir(tree / "afm_sr", quiet=1)
    rng = np.random.default_rng(0)
    scan = dump.Field(rng.normal(0, 1e-9, (32, 32)).cumsum(axis=1), 3.2e-7, 3.2e-7, "m", "m")
    times: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        np.save(folder / "scan.npy", rng.normal(0, 1e-9, (64, 64)).cumsum(axis=1))
        print(f"{cpu_name()}, Python {sys.version.split()[0]}, load {load()} at the start")
        for repeat in range(args.repeats):
            order = list(trees) if repeat % 2 == 0 else list(trees)[::-1]
            for label, command in COMMANDS.items():
                for which in order:
                    times.setdefault((label, which), []).append(timed(command, trees[which], folder, scan))
        print(f"load {load()} at the end\n")
    print("| command | old s | new s | old/new |\n|---|---|---|---|")
    for label in COMMANDS:
        old, new = min(times[label, "old"]), min(times[label, "new"])
        print(f"| `{label}` | {old:.2f} | {new:.2f} | {old / new:.2f} |")


if __name__ == "__main__":
    main()
