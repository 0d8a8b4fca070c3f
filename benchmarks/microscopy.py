"""Microscopy: blind deconvolution against Richardson-Lucy with the true PSF, on the
synthetic fluorescence development set.

For every case of :func:`napari_dip_deblur.devsets.fluorescence.fluorescence_cases` (three
scenes x six PSFs, 50-5,000 photons at the peak, Poisson + read noise, uint16), scored by
PSNR after the best affine intensity match (:func:`~napari_dip_deblur.devsets.fluorescence.
affine_psnr`) against the sharp scene's expected counts:

- ``input``: the blurry counts;
- ``oracle RL``: Richardson-Lucy with the TRUE PSF at its best iteration count (1 to 400,
  chosen with the truth: what a measured PSF and a lucky stop give);
- ``true PSF, rule``: RL with the true PSF stopped by the project's rule (Poisson-thinning
  cross-validation): ``deconvolve_microscopy(counts, psf=true)``;
- ``ours, blind``: ``deconvolve_microscopy(counts)``;
- ``blind RL``: classic alternating blind RL (Fish et al. 1995), 20 x (5 + 5) iterations
  from a Gaussian of sigma 2 px, 31 x 31 support.

PSF widths are FWHMs (``psf_width``: the diameter of the disc with the area at or above half
the peak) of the 31 x 31 PSFs. Writes ``docs/benchmarks/microscopy.md`` (whole, after each
case).

Example (about 4 minutes on a 2-core CPU)::

    python benchmarks/microscopy.py
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from napari_dip_deblur.devsets.fluorescence import affine_psnr, fluorescence_cases
from napari_dip_deblur.microscopy import deconvolve_microscopy, psf_width
from napari_dip_deblur.microscopy.background import estimate_background
from napari_dip_deblur.microscopy.blind_rl import blind_richardson_lucy
from napari_dip_deblur.microscopy.richardson_lucy import rl_iterates

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "docs" / "benchmarks" / "microscopy.md"
ORACLE_ITERATIONS = 400
MACHINE = "2-core CPU, torch 2.13.0+cpu"
DATE = "2026-12-03"
COLUMNS = ("input", "oracle RL", "true PSF, rule", "ours, blind", "blind RL")


def oracle(counts: np.ndarray, psf: np.ndarray, truth: np.ndarray) -> tuple[float, int]:
    """Best PSNR of RL with the true PSF over 1..ORACLE_ITERATIONS, and where."""
    background = estimate_background(counts)
    scores = []
    for i, (obj, _) in enumerate(rl_iterates(counts, psf, background)):
        scores.append(affine_psnr(obj + background, truth))
        if i + 1 >= ORACLE_ITERATIONS:
            break
    return max(scores), int(np.argmax(scores)) + 1


def run_case(case) -> dict:
    truth, counts = case.sharp, case.blurry
    row = {"name": case.name, "input": affine_psnr(counts, truth)}
    row["oracle RL"], row["oracle its"] = oracle(counts, case.psf, truth)
    known = deconvolve_microscopy(counts, psf=case.psf)
    row["true PSF, rule"], row["rule its"] = affine_psnr(known.image, truth), known.iterations
    start = time.perf_counter()
    ours = deconvolve_microscopy(counts)
    row["seconds"] = time.perf_counter() - start
    row["ours, blind"], row["ours its"] = affine_psnr(ours.image, truth), ours.iterations
    row["family"] = f"{ours.model.family} {ours.model.width:.2f}" + (
        f"/{ours.model.defocus:.2f}w" if ours.model.family == "defocus" else "")
    image, psf = blind_richardson_lucy(counts, estimate_background(counts))
    row["blind RL"] = affine_psnr(image, truth)
    true_width = psf_width(case.psf)
    row["width"] = true_width
    row["ours width"] = psf_width(ours.model.render(31))
    row["blind RL width"] = psf_width(psf)
    return row


def _relative(estimate: float, truth: float) -> float:
    return 100.0 * (estimate / truth - 1.0)


def report(rows: list[dict], command: str, total: int) -> str:
    lines = [
        "# Microscopy: blind deconvolution on the synthetic fluorescence dev set",
        "",
        f"Command: `{command}`  ",
        f"Machine: {MACHINE}; date: {DATE}. Cases done: {len(rows)} of {total}.",
        "",
        "Protocol: `benchmarks/microscopy.py` (module docstring). PSNR in dB after the best "
        "affine intensity match against the sharp scene's expected counts. `oracle RL` is "
        f"Richardson-Lucy with the TRUE PSF at its best iteration count (1-{ORACLE_ITERATIONS}, "
        "picked with the truth); `true PSF, rule` the same PSF stopped by our rule (Poisson-"
        "thinning cross-validation, no truth); `ours, blind` `deconvolve_microscopy(counts)`; "
        "`blind RL` classic alternating blind RL (Fish et al. 1995). Widths: FWHM in px; "
        "errors relative to the true FWHM.",
        "",
        "| case | input | oracle RL (its) | true PSF, rule (its) | ours, blind (its) | "
        "blind RL | ours - oracle | fitted PSF | FWHM true | ours (err) | blind RL (err) "
        "| s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} | {r['input']:.2f} | {r['oracle RL']:.2f} ({r['oracle its']}) | "
            f"{r['true PSF, rule']:.2f} ({r['rule its']}) | {r['ours, blind']:.2f} "
            f"({r['ours its']}) | {r['blind RL']:.2f} | {r['ours, blind'] - r['oracle RL']:+.2f} "
            f"| {r['family']} | {r['width']:.2f} | {r['ours width']:.2f} "
            f"({_relative(r['ours width'], r['width']):+.0f} %) | {r['blind RL width']:.2f} "
            f"({_relative(r['blind RL width'], r['width']):+.0f} %) | {r['seconds']:.1f} |")
    if rows:
        mean = {c: float(np.mean([r[c] for r in rows])) for c in COLUMNS}
        ours_err = [abs(_relative(r["ours width"], r["width"])) for r in rows]
        brl_err = [abs(_relative(r["blind RL width"], r["width"])) for r in rows]
        below = [r["name"] for r in rows if r["ours, blind"] < r["input"]]
        within = sum(e <= 10 for e in ours_err)
        lines += [
            f"| **mean** | {mean['input']:.2f} | {mean['oracle RL']:.2f} | "
            f"{mean['true PSF, rule']:.2f} | {mean['ours, blind']:.2f} | {mean['blind RL']:.2f} "
            f"| {mean['ours, blind'] - mean['oracle RL']:+.2f} | | | "
            f"median abs err {np.median(ours_err):.0f} % | median abs err "
            f"{np.median(brl_err):.0f} % | |",
            "",
            "## Against the goals of issue 25",
            "",
            f"- Blind within 1 dB of oracle RL on average: ours {mean['ours, blind']:.2f} dB "
            f"against {mean['oracle RL']:.2f} ({mean['ours, blind'] - mean['oracle RL']:+.2f} "
            f"dB): **{'met' if mean['ours, blind'] >= mean['oracle RL'] - 1 else 'not met'}**. "
            f"Classic blind RL: {mean['blind RL']:.2f} dB.",
            f"- Never below the input: **{'met' if not below else 'not met'}**"
            + (f" (below on {', '.join(below)})" if below else "") + ".",
            f"- PSF FWHM within 10 % of the truth: on {within} of {len(rows)} cases "
            f"(**{'met' if within == len(rows) else 'not met'}**).",
        ]
    return "\n".join(lines) + "\n"


def write_whole(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as f:
        f.write(text)
    os.replace(f.name, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help="the Markdown report")
    parser.add_argument("--cases", default="", help="only cases whose name contains this")
    args = parser.parse_args(argv)
    command = "python benchmarks/microscopy.py " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    cases = [c for c in fluorescence_cases() if args.cases in c.name]
    rows: list[dict] = []
    for case in cases:
        rows.append(run_case(case))
        r = rows[-1]
        print(f"{r['name']:28s} input {r['input']:.2f} oracle {r['oracle RL']:.2f} "
              f"rule {r['true PSF, rule']:.2f} ours {r['ours, blind']:.2f} "
              f"blindRL {r['blind RL']:.2f} width {r['ours width']:.2f}/{r['width']:.2f}",
              flush=True)
        write_whole(args.out, report(rows, command.strip(), len(cases)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
