"""Real inputs, measured: a large image, kernel-size suggestion and an oversized kernel.

Three studies, each writing a JSON file to ``benchmarks/results/real-inputs/`` as it finishes
(``--study``); ``--report`` then writes ``docs/benchmarks/real-inputs.md`` from whatever has
been measured.

``large``
    A 4096 x 4096 image (scikit-image's bundled photos and textures at native scale, tiled),
    blurred by a known 15 x 15 motion kernel with a little Gaussian noise, restored by
    :func:`napari_dip_deblur.restore.deblur_large` (kernel estimated on an automatically
    chosen 256 x 256 crop with the ``fast`` preset, the whole image restored by non-blind
    deconvolution). Run in a fresh process: wall time, peak resident memory (``ru_maxrss``)
    against the up-front estimate, PSNR before and after against the sharp image.
``suggest``
    :func:`napari_dip_deblur.kernel_size.suggest_kernel_size` on Levin images (one per
    kernel by default), generous size 41: the suggested size against the true one.
``oversize``
    ``deblur`` with the true kernel size and with a much larger one on a few Levin images:
    does an oversized kernel ruin the result?
``noise``
    A Poisson-noisy synthetic fluorescence image (uint16), ``fast`` with and without the
    noise-aware option (total variation kept in the last interval).

Examples
--------
::

    python benchmarks/real_inputs.py --study large
    python benchmarks/real_inputs.py --study suggest --iterations 300
    python benchmarks/real_inputs.py --study oversize --images im2_kernel5 im1_kernel4
    python benchmarks/real_inputs.py --report
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "real-inputs"
DOCS = REPO / "docs" / "benchmarks" / "real-inputs.md"
SUGGEST_IMAGES = [f"im{(j - 1) % 4 + 1}_kernel{j}" for j in range(1, 9)]


def _machine() -> dict:
    import torch

    return {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "platform": platform.platform(), "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "git_commit": _git("rev-parse", "--short", "HEAD"),
            "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no"))}


def _git(*args: str) -> str | None:
    try:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def _save(name: str, record: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {RESULTS / name}.json", flush=True)


def _psnr(estimate: np.ndarray, truth: np.ndarray, crop: int, side: int = 512) -> float:
    """PSNR (peak 1) of a central ``side`` x ``side`` crop after the best sub-pixel
    alignment (the Levin protocol's search, ``metrics.levin_score``): a blind estimate
    may shift the image by a pixel or so, which says nothing about its sharpness."""
    from napari_dip_deblur.metrics import levin_score

    h, w = truth.shape
    side = min(side, h, w)
    window = (slice((h - side) // 2, (h - side) // 2 + side),
              slice((w - side) // 2, (w - side) // 2 + side))
    return float(levin_score(255 * np.asarray(estimate, dtype=np.float64)[window],
                             255 * np.asarray(truth, dtype=np.float64)[window],
                             crop=crop).psnr)


def _psnr_whole(estimate: np.ndarray, truth: np.ndarray, border: int = 32,
                max_shift: int = 4) -> float:
    """PSNR (peak 1) of the whole image less ``border`` pixels, at the best integer shift
    within +-``max_shift`` (a blind estimate may move the image by a pixel or so)."""
    core = truth[border:-border, border:-border].astype(np.float64)
    h, w = core.shape
    best = np.inf
    for dy in range(-max_shift, max_shift + 1):
        for dx in range(-max_shift, max_shift + 1):
            moved = estimate[border + dy:border + dy + h, border + dx:border + dx + w]
            best = min(best, float(np.mean((moved - core) ** 2)))
    return float(10 * np.log10(1.0 / best))


# --------------------------------------------------------------------------- large image


def large_test_image(side: int = 4096, kernel_size: int = 15, seed: int = 0
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(blurry, sharp, kernel): scikit-image's bundled photos and textures at their native
    scale, 512 x 512 tiles (flipped at random) filling ``side`` x ``side``, blurred."""
    from scipy import signal
    from skimage import data, transform
    from skimage.color import rgb2gray

    from napari_dip_deblur.samples import motion_kernel

    def tile(image: np.ndarray) -> np.ndarray:
        image = np.asarray(rgb2gray(image) if image.ndim == 3 else image, dtype=np.float64)
        image = image / 255 if image.max() > 1 else image
        if min(image.shape) < 512:
            image = transform.resize(image, (512, 512 * image.shape[1] // image.shape[0]),
                                     anti_aliasing=True)
        return image[:512, :512]

    tiles = [tile(t) for t in (data.camera(), data.astronaut(), data.coffee(), data.chelsea(),
                               data.rocket(), data.brick(), data.grass(), data.gravel())]
    rng = np.random.default_rng(seed)
    n = -(-side // 512)
    rows = [[tiles[rng.integers(len(tiles))][:: rng.choice([-1, 1]), :: rng.choice([-1, 1])]
             for _ in range(n)] for _ in range(n)]
    sharp = np.block(rows)[:side, :side].astype(np.float32)
    # A streak nearly as long as the kernel is wide (as in `samples.blurred_photo`).
    kernel = motion_kernel(kernel_size, seed=seed, length=0.9 * kernel_size)
    blurry = signal.fftconvolve(sharp, kernel, mode="same").astype(np.float32)
    blurry += rng.normal(0, 0.002, blurry.shape).astype(np.float32)
    return blurry, sharp, kernel


def study_large(args: argparse.Namespace) -> None:
    """Run the large-image case in this process (call in a fresh process)."""
    from napari_dip_deblur.metrics import kernel_error
    from napari_dip_deblur.restore import deblur_large

    blurry, sharp, kernel = large_test_image(args.side, args.kernel, seed=args.seed)
    overrides = {key: ast.literal_eval(value)
                 for key, value in (item.split("=", 1) for item in args.set)}
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    start = time.perf_counter()
    result = deblur_large(blurry, args.kernel + 4, region="auto", preset="fast", seed=0,
                          device="cpu", iterations=args.iterations,
                          region_size=args.region_size, **overrides)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    error = kernel_error(result.kernel, kernel)
    record = {
        "study": "large", "side": args.side, "true_kernel": args.kernel,
        "kernel_size": args.kernel + 4, "seconds": seconds,
        "peak_rss_gb": peak / 2**30, "input_arrays_gb": (blurry.nbytes + sharp.nbytes) / 2**30,
        "peak_above_inputs_gb": (peak - baseline) / 2**30,
        "estimate": _host_estimate(result.settings.get("memory_estimate_bytes")),
        "psnr_blurry": _psnr_whole(blurry, sharp),
        "psnr_restored": _psnr_whole(result.image, sharp),
        "psnr_blurry_central": _psnr(blurry, sharp, 32),
        "psnr_restored_central": _psnr(result.image, sharp, 32),
        "central_side": 512,
        "kernel_ncc": getattr(error, "ncc", None),
        "region": str(result.regions[0]) if result.regions else None,
        "iterations": args.iterations, "command": _command(), **_machine(),
    }
    # The reference: the same non-blind step with the true kernel (what a perfect
    # estimate would give), so a loss can be put on the kernel or on the restoration.
    from napari_dip_deblur.nonblind import deconvolve

    oracle = deconvolve(blurry, kernel, method=result.settings["nonblind_method"],
                        **result.settings["nonblind_options"])
    record["psnr_true_kernel"] = _psnr_whole(oracle, sharp)
    record["psnr_true_kernel_central"] = _psnr(oracle, sharp, 32)
    del oracle
    record["region_size"] = args.region_size
    record["blind_iterations"] = result.settings.get("iterations")
    record["blind_channels"] = result.settings.get("channels")
    record["overrides"] = overrides
    record["mosaic_seed"] = args.seed
    record.update({key: result.settings[key] for key in _FIT_CHECK_KEYS
                   if key in result.settings})
    name = f"large_{args.side}" + (f"_seed{args.seed}" if args.seed else "")
    name += f"_its{args.iterations}" if args.iterations else ""
    name += f"_region{args.region_size}" if args.region_size != 224 else ""
    _save(name + "".join(f"_{k}{v}" for k, v in overrides.items()), record)
    if args.keep:
        np.save(args.keep / f"large_{args.side}_restored.npy", result.image)
        np.save(args.keep / f"large_{args.side}_kernel.npy", result.kernel)


# --------------------------------------------------------------------------- suggest size


def study_suggest(args: argparse.Namespace) -> None:
    from napari_dip_deblur.kernel_size import suggest_kernel_size
    from napari_dip_deblur.levin import load_levin

    cases = {c.name: c for c in load_levin()}
    for name in args.images or SUGGEST_IMAGES:
        out = RESULTS / f"suggest_{name}.json"
        if out.exists():
            continue
        case = cases[name]
        start = time.perf_counter()
        suggestion = suggest_kernel_size(case.blurry, args.max_size, preset="fast",
                                         iterations=args.iterations, seed=0, device="cpu")
        _save(out.stem, {
            "study": "suggest", "case": name, "true_size": case.kernel_size,
            "true_support": list(_true_support(case.kernel)),
            "suggested": list(suggestion.size), "support": list(suggestion.support.shape),
            "reliable": bool(getattr(suggestion, "reliable", True)),
            "max_size": args.max_size, "iterations": args.iterations,
            "seconds": time.perf_counter() - start, "command": _command(), **_machine()})


def _true_support(kernel: np.ndarray) -> tuple[int, int]:
    from napari_dip_deblur.kernel_size import kernel_support

    return kernel_support(kernel, 0.97, floor=0.0).shape


# --------------------------------------------------------------------------- oversize


# What the fit check (Settings.retry_mae_ratio) measured and chose, where it ran.
_FIT_CHECK_KEYS = ("noise_level", "fit_ratio", "attempt_fit_ratios", "kept_attempt")


def study_oversize(args: argparse.Namespace) -> None:
    from napari_dip_deblur import deblur
    from napari_dip_deblur.levin import load_levin
    from napari_dip_deblur.metrics import levin_score

    cases = {c.name: c for c in load_levin()}
    overrides = {key: ast.literal_eval(value)
                 for key, value in (item.split("=", 1) for item in args.set)}
    for name in args.images or ["im2_kernel5", "im1_kernel4"]:
        case = cases[name]
        for extra in (args.extra,) if args.oversized_only else (0, args.extra):
            size = case.kernel_size + extra
            suffix = ("_restore" if args.via == "restore" else "") + (
                f"_seed{args.seed}" if args.seed else "") + "".join(
                f"_{k}{v}" for k, v in overrides.items())
            out = RESULTS / f"oversize_{name}_k{size}{suffix}.json"
            if out.exists():
                continue
            start = time.perf_counter()
            if args.via == "restore":  # the kernel cleaned and centred before deconvolving
                from napari_dip_deblur.restore import restore

                result = restore(case.blurry, size, preset="fast", iterations=args.iterations,
                                 seed=args.seed, device="cpu", **overrides)
            else:
                result = deblur(case.blurry, size, preset="fast", iterations=args.iterations,
                                seed=args.seed, device="cpu", **overrides)
            score = levin_score(np.clip(np.round(result.image), 0, 255), case.sharp)
            _save(out.stem, {
                "via": args.via,
                "study": "oversize", "case": name, "true_size": case.kernel_size,
                "kernel_size": size, "psnr": score.psnr, "ssim": score.ssim, "seed": args.seed,
                "overrides": overrides,
                "iterations": (result.settings["iterations"] if args.via == "restore"
                               else result.iterations),
                "deconvolution_kernel_cleaned": (
                    None if args.via == "restore"
                    else result.settings["deconvolution_kernel_cleaned"]),
                **{key: result.settings[key] for key in _FIT_CHECK_KEYS
                   if key in result.settings},
                "seconds": time.perf_counter() - start,
                "command": _command(), **_machine()})


# --------------------------------------------------------------------------- noise


def study_noise(args: argparse.Namespace) -> None:
    """Poisson-noisy synthetic fluorescence (uint16): plain ``fast`` vs noise-aware TV."""
    from napari_dip_deblur import deblur
    from napari_dip_deblur.noise import DEFAULT_TV_WEIGHT, noise_aware_overrides
    from napari_dip_deblur.samples import blurred_fluorescence

    for photons in args.photons:
        sample = blurred_fluorescence(args.fluo_size, photons=photons, seed=0)
        blurry = np.round(sample.blurry).astype(np.uint16)
        peak = float(sample.sharp.max())
        for label, overrides in (("plain", {}), ("noise-aware", noise_aware_overrides("fast"))):
            out = RESULTS / f"noise_p{photons:g}_{label}.json"
            if out.exists():
                continue
            start = time.perf_counter()
            result = deblur(blurry, sample.kernel.shape[0] + 4, preset="fast",
                            iterations=args.iterations, seed=0, device="cpu", **overrides)
            _save(out.stem, {
                "study": "noise", "photons": photons, "variant": label,
                "tv_weight": DEFAULT_TV_WEIGHT if overrides else 0.0,
                "size": args.fluo_size, "psnr_blurry": _psnr(blurry / peak, sample.sharp / peak, 8),
                "psnr_restored": _psnr(result.image / peak, sample.sharp / peak, 8),
                "psnr_generator": _psnr(result.generator_image / peak, sample.sharp / peak, 8),
                "mean_ratio": float(result.image.mean() / blurry.mean()),
                "iterations": result.iterations,
                "seconds": time.perf_counter() - start,
                "command": _command(), **_machine()})


# --------------------------------------------------------------------------- report


def _command(script: str = "benchmarks/real_inputs.py") -> str:
    return "python " + " ".join(shlex.quote(a) for a in [script, *sys.argv[1:]])


def _load(prefix: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(RESULTS.glob(f"{prefix}*.json"))]


def write_report() -> None:
    lines = ["# Real inputs, measured", "",
             "Written by `python benchmarks/real_inputs.py --report` from the JSON files in "
             "`benchmarks/results/real-inputs/`; each section names the command, machine and "
             "date of its runs.", ""]
    large = _load("large")
    if large:
        lines += _large_section(large)
    suggest = _load("suggest")
    if suggest:
        first = suggest[0]
        lines += [
            "## Suggesting the kernel size on the Levin set", "",
            f"`{first['command']}`, {first['date'][:10]}, {first['platform']}, "
            f"{first['cpu_count']} CPUs, commit {first['git_commit']}: "
            f"`suggest_kernel_size(blurry, {first['max_size']}, preset='fast', "
            f"iterations={first['iterations']})`, one image per kernel. The Levin kernels are "
            "stored in square arrays (true size); their 97 % support is smaller.", "",
            "| case | true array size | true 97 % support | suggested | seconds |",
            "|---|---|---|---|---|"]
        for r in suggest:
            lines.append(f"| {r['case']} | {r['true_size']} | "
                         f"{r['true_support'][0]} x {r['true_support'][1]} | "
                         f"{r['suggested'][0]} x {r['suggested'][1]} | {r['seconds']:.0f} |")
        covered = sum(all(s >= t for s, t in zip(r["suggested"], r["true_support"],
                                                 strict=True)) for r in suggest)
        square = sum(min(r["suggested"]) >= max(r["true_support"]) for r in suggest)
        lines += ["", f"The suggestion covers the true kernel's 97 % support along each axis "
                  f"in {covered} of {len(suggest)} cases (its smaller side covers the "
                  f"support's larger side in {square}).", ""]
    oversize = _load("oversize")
    if oversize:
        runs = sorted({(r["date"][:10], r["git_commit"], r["command"]) for r in oversize})
        lines += ["## An oversized kernel", "",
                  "The `fast` preset with the true kernel size and larger ones (14 px larger, "
                  "one row 6 px); Levin protocol: PSNR after the best shift of up to 5 px. "
                  "Each row's settings give its overrides and the iterations it ran; the "
                  "commit gives the preset of the day (at `012989c` it was briefly 48 channels "
                  "and 440 iterations; 64 and 300 otherwise). The final deconvolution uses the "
                  "estimate centred, and cleaned of its noise floor where it looks oversized "
                  "(`kernel_size.deconvolution_kernel`; `restore` does the same). Runs, on "
                  f"{oversize[0]['platform']}:", "",
                  *(f"- `{command}`: {date}, commit {commit}" for date, commit, command in runs),
                  "",
                  "| case | kernel size | seed | settings | PSNR | SSIM | kernel cleaned | "
                  "seconds |", "|---|---|---|---|---|---|---|---|"]
        gate = {(r["case"], r["kernel_size"]): r["cleaned_by_gate"]
                for r in (json.loads(REPLAY.read_text())["rows"] if REPLAY.exists() else [])
                if r["source"] == "oversize"}
        for r in sorted(oversize, key=lambda r: (r["case"], r["kernel_size"], r.get("seed", 0),
                                                 str(r.get("overrides", {})))):
            # Records from before the field existed: the gate's verdict on the same estimate.
            cleaned = r.get("deconvolution_kernel_cleaned",
                            gate.get((r["case"], r["kernel_size"])))
            changed = ", ".join(f"{k}={v}" for k, v in r.get("overrides", {}).items())
            lines.append(f"| {r['case']} | {r['kernel_size']} (true {r['true_size']}) | "
                         f"{r.get('seed', 0)} | {changed or 'fast'}, {r['iterations']} its | "
                         f"{r['psnr']:.2f} | {r['ssim']:.3f} | "
                         f"{'-' if cleaned is None else ('yes' if cleaned else 'no')} | "
                         f"{r['seconds']:.0f} |")
        lines.append("")
    lines += _replay_section()
    noise = _load("noise")
    if noise:
        first = noise[0]
        lines += ["## Photon noise: the noise-aware option", "",
                  f"`{first['command']}`, {first['date'][:10]}, {first['platform']}, commit "
                  f"{first['git_commit']}: `samples.blurred_fluorescence({first['size']}, "
                  "photons=P)` (spots and filaments, Gaussian PSF, Poisson noise, as uint16), "
                  "`deblur(..., preset='fast')` with and without `noise_aware_overrides('fast')` "
                  "(TV kept in the last interval). PSNR against the noise-free sharp image, "
                  "peak = its maximum; 'generator' is the network's image before the final "
                  "non-blind deconvolution; 'mean ratio' is restored / input mean intensity.",
                  "", "| photons at peak | variant | PSNR blurry | PSNR restored | "
                  "PSNR generator | mean ratio | seconds |", "|---|---|---|---|---|---|---|"]
        for r in sorted(noise, key=lambda r: (r["photons"], r["variant"])):
            lines.append(f"| {r['photons']:g} | {r['variant']} | {r['psnr_blurry']:.2f} | "
                         f"{r['psnr_restored']:.2f} | {r['psnr_generator']:.2f} | "
                         f"{r['mean_ratio']:.3f} | {r['seconds']:.0f} |")
        lines.append("")
    DOCS.parent.mkdir(parents=True, exist_ok=True)
    DOCS.write_text("\n".join(lines))
    print(f"wrote {DOCS}")


REPLAY = REPO / "benchmarks" / "results" / "experiments" / "kernel_cleaning.json"


def _replay_section() -> list[str]:
    """The final deconvolution replayed with each way of preparing the same estimates."""
    if not REPLAY.exists():
        return []
    replay = json.loads(REPLAY.read_text())
    lines = ["## Preparing the estimate for the final deconvolution", "",
             "`python benchmarks/kernel_cleaning.py --levin benchmarks/results/cpu-fast "
             "benchmarks/results/gpu-fast --oversize benchmarks/results/experiments/"
             "oversize-kernels --out benchmarks/results/experiments/kernel_cleaning.json` "
             "(2026-11-25, this 2-core CPU, seconds). It deconvolves the blurry input again "
             "with the kernels that finished `fast` runs estimated (the Levin runs, and the "
             "oversize study's kept kernels) prepared four ways: *raw* (what `deblur` did "
             "before), *centred*, *cleaned* (noise floor removed, then centred; what "
             "`restore` did, before it kept the centred kernel uncropped) and *gated* "
             "(centred; cleaned only where `kernel_size.needs_cleaning` finds the estimate "
             "oversized: what both do now). Mean PSNR (dB), Levin protocol.", "",
             "| kernels | n | cleaned by the gate | raw | centred | cleaned | gated |",
             "|---|---|---|---|---|---|---|"]
    for source, s in replay["summary"].items():
        lines.append(f"| {source} | {s['n']} | {s['cleaned_by_gate']} | {s['raw']:.2f} | "
                     f"{s['centred']:.2f} | {s['cleaned']:.2f} | {s['gated']:.2f} |")
    lines += ["", "Per oversize-study case:", "",
              "| case | kernel size | raw | centred | cleaned | gated |",
              "|---|---|---|---|---|---|"]
    for r in replay["rows"]:
        if r["source"] == "oversize":
            lines.append(f"| {r['case']} | {r['kernel_size']} (true {r['true_size']}) | "
                         f"{r['raw']:.2f} | {r['centred']:.2f} | {r['cleaned']:.2f} | "
                         f"{r['gated']:.2f} |")
    return [*lines, ""]


def _large_section(records: list[dict]) -> list[str]:
    """The large-image study: one description, one row per run (mosaic seed, settings)."""
    first = records[0]
    lines = [
        f"## A {first['side']} x {first['side']} image", "",
        "scikit-image's bundled photos and textures (camera, astronaut, coffee, chelsea, "
        "rocket, brick, grass, gravel) as 512 x 512 tiles at native scale, randomly flipped "
        "(the mosaic's seed also draws the kernel), blurred by a "
        f"{first['true_kernel']} x {first['true_kernel']} motion kernel (streak length "
        f"{0.9 * first['true_kernel']:g} px) plus Gaussian noise (std 0.002); "
        f"`deblur_large(image, {first['kernel_size']}, region='auto', preset='fast', ...)`: "
        "the kernel estimated on the automatically chosen crop, the whole image restored by "
        "hyper-Laplacian deconvolution. Blind settings: iterations x generator channels on "
        "the crop (600 x 32, one start, is what `fast` runs on a region, "
        "`restore.REGION_FAST_OVERRIDES`; 440 x 48 is the preset's own since 2026-11-26, "
        "two starts with the sharper kept; 300 x 64 was its own before). Compare rows of "
        "one date: 600 x 32 on mosaic 0 gave 3.1 dB less (whole image) at commit a98e417 "
        "than at d484f24 and 6299d73; the code changed in between (the channels-last "
        "layout among others) and the cause is not isolated.", "",
        "*Whole*: PSNR (peak 1) over the whole image less a 32 px border, at the best "
        "integer shift within +-4 px. *Central*: the central 512 x 512 crop, aligned to the "
        "quarter pixel as the Levin protocol does (a blind kernel may move the image by a "
        "fraction of a pixel, which the integer search counts as error). *True kernel*: the "
        "same non-blind step with the true kernel, the ceiling a perfect estimate would "
        "reach.", "",
        "| mosaic seed | blind settings | date | crop | wall time (s) | peak RSS (GB) | "
        "estimated up front | PSNR blurry (whole / central) | PSNR restored (whole / "
        "central) | PSNR, true kernel (whole / central) | kernel NCC |",
        "|---|---|---|---|---|---|---|---|---|---|---|"]
    def key(r: dict) -> tuple:
        return (r.get("mosaic_seed", 0), r.get("blind_channels") or 0, r.get("region_size", 224))

    for r in sorted(records, key=key):
        true = (f"{r['psnr_true_kernel']:.2f} / {r['psnr_true_kernel_central']:.2f}"
                if "psnr_true_kernel" in r else "–")
        ncc = "–" if r["kernel_ncc"] is None else format(r["kernel_ncc"], ".3f")
        lines.append(
            f"| {r.get('mosaic_seed', 0)} | {r.get('blind_iterations')} x "
            f"{r.get('blind_channels')} | {r['date'][:10]} | {r['region']} | "
            f"{r['seconds']:.1f} | "
            f"{r['peak_rss_gb']:.2f} | {_estimate_text(r.get('estimate') or {})} | "
            f"{r['psnr_blurry']:.2f} / {r['psnr_blurry_central']:.2f} | "
            f"{r['psnr_restored']:.2f} / {r['psnr_restored_central']:.2f} | {true} | {ncc} |")
    lines += ["", "Runs (one process each; the two test images take "
              f"{first['input_arrays_gb']:.2f} GB of the peak):", ""]
    for r in sorted(records, key=key):
        lines.append(f"- `{r['command']}`: {r['date'][:10]}, {r['platform']}, "
                     f"{r['cpu_count']} CPUs ({r['torch_threads']} torch threads), torch "
                     f"{r['torch']}, commit {r['git_commit']}"
                     f"{' (dirty)' if r['git_dirty'] else ''}")
    return [*lines, ""]


def _host_estimate(parts: dict | None) -> dict | None:
    """The up-front estimate's parts and its host total (a CPU run: the arrays plus the
    larger of the blind and non-blind parts, which run one after the other)."""
    if not parts:
        return None
    return {**parts, "host": parts["arrays"] + max(parts["blind"], parts["nonblind"])}


def _estimate_text(estimate: dict | None) -> str:
    return f"{estimate['host'] / 2**30:.2f} GB" if estimate else "–"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--study", choices=["large", "suggest", "oversize", "noise"])
    parser.add_argument("--report", action="store_true")
    parser.add_argument("--side", type=int, default=4096)
    parser.add_argument("--kernel", type=int, default=15, help="true kernel size (large)")
    parser.add_argument("--iterations", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0,
                        help="large: seed of the test mosaic and its motion kernel; "
                             "oversize: seed of the blind runs")
    parser.add_argument("--region-size", type=int, default=224,
                        help="large: side of the automatically chosen crop")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="large, oversize: a Settings override of the blind run (Python "
                             "literal), e.g. channels=32; repeatable")
    parser.add_argument("--max-size", type=int, default=41)
    parser.add_argument("--extra", type=int, default=14, help="oversize: pixels added")
    parser.add_argument("--oversized-only", action="store_true",
                        help="oversize: skip the run at the true size")
    parser.add_argument("--via", choices=["deblur", "restore"], default="deblur",
                        help="oversize: deblur (raw kernel) or restore (cleaned kernel)")
    parser.add_argument("--images", nargs="+", default=None)
    parser.add_argument("--photons", type=float, nargs="+", default=[50.0, 500.0],
                        help="noise: expected photons at the brightest sharp pixel")
    parser.add_argument("--fluo-size", type=int, default=128)
    parser.add_argument("--keep", type=Path, default=None,
                        help="large: a folder to save the restored image and kernel in")
    args = parser.parse_args(argv)
    if args.study == "large":
        study_large(args)
    elif args.study == "suggest":
        study_suggest(args)
    elif args.study == "oversize":
        study_oversize(args)
    elif args.study == "noise":
        study_noise(args)
    if args.report:
        write_report()
    if not args.study and not args.report:
        parser.error("give --study and/or --report")


if __name__ == "__main__":
    main()
