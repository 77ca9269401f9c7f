"""Build the data folder of the zoom-pair benchmark (default ~/data/real_pairs): scans, zooms and pairs.csv.

Two kinds of pairs, never mixed in one number (``kind`` in pairs.csv):

- ``real-seen``: a scan and a later scan of part of it at finer pixels, recorded by an instrument. No public
  zoom pair that no afm-sr model was trained on was found (experiments/real_pairs/README.md says where we
  looked); the real zoom pairs at hand are rescans inside ``shared/afm-train``, which v0.2 (and every model
  trained on afm-train) saw in training. They test the registration and the pipeline on real acquisitions,
  not v0.2's generalisation. Sources: pycroscopy/DTMicroscope @17245ba6df42 (MIT) and
  wduverger/ib_spectroscopy @a40bba8a57b1 (CC-BY-4.0); each row names the repository, commit and path.
- ``synthetic``: a real height map from ``shared/afm-samples`` (never trained on) taken as the truth, a
  coarse scan of all of it as a slower instrument records it (each coarse pixel the mean of ``ratio`` fine
  pixels along the fast axis, on a line midway between two fine lines, plus white noise) and a zoom into a
  third of it at the fine pixel size (a small scale error and rotation, plus white noise). The true window
  is stored, so the registration error is known.
- ``real-heldout``: Nanonis STM scans of Si(111)7x7 from ethz-micro/matlab_nanonis @1eff23858279
  ``Examples/Files/Si_7x7_{012,028,032,051}.sxm`` (GPL-3.0; read at evaluation time, never copied into this
  repository), one session on 2016-01-07: 200 nm, then 50 nm twice, then 20 nm, 256 px each. No training set of
  afm-sr holds them (experiments/data/build_extra.py excludes the repository). Only with ``--heldout DIR``, a
  folder holding those files (``git show 1eff238:Examples/Files/Si_7x7_012.sxm`` etc.); their SHA-256 is checked.
  Each 50 nm zoom is one pair and, split into quarters, four more (drift bends the whole zoom's window beyond
  one similarity transform; a quarter is close to one).

    python experiments/real_pairs/fetch_pairs.py                      # -> ~/data/real_pairs
    python experiments/real_pairs/fetch_pairs.py --heldout DIR        # also the real-heldout pairs
    python experiments/real_pairs/fetch_pairs.py --out DIR --force    # rebuild over an existing folder

Nothing here is training data: keep these files out of every training set.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy import ndimage

from afm_sr.atomic import Fill, make_folder, write_atomically
from afm_sr.errors import AFMSRError
from afm_sr.io import read
from afm_sr.preprocess import plane_level

SHARED = Path(os.environ.get("AFM_SR_SHARED", Path(__file__).resolve().parents[3] / "shared"))
FIELDS = ("pair", "kind", "coarse", "zoom", "coarse_px_m", "zoom_px_m", "source", "licence", "note",
          "truth_origin_row", "truth_origin_col", "truth_step", "truth_angle_deg")

#: (coarse map, zoom map, note) in shared/afm-train: same sample, same session, the zoom's scan size smaller.
#: Whether each zoom lies inside its scan is for the registration to decide (run.py rejects those that do not).
SEEN_PAIRS = (
    ("dtmicroscope__PMN28Pt0000", "dtmicroscope__PMN28Pt0001", "PMN-PT PFM height, 4 um then 2 um, 2014-02-20"),
    ("dtmicroscope__PMN28Pt0000", "dtmicroscope__PMN28Pt0002", "PMN-PT PFM height, 4 um then 2 um, 2014-02-20"),
    ("dtmicroscope__PTO_Funakubo0002", "dtmicroscope__PTO_Funakubo0003", "PbTiO3 film, 5 um then 1 um, 2017-05-27"),
    ("dtmicroscope__PTO_Funakubo0004", "dtmicroscope__PTO_Funakubo0005", "PbTiO3 film, 3 um then 1 um, 2017-05-28"),
    ("dtmicroscope__PTO_Funakubo0006", "dtmicroscope__PTO_Funakubo0007", "PbTiO3 film, 5 um then 1 um, 2017-05-29"),
    ("dtmicroscope__PZT_thick0004", "dtmicroscope__PZT_thick0009", "thick PZT film, 3 um then 1 um, 2010-06-02"),
    ("ibspec__sample_4_pulse_width_tune__0", "ibspec__sample_4_pulse_width_tune__1",
     "bacterial cells (nanoIR contact), 50 um then 10 um, 2.6 h later"),
    ("ibspec__sample_4_pulse_width_tune__0", "ibspec__sample_4_pulse_width_tune_2__0",
     "bacterial cells (nanoIR contact), 50 um then 10 um, the next day"),
    ("ibspec__doc_WTB_rep2_localisation__0", "ibspec__doc_WTB_rep2_localisation__1",
     "bacterial cells (nanoIR contact), 50 um then 10 um, 9 min later"),
    ("ibspec__doc_WTC_rep2_localisation__0", "ibspec__doc_WTC_rep2_localisation__1",
     "bacterial cells (nanoIR contact), 50 um then 15 um, 15 min later"),
    ("ibspec__2022-03-25_p2-200__0", "ibspec__2022-03-25_p2-200__1",
     "bacterial cells (nanoIR contact), 30 um then 10 um, 39 min later"),
)

#: Distinct height maps of shared/afm-samples (one file per scan where a scan is there in two formats).
SYNTHETIC_SOURCES = (
    "nanoscopeAFM__Veeco_20160622.003", "nanoscope__full_multiple_images.spm", "AFMReader__sample_0.stp",
    "AFMReader__sample_0.jpk", "SciFiDatasets__IgorIBWReader_P0089OP0027.ibw",
    "SciFiDatasets__IgorIBWReader_ImageStack_BTFO_DSO.ibw", "SciFiDatasets__PTO_110_Virgin0001.gwy",
    "SciFiDatasets__GwiddionReader_chip.gwy", "TopoStats__old_bruker.002", "nanoAFMr__kpg20080408.007",
    "nanoscopeAFM__Park_20210916_034.tiff", "SpmImageTycoon.jl__Image_661.sxm", "nanoscopeAFM__AR_20211011.ibw",
)

#: The held-out Nanonis files (ethz-micro/matlab_nanonis @1eff23858279 Examples/Files) and their SHA-256.
HELDOUT_SOURCE = "ethz-micro/matlab_nanonis@1eff23858279 Examples/Files"
HELDOUT_SHA256 = {
    "Si_7x7_012.sxm": "a71f5f78b365fe6e10074f22786d6235bd3300bcacf6283b662aee970d310636",
    "Si_7x7_028.sxm": "d0e1b61ec13aab733a799fc137fb1387a1f68e9b27ef091efafba77d3c8fa91b",
    "Si_7x7_032.sxm": "5b505954db8f0e48cb40977562c03f4a0ee10c5103ce4aa2f8858173b3a4e691",
    "Si_7x7_051.sxm": "ea790ba67d2baad122295a19743f7540263570e5360779dd3a1beb8c9e880319",
}
#: (coarse, zoom, tiles per side, note): headers say SCAN_OFFSET 0, 0 and SCAN_ANGLE 0 for all four, but the
#: scanned area drifted ~100 nm between 11:09 and 12:10 (the 50 nm zooms lie in the 200 nm scan's top-left corner).
HELDOUT_PAIRS = (
    ("Si_7x7_012", "Si_7x7_028", 1, "Si(111)7x7 STM, 200 nm 11:09 then 50 nm 12:10, -0.4 V"),
    ("Si_7x7_012", "Si_7x7_028", 2, "Si(111)7x7 STM, 200 nm 11:09 then 50 nm 12:10, -0.4 V"),
    ("Si_7x7_012", "Si_7x7_032", 1, "Si(111)7x7 STM, 200 nm 11:09 then 50 nm 12:18, -0.4 V"),
    ("Si_7x7_012", "Si_7x7_032", 2, "Si(111)7x7 STM, 200 nm 11:09 then 50 nm 12:18, -0.4 V"),
    ("Si_7x7_028", "Si_7x7_051", 1, "Si(111)7x7 STM, 50 nm 12:10 then 20 nm 12:54 at -2 V (not -0.4 V)"),
    ("Si_7x7_032", "Si_7x7_051", 1, "Si(111)7x7 STM, 50 nm 12:18 then 20 nm 12:54 at -2 V (not -0.4 V)"),
)


def npy_fill(array: np.ndarray) -> Fill:
    """Write ``array`` as float32 .npy into the temp file given."""
    def fill(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object: np.save would append .npy to a bare name
            np.save(f, np.asarray(array, dtype=np.float32), allow_pickle=False)
    return fill


def text_fill(text: str) -> Fill:
    """Write ``text`` into the temp file given."""
    return lambda tmp: tmp.write_text(text)


def seen_pairs(afm_train: Path) -> tuple[list[dict[str, str]], dict[str, np.ndarray]]:
    """The real zoom pairs inside afm-train: pairs.csv rows and the maps they name (meters)."""
    index = {Path(r["file"]).stem: r for r in csv.DictReader(open(afm_train / "index.csv"))}
    rows, maps = [], {}
    for coarse, zoom, note in SEEN_PAIRS:
        c, z = index[coarse], index[zoom]
        for name in (coarse, zoom):
            maps[f"{name}.npy"] = np.load(afm_train / index[name]["file"])
        rows.append({"pair": f"{coarse}->{zoom.split('__', 1)[1]}", "kind": "real-seen", "coarse": f"{coarse}.npy",
                     "zoom": f"{zoom}.npy", "coarse_px_m": c["pixel_size_x_m"], "zoom_px_m": z["pixel_size_x_m"],
                     "source": f"{c['source_repo']}@{c['commit'][:12]} {c['source_path']} | {z['source_path']}",
                     "licence": c["licence"], "note": f"{note}; in shared/afm-train, which v0.2 trained on"})
    return rows, maps


def heldout_pairs(folder: Path) -> tuple[list[dict[str, str]], dict[str, np.ndarray]]:
    """The real-heldout pairs from the Nanonis files in ``folder`` (checked by SHA-256): rows and maps (meters)."""
    scans = {}
    for name, digest in HELDOUT_SHA256.items():
        if hashlib.sha256((folder / name).read_bytes()).hexdigest() != digest:
            raise AFMSRError(f"{folder / name} is not the file of {HELDOUT_SOURCE} (SHA-256 differs)")
        scans[Path(name).stem] = read(folder / name)
    rows, maps = [], {}
    for coarse, zoom, tiles, note in HELDOUT_PAIRS:
        c, z = scans[coarse], scans[zoom]
        maps[f"nanonis__{coarse}.npy"] = c.data
        ny, nx = (n // tiles for n in z.shape)
        for i in range(tiles):
            for j in range(tiles):
                part = f"_q{i}{j}" if tiles > 1 else ""
                maps[f"nanonis__{zoom}{part}.npy"] = z.data[i * ny:(i + 1) * ny, j * nx:(j + 1) * nx]
                where = f"; zoom rows {i * ny}:{(i + 1) * ny}, cols {j * nx}:{(j + 1) * nx}" if tiles > 1 else ""
                rows.append({"pair": f"nanonis__{coarse}->{zoom}{part}", "kind": "real-heldout",
                             "coarse": f"nanonis__{coarse}.npy", "zoom": f"nanonis__{zoom}{part}.npy",
                             "coarse_px_m": f"{c.pixel_size[0]:.6g}", "zoom_px_m": f"{z.pixel_size[0]:.6g}",
                             "source": f"{HELDOUT_SOURCE}/{coarse}.sxm | {zoom}.sxm", "licence": "GPL-3.0",
                             "note": f"{note}{where}; Z (Forward); in no afm-sr training set"})
    return rows, maps


def scanned(surface: np.ndarray, ratio: int) -> np.ndarray:
    """A coarse scan of ``surface``: each pixel the mean of ``ratio`` fine pixels along the fast axis (x), on
    a line midway between two fine lines. Coarse pixel (i, j) is centred on fine (ratio i + ratio / 2, ratio j +
    (ratio - 1) / 2)."""
    ny, nx = (s // ratio for s in surface.shape)
    lines = ratio * np.arange(ny) + ratio / 2  # between fine lines (ratio/2 - 1/2 would be the box centre)
    lo = np.clip(np.floor(lines).astype(int), 0, surface.shape[0] - 1)
    hi = np.clip(lo + 1, 0, surface.shape[0] - 1)
    frac = (lines - np.floor(lines))[:, None]
    rows = (1 - frac) * surface[lo] + frac * surface[hi]
    return rows[:, : nx * ratio].reshape(ny, nx, ratio).mean(axis=2)


def synthetic_pair(truth: np.ndarray, ratio: int, noise: float, rng: np.random.Generator
                   ) -> tuple[np.ndarray, np.ndarray, tuple[float, float], float, float]:
    """(coarse, zoom, origin, step, angle) from a true surface: the window in coarse pixel coordinates."""
    surface = plane_level(truth)
    sigma = noise * float(np.std(surface))
    coarse = scanned(surface, ratio)
    n = coarse.shape[0] if coarse.shape[0] <= coarse.shape[1] else coarse.shape[1]
    scale, angle = 1 + rng.uniform(-0.02, 0.02), rng.uniform(-1.0, 1.0)
    extent = n * scale * (abs(math.cos(math.radians(angle))) + abs(math.sin(math.radians(angle))))
    pad = 4 + math.ceil(extent - n * scale)
    top = (rng.uniform(pad, surface.shape[0] - n * scale - pad), rng.uniform(pad, surface.shape[1] - n * scale - pad))
    a = math.radians(angle)
    rows, cols = np.meshgrid(np.arange(n, dtype=np.float64), np.arange(n, dtype=np.float64), indexing="ij")
    fy = top[0] + scale * (math.cos(a) * rows - math.sin(a) * cols)
    fx = top[1] + scale * (math.sin(a) * rows + math.cos(a) * cols)
    zoom = ndimage.map_coordinates(surface, [fy, fx], order=3, mode="reflect")
    coarse = coarse + sigma * rng.normal(size=coarse.shape)
    zoom = zoom + sigma * rng.normal(size=zoom.shape)
    origin = ((top[0] - ratio / 2) / ratio, (top[1] - (ratio - 1) / 2) / ratio)
    return coarse, zoom, origin, scale / ratio, angle


def synthetic_pairs(samples: Path, ratio: int, noise: float, seed: int
                    ) -> tuple[list[dict[str, str]], dict[str, np.ndarray]]:
    """Synthetic pairs from the distinct height maps in afm-samples that are at least 64 coarse px wide."""
    rows, maps = [], {}
    readme = {line.split("|")[1].strip(): line.split("|")[4].strip()
              for line in (samples / "README.md").read_text().splitlines() if line.startswith("| ") and "|" in line[2:]}
    for k, name in enumerate(SYNTHETIC_SOURCES):
        path = samples / name
        try:
            hm = read(path)
        except AFMSRError as exc:
            print(f"skipped {name}: {exc}", file=sys.stderr)
            continue
        if min(hm.shape) < 64 * ratio:
            print(f"skipped {name}: {hm.shape[1]}x{hm.shape[0]} px is under {64 * ratio} px", file=sys.stderr)
            continue
        coarse, zoom, origin, step, angle = synthetic_pair(hm.data, ratio, noise, np.random.default_rng([seed, k]))
        stem = f"synthetic__{name.replace('.', '_')}"
        maps[f"{stem}__coarse.npy"], maps[f"{stem}__zoom.npy"] = coarse, zoom
        rows.append({"pair": stem, "kind": "synthetic", "coarse": f"{stem}__coarse.npy", "zoom": f"{stem}__zoom.npy",
                     "coarse_px_m": f"{hm.pixel_size[0] * ratio:.6g}",
                     "zoom_px_m": f"{hm.pixel_size[0] * step * ratio:.6g}",
                     "source": f"shared/afm-samples/{name} (see its README for repository and commit)",
                     "licence": readme.get(name, "see shared/afm-samples/README.md"),
                     "note": f"synthetic: x{ratio} fast-axis-mean scan between lines + zoom, white noise {noise:g} std",
                     "truth_origin_row": f"{origin[0]:.4f}", "truth_origin_col": f"{origin[1]:.4f}",
                     "truth_step": f"{step:.6f}", "truth_angle_deg": f"{angle:.4f}"})
    return rows, maps


def csv_text(rows: list[dict[str, str]]) -> str:
    """pairs.csv content."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def main() -> None:
    """Build the folder; one ``afm-sr: error:`` line on bad input."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path.home() / "data" / "real_pairs")
    ap.add_argument("--afm-train", type=Path, default=SHARED / "afm-train")
    ap.add_argument("--afm-samples", type=Path, default=SHARED / "afm-samples")
    ap.add_argument("--heldout", type=Path, default=None,
                    help="folder with ethz-micro/matlab_nanonis's Si_7x7_*.sxm: adds the real-heldout pairs")
    ap.add_argument("--ratio", type=int, default=3, help="synthetic pairs: coarse pixel / zoom pixel")
    ap.add_argument("--noise", type=float, default=0.02, help="synthetic pairs: white noise, times the map's std")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--force", action="store_true", help="replace files already in --out")
    args = ap.parse_args()
    try:
        builders: list[Callable[[], tuple[list[dict[str, str]], dict[str, np.ndarray]]]] = [
            lambda: seen_pairs(args.afm_train), lambda: synthetic_pairs(args.afm_samples, args.ratio, args.noise,
                                                                        args.seed)]
        if args.heldout is not None:
            builders.append(lambda: heldout_pairs(args.heldout))
        rows, maps = [], {}
        for build in builders:
            r, m = build()
            rows += r
            maps.update(m)
        make_folder(args.out)
        outputs: dict[Path, Fill] = {args.out / name: npy_fill(a) for name, a in maps.items()}
        outputs[args.out / "pairs.csv"] = text_fill(csv_text(rows))
        write_atomically(outputs, overwrite=args.force)
    except (AFMSRError, OSError, KeyError) as exc:
        sys.exit(f"afm-sr: error: {exc}")
    kinds = {k: sum(r["kind"] == k for r in rows) for k in dict.fromkeys(r["kind"] for r in rows)}
    print(f"{len(rows)} pairs ({', '.join(f'{n} {k}' for k, n in kinds.items())}) in {args.out}")


if __name__ == "__main__":
    main()
