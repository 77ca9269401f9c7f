"""Rebuild ~/data/afm-extra: real AFM/STM height maps from public repositories, beyond shared/afm-train.

Needs the fetched git snapshots (mirrors) of every repository in SOURCES under --mirrors (default
/work/.mirror, one folder ``owner+name/repo`` each, as the team's ``fetch`` tool leaves them) at the commits
listed; a missing mirror or commit stops the build with one line naming it. Nothing is downloaded here.

    python experiments/data/build_extra.py                    # -> ~/data/afm-extra
    python experiments/data/build_extra.py --out DIR --force  # rebuild over an existing folder

Writes ``<source>__<file stem>[__<k>].npy`` (float32 metres, row 0 = top as Gwyddion shows it), index.csv (the
columns of shared/afm-train/index.csv; ``group=`` in notes marks rescans of one area), LICENSES/, README.md and
contact_sheet.png. Maps that are (up to flips, scale and offset) a file of shared/afm-samples, or already in
shared/afm-train, are dropped, as are near-copies inside this set; see experiments/data/README.md.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from afm_sr.atomic import Fill, make_folder, remove_stale_temp_folders, temp_folder
from afm_sr.errors import AFMSRError
from afm_sr.io import HeightMap, list_channels, read
from afm_sr.preprocess import plane_level

SHARED = Path(os.environ.get("AFM_SR_SHARED", Path(__file__).resolve().parents[3] / "shared"))
FIELDS = ("file", "source_repo", "commit", "source_path", "licence", "copyright", "instrument_or_format", "channel",
          "sample", "ny", "nx", "pixel_size_x_m", "pixel_size_y_m", "notes")
MIN_SIDE = 64
#: Levelled correlation above which two maps of one shape are one measurement (a copy, a rescaled export).
SAME = 0.99
#: Levelled correlation above which two maps of one source are rescans of one area (afm-train's rule).
RESCAN = 0.92

#: Repositories never used, whatever they hold: the zoom-pair benchmark's sources (issue 21) and the test set's
#: files are kept out; afm-train's sources are already in shared/afm-train.
EXCLUDED_REPOS = {
    "cgevans/convert-nanoscope-test-files": "DNA-origami scan + zoom pairs (one Bruker instrument) of the issue-21 "
                                            "real-pair benchmark",
    "ethz-micro/matlab_nanonis": "Si(111)7x7 STM at 200, 50 and 20 nm (Si_7x7_200x200/50x50/20x20 and 012/028/032/"
                                 "051): a scan + zoom series, kept for the real-pair benchmark",
}


@dataclass(frozen=True)
class Source:
    """One repository at one commit: which files to take, how, and under which licence."""

    key: str
    repo: str
    commit: str
    include: str  # regex over paths at the commit
    licence: str
    licence_files: tuple[str, ...]
    copyright: str
    instrument: str
    sample: str
    channels: tuple[str, ...] = ()  # preferred channel names, in order; empty: afm_sr.io.read's height channel
    exclude: str = "^$"
    every: int = 1  # keep every n-th matching file (a long series of one area)
    note: str = ""
    series: bool = False  # every map is a frame of one area: one group for all
    left_out: str = ""  # files ``exclude`` leaves out, and why (README)
    siblings: str = ""  # shared/afm-samples files from this repository (other scans, maybe of one lab/session)


SOURCES = (
    Source("scifi", "pycroscopy/SciFiDatasets", "0c977f2f0db47514f3b0c0c79ad698ddc8fddd71",
           r"^data/microscopy/spm/GwiddionReader_bipm\.gwy$", "MIT", ("LICENSE",), "Copyright (c) 2021 pycroscopy",
           "Gwyddion .gwy (GWYP)", "Gwyddion sample file 'bipm' (a BIPM measurement, 5 x 5 um)",
           siblings="SciFiDatasets__* (other samples)"),
    Source("spmtycoon", "alexriss/SpmImageTycoon.jl", "1d53d9f88916b90715faea5ff1b0568f678e2e10",
           r"^test/data/Image_\d+\.sxm$", "GPL-3.0", ("LICENSE",), "Alex Riss (SpmImageTycoon.jl authors)",
           "Nanonis .sxm, low-temperature STM/AFM (constant current)",
           "LT-STM topography (Z forward), atomic/molecular scale, 2012 sessions", channels=("Z (Forward)",),
           exclude=r"Image_(166|661)\.sxm$|empty\.sxm$",
           left_out="Image_166/661 (test-set files), empty.sxm (no data)",
           siblings="SpmImageTycoon.jl__Image_166.sxm, SpmImageTycoon.jl__Image_661.sxm"),
    Source("afmanalysis", "ifidontrelapse/AFM-analysis", "685551a2bc036014e40f069a6fbfba1bbd7f982a",
           r"^data/5\.011$", "Apache-2.0", ("LICENSE",), "AFM-analysis authors (ifidontrelapse)",
           "Bruker NanoScope .011", "gold nanoparticles on a flat substrate (the repository's example)"),
    Source("streptavidin", "onaib-faisal/pNanolocz-FileReaders", "05374b3a840f843c2630b99e26636251de51b347",
           r"^Data/Streptavidin imaging-12\.08\.46\.399/.*\.jpk$", "GPL-3.0-or-later", ("LICENSE",),
           "Onaib Faisal (pNanoLocz file readers), University of Leeds", "JPK NanoWizard high-speed series (.jpk)",
           "streptavidin 2D crystal, 85 nm frames 2.6 s apart (2023-02-16)", channels=("Height (retrace)",), every=3,
           exclude=r"12\.08\.46\.436\.jpk$", series=True, note="every 3rd frame of a 58-frame series of one area",
           left_out="the first frame (12.08.46.436, drift-dominated) and two of every three frames (near-repeats)"),
    Source("pnanolocz", "onaib-faisal/pNanolocz-FileReaders", "05374b3a840f843c2630b99e26636251de51b347",
           r"^Data/SBS-PS_example_data\.gwy$", "GPL-3.0-or-later", ("LICENSE",),
           "Onaib Faisal (pNanoLocz file readers), University of Leeds", "Gwyddion .gwy (Nanosurf force map)",
           "SBS-PS polymer blend (force-map topography)", channels=("Topography",),
           left_out="Data/tops70s14_190g0000.ibw (Asylum: 1.6 nm of stripy noise over 20 um, no structure)"),
    Source("afmreader", "AFM-SPM/AFMReader", "062b98453fb6abae9b7a9312f164ac82f771c6a4",
           r"^tests/resources/sample_1_um_scale\.(stp|top)$", "GPL-3.0", ("COPYING",),
           "AFMReader authors (Sylvia Whittle, Neil Shephard, TopoStats team), University of Sheffield",
           "WSxM .stp/.top", "AFMReader test scan 'sample_1' (2 x 2 um); sample_0.* are test-set files",
           exclude=r"sample_0", siblings="AFMReader__sample_0.* (row-levelled correlation with this scan 0.04)"),
    Source("nanolocz", "George-R-Heath/NanoLocz", "e41575c9c0f40d4ca5d9d4b1dd0b092e792d5892",
           r"^Example Data/Example FastScan series/.*\.001$", "GPL-3.0", ("LICENSE",),
           "George R. Heath (NanoLocz authors), University of Leeds", "Bruker FastScan NanoScope .001 (Height Sensor)",
           "NanoLocz example FastScan series (three scans, 100 x 63 nm)", channels=("Height Sensor", "Height"),
           series=True,
           left_out="Example Data/Example_ibw.ibw (the same noise scan as pNanoLocz's tops70s14_190g0000.ibw)"),
    Source("nsfopen", "syrupface/NSFopen", "4ec56c00289e942065ac662cac4ed872fcf69c63",
           r"^NSFopen/(example|process)/.*\.nid$", "MIT", ("NSFopen/LICENSE",), "Copyright (c) 2020 syrupface",
           "Nanosurf .nid", "Nanosurf example scans: calibration grid, sapphire, SBS-PMMA blend, "
           "a 50 um sample", channels=("Z-Axis forward", "Topography forward"),
           exclude=r"(circles|circles_holes|squares_holes)\.nid$",
           left_out="2D_Plane_Removal/circles, circles_holes, squares_holes (perfect patterns: likely the Nanosurf "
                    "software's simulated sample)"),
    Source("probeflow", "SPMQT-Lab/ProbeFlow", "756611eb50acb975768465d9a5f349ba487f8432",
           r"^test_data/nanonis\.sxm$", "MIT", ("LICENSE",), "Copyright (c) 2026 SPMQT-Lab and contributors",
           "Nanonis .sxm STM", "STM topography, 10 nm (ProbeFlow test file)", channels=("Z (Forward)",)),
    Source("pyspm", "scholi/pySPM", "cabe10724ff2dfcc57ab299c091fb3080f226830", r"^pySPM/data/test\.sxm$",
           "Apache-2.0", ("LICENSE",), "Olivier Scholder (pySPM author)", "Nanonis .sxm STM",
           "pySPM's Nanonis test image (5 x 5 um STM topography)", channels=("Z (Forward)",),
           note="file removed from the repository later; taken at the commit that added it"),
    Source("spmtycoon", "alexriss/SpmImageTycoon.jl", "52a2c2c3f9825c7d810aa9554ac70901e7d24baf",
           r"^test/data/Image_(152|403|666)\.sxm$", "GPL-3.0", ("LICENSE",), "Alex Riss (SpmImageTycoon.jl authors)",
           "Nanonis .sxm, low-temperature STM/AFM (constant current)",
           "LT-STM topography (Z forward), 2012 sessions (test files removed from the repository later)",
           channels=("Z (Forward)",), siblings="SpmImageTycoon.jl__Image_166.sxm, SpmImageTycoon.jl__Image_661.sxm"),
    Source("scifi", "pycroscopy/SciFiDatasets", "2860098ed7af1250a594f036e06239307805cb13",
           r"^data/microscopy/spm/afm/wsxm/WSxM2DReader_jumpingmodeimage_0002_Topography\.f\.dy\.top$", "MIT",
           ("LICENSE",), "Copyright (c) 2021 pycroscopy", "WSxM .top (Nanotec jumping mode)",
           "WSxM reader test image: jumping-mode topography, 15 x 15 um", siblings="SciFiDatasets__* (other samples)"),
    Source("snom", "Hajo376/SNOM_AFM_analysis", "93cb21ee9bd858b6dd619a650bfc3e312ba63425",
           r"^example_measurements/.* Z C\.gsf$", "MIT", ("LICENSE",), "Copyright (c) 2025 Hans-Joachim Schill",
           "Neaspec (attocube) s-SNOM, AFM topography channel 'Z C' (.gsf)",
           "s-SNOM samples: plasmonic/dielectric waveguides, PMMA wedges on gold, nanostructure arrays",
           note="Neaspec 'Z C' = the instrument's corrected topography; example data removed from the repository "
                "later (the repository's licence became GPL-3.0 afterwards; MIT at this commit)"),
    Source("pynxspm", "FAIRmat-NFDI/pynxtools-spm", "c2d9e3707f07d238c5b9f12a87f6cfff619aa314",
           r"^tests/data/cronJobTest/nanonis1/stm/version_gen_4_5/STM_nanonis_generic_4_5\.sxm$", "Apache-2.0",
           ("LICENSE",), "FAIRmat-NFDI (pynxtools-spm authors)", "Nanonis .sxm STM (generic 4.5)",
           "pynxtools-spm STM test image (4 x 4 nm, constant current)", channels=("Z (Forward)",),
           left_out="the AFM/STM test files at HEAD (Z recorded in constant height: flat)"),
)


class BuildError(AFMSRError):
    """A missing mirror or commit, or an output that cannot be made: one line for the user."""


def git_dir(mirrors: Path, src: Source) -> Path:
    """The snapshot's git directory, checked to hold ``src.commit``; BuildError naming what to fetch if not."""
    base = mirrors / src.repo.replace("/", "+") / "repo"
    gdir = base / ".git" if (base / ".git").is_dir() else base
    if not gdir.is_dir():
        raise BuildError(f"source {src.key!r} needs the mirror of {src.repo} at {base}: fetch github:{src.repo} "
                         "first (or pass --mirrors)")
    ok = subprocess.run(["git", "-C", str(gdir), "cat-file", "-e", f"{src.commit}^{{commit}}"], capture_output=True)
    if ok.returncode:
        raise BuildError(f"the mirror of {src.repo} at {gdir} lacks commit {src.commit[:12]}: fetch it again")
    return gdir


def git_paths(gdir: Path, commit: str) -> list[str]:
    """Every file path at ``commit`` whose content the snapshot holds (large/LFS files may be absent)."""
    out = subprocess.run(["git", "-C", str(gdir), "ls-tree", "-r", "-z", "-l", commit], capture_output=True,
                         check=True).stdout.decode()
    paths = []
    for entry in filter(None, out.split("\0")):
        meta, path = entry.split("\t", 1)
        if meta.split()[1] == "blob":
            paths.append(path)
    return paths


def git_blob(gdir: Path, commit: str, path: str) -> bytes | None:
    """The bytes of ``path`` at ``commit``, None where the snapshot lacks them."""
    run = subprocess.run(["git", "-C", str(gdir), "show", f"{commit}:{path}"], capture_output=True)
    return run.stdout if run.returncode == 0 else None


def levelled(z: np.ndarray) -> np.ndarray:
    """Plane-levelled and scaled to unit std (zero where flat): what copies are compared on."""
    z = plane_level(np.asarray(z, np.float64))
    s = z.std()
    return z / s if s > 0 else z


def variants(z: np.ndarray) -> list[np.ndarray]:
    """The 8 flips/rotations of ``z`` (how a file may have been re-exported)."""
    out = []
    for a in (z, z.T):
        out += [a, a[::-1], a[:, ::-1], a[::-1, ::-1]]
    return out


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Best correlation of two levelled maps over flips (0 where no variant has a's shape)."""
    return max((float((a * v).mean()) for v in variants(b) if v.shape == a.shape), default=0.0)


def reference_maps(samples: Path, train: Path) -> list[tuple[str, np.ndarray]]:
    """Levelled height maps of shared/afm-samples (every height channel) and shared/afm-train, to exclude."""
    refs = []
    for f in sorted(samples.glob("*")) if samples.is_dir() else []:
        if f.is_file() and f.suffix not in (".md", ".json"):
            for hm in heights(f, ()):
                refs.append((f"afm-samples/{f.name}", levelled(hm.data)))
    for f in sorted(train.glob("*.npy")) if train.is_dir() else []:
        refs.append((f"afm-train/{f.name}", levelled(np.load(f))))
    if not refs:
        raise BuildError(f"found neither {samples} nor {train}: they are needed to keep the test set out "
                         "(set AFM_SR_SHARED)")
    return refs


def heights(path: Path, channels: tuple[str, ...]) -> list[HeightMap]:
    """The file's height map: the first of ``channels`` it holds, else afm_sr.io.read's choice; [] if none."""
    try:
        names = list_channels(path)
        wanted = next((c for c in channels if c in names), None)
        hm = read(path, channel=wanted)
    except AFMSRError:
        return []
    return [hm] if hm.z_unit == "m" else []


def usable(z: np.ndarray) -> tuple[np.ndarray, str] | None:
    """``z`` without constant (unscanned) rows/columns at its edges, with a note; None if too small or flat."""
    rows = np.flatnonzero(z.std(axis=1) > 0)
    cols = np.flatnonzero(z.std(axis=0) > 0)
    if rows.size == 0 or cols.size == 0:
        return None
    crop = z[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    if min(crop.shape) < MIN_SIDE or not np.isfinite(crop).all() or crop.std() == 0:
        return None
    note = f"constant edge lines cropped: {z.shape} -> {crop.shape}" if crop.shape != z.shape else ""
    return crop, note


@dataclass
class Map:
    """One kept map and its index row."""

    name: str
    data: np.ndarray
    row: dict[str, str]
    flat: np.ndarray
    source: Source


def collect(src: Source, gdir: Path, refs: list[tuple[str, np.ndarray]], kept: list[Map], log: list[str]) -> None:
    """Append ``src``'s usable, new height maps to ``kept``; say in ``log`` why any was dropped."""
    paths = [p for p in git_paths(gdir, src.commit) if re.search(src.include, p) and not re.search(src.exclude, p)]
    paths = sorted(paths)[:: src.every]
    with tempfile.TemporaryDirectory() as tmp:
        for path in paths:
            blob = git_blob(gdir, src.commit, path)
            if blob is None:
                log.append(f"{src.key}: {path}: not in the snapshot (too large or LFS)")
                continue
            local = Path(tmp) / Path(path).name
            local.write_bytes(blob)
            for hm in heights(local, src.channels):
                take(src, path, hm, refs, kept, log)
            local.unlink()


def take(src: Source, path: str, hm: HeightMap, refs: list[tuple[str, np.ndarray]], kept: list[Map],
         log: list[str]) -> None:
    """Keep ``hm`` unless unusable, a test-set/afm-train map, or a copy of one kept already."""
    ok = usable(hm.data)
    if ok is None:
        log.append(f"{src.key}: {path}: {hm.channel} {hm.shape} is under {MIN_SIDE} px or flat: dropped")
        return
    z, crop_note = ok
    flat = levelled(z)
    for label, ref in refs + [(k.name, k.flat) for k in kept]:
        if correlation(flat, ref) > SAME:
            log.append(f"{src.key}: {path}: the same measurement as {label}: dropped")
            return
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(path).stem)
    name = f"{src.key}__{stem}.npy"
    n = sum(k.name.startswith(f"{src.key}__{stem}") for k in kept)
    if n:
        name = f"{src.key}__{stem}__{n}.npy"
    dx, dy = hm.pixel_size
    sibling = f"test-set sibling: same repository as {src.siblings}; a different scan" if src.siblings else ""
    notes = "; ".join(filter(None, [f"channel {hm.channel}", crop_note, src.note, sibling]))
    row = {"file": name, "source_repo": src.repo, "commit": src.commit, "source_path": path, "licence": src.licence,
           "copyright": src.copyright, "instrument_or_format": src.instrument, "channel": hm.channel,
           "sample": src.sample, "ny": str(z.shape[0]), "nx": str(z.shape[1]), "pixel_size_x_m": f"{dx:.6g}",
           "pixel_size_y_m": f"{dy:.6g}", "notes": notes}
    kept.append(Map(name, z.astype(np.float32), row, flat, src))


def group(kept: list[Map]) -> None:
    """Add ``group=`` notes: a series source's maps, and maps of one source with one grid correlating above RESCAN."""
    parent = list(range(len(kept)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, a in enumerate(kept):
        for j in range(i):
            b = kept[j]
            same_grid = (a.source, a.data.shape, a.row["pixel_size_x_m"]) == \
                (b.source, b.data.shape, b.row["pixel_size_x_m"])
            series = a.source is b.source and a.source.series
            if series or (same_grid and float((a.flat * b.flat).mean()) > RESCAN):
                parent[root(i)] = root(j)
    members: dict[int, list[Map]] = {}
    for i, m in enumerate(kept):
        members.setdefault(root(i), []).append(m)
    for ms in members.values():
        if len(ms) > 1:
            label = ms[0].name.removesuffix(".npy")
            for m in ms:
                why = "frames of one series" if m.source.series else f"levelled correlation > {RESCAN}"
                m.row["notes"] += f"; group={label} (rescans of one area, {why})"


def npy_fill(array: np.ndarray) -> Fill:
    """Write ``array`` as .npy into the temp file given."""
    def fill(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object: np.save would append .npy to a bare name
            np.save(f, array)
    return fill


def bytes_fill(data: bytes) -> Fill:
    """Write ``data`` into the temp file given."""
    return lambda tmp: tmp.write_bytes(data)


def index_csv(kept: list[Map]) -> bytes:
    """index.csv, one row per map, afm-train's columns."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, FIELDS, lineterminator="\n")
    w.writeheader()
    w.writerows(m.row for m in kept)
    return buf.getvalue().encode()


def contact_sheet(kept: list[Map]) -> bytes:
    """PNG of every map, plane-levelled and 1-99 % clipped, numbered as in index.csv (for display only)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    cols = 12
    rows = -(-len(kept) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.2, rows * 1.3), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for k, (ax, m) in enumerate(zip(axes.flat, kept, strict=False)):
        z = plane_level(m.data.astype(np.float64))
        lo, hi = np.percentile(z, [1, 99])
        ax.imshow(np.clip(z, lo, hi), cmap="afmhot", interpolation="nearest")
        ax.set_title(f"{k} {m.name.split('__')[0]}", fontsize=5)
    fig.tight_layout(pad=0.2)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def readme(kept: list[Map], log: list[str]) -> bytes:
    """README.md of the data folder: what it is, conventions, sources with counts, what was dropped and why."""
    lines = ["# afm-extra: more real AFM/STM height maps for training", "",
             f"{len(kept)} height maps converted by `experiments/data/build_extra.py` (afm-sr) from the public "
             "repositories below; same conventions and index.csv columns as `shared/afm-train` (float32 metres, "
             "row 0 = top as Gwyddion shows it, `group=` in notes = rescans of one area: keep a group on one side "
             "of a split). No map is a file of `shared/afm-samples` or a map of `shared/afm-train` (compared "
             "array by array after plane levelling, over flips and transposes, correlation > "
             f"{SAME}). Licence texts are in `LICENSES/`; changes: height channel extracted, converted to .npy "
             "float32 metres, constant edge lines cropped where noted. Rows whose notes say `test-set sibling` come "
             "from a repository that also supplied a `shared/afm-samples` file (another scan, possibly of the same "
             "lab or session): leave them out for a strict other-lab evaluation on afm-samples.", "",
             "| source | repository | commit | licence | maps | instrument / format | sample |",
             "|---|---|---|---|---|---|---|"]
    for src in SOURCES:
        n = sum(m.source is src for m in kept)
        lines.append(f"| `{src.key}` | {src.repo} | `{src.commit[:12]}` | {src.licence} | {n} | {src.instrument} | "
                     f"{src.sample} |")
    holders = dict.fromkeys(f"{s.repo}: {s.copyright}" for s in SOURCES)
    lines += ["", f"Total: {len(kept)} maps from {len(holders)} repositories.", "",
              "Copyright holders: " + "; ".join(holders) + ".", "",
              "## Left out on purpose", ""] + [f"- {s.repo}: {s.left_out}" for s in SOURCES if s.left_out] + \
        [f"- {repo}: the whole repository ({why})" for repo, why in EXCLUDED_REPOS.items()] + \
        ["", "## Dropped while building", ""] + [f"- {line}" for line in log] + [""]
    return "\n".join(lines).encode()


def build(mirrors: Path, out: Path, force: bool) -> tuple[list[Map], list[str]]:
    """Collect every source's maps and write the folder; returns the maps and the drop log."""
    for src in SOURCES:
        if src.repo in EXCLUDED_REPOS:
            raise BuildError(f"source {src.key!r}: {src.repo} is excluded ({EXCLUDED_REPOS[src.repo]})")
    gdirs = {src.key: git_dir(mirrors, src) for src in SOURCES}  # every mirror checked before any work
    if out.exists() and not force:
        raise BuildError(f"{out} exists; pass --force to replace it")
    refs = reference_maps(SHARED / "afm-samples", SHARED / "afm-train")
    kept: list[Map] = []
    log: list[str] = []
    for src in SOURCES:
        collect(src, gdirs[src.key], refs, kept, log)
        print(f"{src.key}: {sum(m.source is src for m in kept)} maps", flush=True)
    group(kept)
    outputs: dict[str, Fill] = {m.name: npy_fill(m.data) for m in kept}
    for src in SOURCES:
        for lic in src.licence_files:
            text = git_blob(gdirs[src.key], src.commit, lic)
            if text is None:
                raise BuildError(f"the mirror of {src.repo} lacks its licence file {lic}")
            outputs[f"LICENSES/{src.repo.split('/')[1]}-{src.licence}.txt"] = bytes_fill(text)
    outputs["index.csv"] = bytes_fill(index_csv(kept))
    outputs["README.md"] = bytes_fill(readme(kept, log))
    outputs["contact_sheet.png"] = bytes_fill(contact_sheet(kept))
    publish(outputs, out, force)
    return kept, log


def publish(outputs: dict[str, Fill], out: Path, force: bool) -> None:
    """Write the folder beside ``out``, then put it in place with one rename (replacing ``out`` only if ``force``).

    A killed build leaves no half-written ``out``; an old ``out`` is removed only after the new one is in place.
    """
    make_folder(out.parent)
    remove_stale_temp_folders(out.parent)
    old = out.with_name(f".{out.name}.{secrets.token_hex(6)}.old")
    with temp_folder(out) as tmp:
        new = tmp / out.name
        (new / "LICENSES").mkdir(parents=True)
        for rel, fill in outputs.items():
            fill(new / rel)
        if out.exists():
            if not force:
                raise BuildError(f"{out} exists; pass --force to replace it")
            os.replace(out, old)
        os.replace(new, out)
    shutil.rmtree(old, ignore_errors=True)


def main() -> None:
    """Build the folder; one ``afm-sr: error:`` line where a mirror is missing or the output is taken."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mirrors", type=Path, default=Path(os.environ.get("AFM_SR_MIRRORS", "/work/.mirror")),
                    help="folder of fetched snapshots, one owner+name/repo per source")
    ap.add_argument("--out", type=Path, default=Path.home() / "data" / "afm-extra")
    ap.add_argument("--force", action="store_true", help="replace an existing --out folder (as a whole)")
    args = ap.parse_args()
    try:
        kept, log = build(args.mirrors, args.out, args.force)
    except (AFMSRError, OSError, subprocess.CalledProcessError) as exc:
        sys.exit(f"afm-sr: error: {exc}")
    print(f"{len(kept)} maps from {len(SOURCES)} sources in {args.out} ({len(log)} files or maps dropped)")


if __name__ == "__main__":
    main()
