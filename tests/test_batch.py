"""The batch API and ``dip-deblur batch`` on a real Dask LocalCluster of 2 worker processes.

One cluster serves the whole module (it takes a few seconds to start). Tiny images, few
iterations, tiny networks. The test that kills a worker runs last: the nanny restarts it.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile
import torch

from napari_dip_deblur.batch import (
    batch_items,
    deblur_batch,
    default_layout,
    estimate_shared_kernel,
)
from napari_dip_deblur.cli import main
from napari_dip_deblur.restore import restore
from napari_dip_deblur.samples import blurred_photo

distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")

TINY = {"channels": 8, "levels": 3, "skip_channels": 4, "non_local_levels": (), "starts": 1}
ITERATIONS = 15


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None,
                                       env={"OMP_NUM_THREADS": "1"})
    with distributed.Client(cluster) as connected:
        yield connected
    cluster.close()


@pytest.fixture
def ready(client):
    client.wait_for_workers(2, timeout=60)  # after a killed worker, its restart
    return client


def _stack(n: int, size: int = 48) -> np.ndarray:
    return np.stack([blurred_photo(size, 5, seed=s).blurry for s in range(n)]).astype(
        np.float32)


def _single_threaded(function, *args, **kwargs):
    """The in-process reference, on one torch thread like each worker."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return function(*args, **kwargs)
    finally:
        torch.set_num_threads(before)


def _summary(folder: Path) -> dict[str, dict[str, str]]:
    with open(folder / "summary.csv", newline="") as handle:
        return {Path(row["input"]).name: row for row in csv.DictReader(handle)}


def test_per_plane_items_equal_the_single_image_api(ready):
    stack = _stack(3)
    before = stack.copy()
    items = list(deblur_batch(stack, 5, client=ready, iterations=ITERATIONS, seed=3, **TINY))
    assert np.array_equal(stack, before)
    assert sorted(item.index for item in items) == [0, 1, 2]
    for item in items:
        assert item.status == "done", item.error
        reference = _single_threaded(restore, stack[item.key], 5, mode="per_plane",
                                     iterations=ITERATIONS, seed=3, **TINY)
        np.testing.assert_allclose(item.image, reference.image, atol=1e-5)
        np.testing.assert_allclose(item.kernel, reference.kernels, atol=1e-6)


def test_shared_kernel_is_restore_on_the_reference_and_every_item_uses_it(ready, tmp_path):
    stack = _stack(3)
    paths = []
    for i, plane in enumerate(stack):
        paths.append(tmp_path / f"frame{i}.png")
        iio.imwrite(paths[-1], np.rint(np.clip(plane, 0, 1) * 255).astype(np.uint8))
    shared = estimate_shared_kernel([str(p) for p in paths], 5, reference=1, client=ready,
                                    iterations=ITERATIONS, **TINY)
    frame1 = iio.imread(paths[1])
    expected = _single_threaded(restore, frame1, 5, iterations=ITERATIONS, **TINY)
    np.testing.assert_allclose(shared.kernel, expected.kernel, atol=1e-6)
    assert shared.weight == expected.settings["nonblind_options"]["weight"]

    items = list(deblur_batch(str(tmp_path / "frame*.png"), kernel=shared.kernel,
                              mode="shared", client=ready,
                              nonblind_options={"weight": shared.weight}))
    assert sorted(item.key for item in items) == sorted(str(p) for p in paths)
    for item in items:
        alone = restore(iio.imread(item.key), kernel=shared.kernel,
                        nonblind_options={"weight": shared.weight})
        np.testing.assert_allclose(item.image, alone.image, atol=1e-4)
        assert np.array_equal(item.kernel, alone.kernel)
        assert item.value_range.dtype == np.uint8


def test_a_dask_stack_is_read_plane_by_plane_never_whole(ready, tmp_path, monkeypatch):
    stack = _stack(4)
    marks = tmp_path / "computed"
    marks.mkdir()

    def counted(block, block_info=None):  # pickled by value: runs on the workers
        import uuid as _uuid

        plane = block_info[0]["chunk-location"][0]
        (marks / f"{plane}-{_uuid.uuid4().hex}").touch()
        return block

    lazy = da.from_array(stack, chunks=(1, 48, 48)).map_blocks(counted, dtype=np.float32)

    def refuse(self, *args, **kwargs):
        raise AssertionError(f"np.asarray on a dask array of shape {self.shape}")

    monkeypatch.setattr(da.Array, "__array__", refuse)
    items = list(deblur_batch(lazy, 5, client=ready, iterations=5, window=2, **TINY))
    assert [item.status for item in items] == ["done"] * 4
    computed = sorted(int(name.split("-")[0]) for name in os.listdir(marks))
    assert computed == [0, 1, 2, 3]  # each plane's chunk once, nothing else


class _PlanesOnly:
    """An array-like (as a zarr array is) that serves one plane at a time and refuses to be
    read whole."""

    def __init__(self, data: np.ndarray) -> None:
        self.data, self.shape, self.dtype, self.ndim = data, data.shape, data.dtype, data.ndim
        self.requests: list[tuple] = []

    def __getitem__(self, index):
        self.requests.append(index)
        plane = self.data[index]
        if plane.ndim != 2:
            raise AssertionError(f"more than one plane asked for: {index}")
        return plane.copy()

    def __array__(self, *args, **kwargs):
        raise AssertionError("read whole")


def test_an_array_like_is_read_one_plane_at_a_time(ready):
    lazy = _PlanesOnly(_stack(3))
    items = list(deblur_batch(lazy, 5, client=ready, iterations=5, window=1, **TINY))
    assert sorted(item.index for item in items) == [0, 1, 2]
    assert all(item.status == "done" for item in items)
    assert sorted(lazy.requests) == [(0,), (1,), (2,)]


def test_bad_arguments_are_refused_before_anything_runs(tmp_path):
    with pytest.raises(ValueError, match="mode"):
        deblur_batch(_stack(2), 5, mode="each")
    with pytest.raises(ValueError, match="kernel_size"):
        deblur_batch(_stack(2))
    with pytest.raises(ValueError, match="channel_axis"):
        deblur_batch(np.zeros((2, 32, 32, 3)), 5, channel_axis=0)
    with pytest.raises(ValueError, match="matches no file"):
        deblur_batch(str(tmp_path / "*.png"), 5)
    with pytest.raises(ValueError, match="workers"):
        deblur_batch(_stack(2), 5, client="tcp://127.0.0.1:1", workers=2)
    with pytest.raises(TypeError, match="inputs"):
        deblur_batch(42, 5)
    with pytest.raises(ValueError, match="skip"):
        deblur_batch(_stack(2), 5, skip=[2])
    with pytest.raises(ValueError, match="chanels"):  # a typo in an option: not per task
        deblur_batch(_stack(2), 5, chanels=8)
    with pytest.raises(ValueError, match="odd sides"):
        deblur_batch(_stack(2), kernel=np.ones((4, 4)), mode="shared")
    assert batch_items(np.zeros((2, 3, 32, 32))) == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1),
                                                     (1, 2)]
    assert default_layout(cores=16) == (16, 1)
    assert default_layout(4, cores=16) == (4, 4)


def test_cli_reports_a_corrupt_file_and_a_nan_image_and_restores_the_rest(ready, tmp_path):
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    for i, plane in enumerate(_stack(2)):
        iio.imwrite(folder / f"good{i}.png", np.rint(plane * 255).astype(np.uint8))
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    nan = _stack(1)[0]
    nan[3, 4] = np.nan
    tifffile.imwrite(folder / "holes.tif", nan)
    address = ready.scheduler.address
    status = main(["batch", str(folder), "-k", "5", "-o", str(out), "--scheduler", address,
                   "--iterations", "10", "--starts", "1", "-q"])
    assert status == 1
    rows = _summary(out)
    assert rows["broken.png"]["status"] == "failed"
    assert "cannot read broken.png" in rows["broken.png"]["error"]
    assert rows["holes.tif"]["status"] == "failed" and "NaN" in rows["holes.tif"]["error"]
    for name in ("good0", "good1"):
        assert rows[f"{name}.png"]["status"] == "done"
        assert rows[f"{name}.png"]["kernel_size"] == "5x5"
        restored = iio.imread(out / f"{name}.png")
        assert restored.dtype == np.uint8 and restored.shape == (48, 48)
        kernel = np.load(out / f"{name}.kernel.npy")
        assert kernel.shape == (5, 5) and abs(float(kernel.sum()) - 1) < 1e-4
    assert not (out / "broken.png").exists() and not (out / "holes.tif").exists()
    assert not [p for p in out.iterdir() if ".part" in p.name]


def test_cli_shared_mode_keeps_its_kernel_for_a_resumed_run(ready, tmp_path):
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    for i, plane in enumerate(_stack(3)):
        iio.imwrite(folder / f"w{i}.png", np.rint(plane * 255).astype(np.uint8))
    command = ["batch", str(folder / "w*.png"), "-k", "5", "-o", str(out), "--mode",
               "shared", "--reference", "2", "--scheduler", ready.scheduler.address,
               "--iterations", "10", "--starts", "1", "-q"]
    assert main(command) == 0
    shared = np.load(out / "batch-shared-kernel.npy")
    assert shared.shape == (5, 5)
    for i in range(3):
        assert np.array_equal(np.load(out / f"w{i}.kernel.npy"), shared)
    stamp = (out / "batch-shared-kernel.npy").stat().st_mtime_ns
    (out / "w1.png").unlink()
    assert main(command) == 0
    rows = _summary(out)
    assert [rows[f"w{i}.png"]["status"] for i in range(3)] == ["skipped", "done", "skipped"]
    assert (out / "batch-shared-kernel.npy").stat().st_mtime_ns == stamp  # not re-estimated
    assert np.array_equal(np.load(out / "w1.kernel.npy"), shared)


@pytest.mark.slow  # a subprocess interrupted for real: end to end
def test_cli_interrupted_by_ctrl_c_keeps_its_outputs_and_resumes_with_what_is_left(
        ready, tmp_path):
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    for i, plane in enumerate(_stack(6)):
        tifffile.imwrite(folder / f"t{i}.tif", plane)
    command = [sys.executable, "-m", "napari_dip_deblur.cli", "batch", str(folder), "-k",
               "5", "-o", str(out), "--scheduler", ready.scheduler.address,
               "--iterations", "60", "--starts", "1", "-q"]
    run = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not list(out.glob("t*.tif")) and time.monotonic() < deadline:
        time.sleep(0.05)  # wait for the first output (written last, after its kernel)
    run.send_signal(signal.SIGINT)
    _, errors = run.communicate(timeout=60)
    assert run.returncode == 130, errors
    assert "interrupted" in errors
    first = _summary(out)
    written = sorted(name for name, row in first.items() if row["status"] == "done")
    assert 1 <= len(written) < 6
    assert all(first[name]["status"] == "pending" for name in first if name not in written)
    stamps = {name: (out / name).stat().st_mtime_ns for name in written}
    for name in written:  # complete files: every one reads back whole
        assert tifffile.imread(out / name).shape == (48, 48)

    status = main(["batch", str(folder), "-k", "5", "-o", str(out), "--scheduler",
                   ready.scheduler.address, "--iterations", "60", "--starts", "1", "-q"])
    assert status == 0
    second = _summary(out)
    assert sorted(name for name, row in second.items() if row["status"] == "skipped") \
        == written
    assert all(second[name]["status"] == "done" for name in second if name not in written)
    assert {name: (out / name).stat().st_mtime_ns for name in written} == stamps
    assert len(list(out.glob("t*.tif"))) == 6


@pytest.mark.slow  # a worker process killed for real: end to end
def test_a_worker_killed_mid_task_costs_a_retry_not_the_batch(ready):
    stack = _stack(4)
    pids = ready.run(os.getpid)
    killed: list[int] = []

    def kill_a_busy_worker() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            busy = [address for address, keys in ready.processing().items()
                    if any(str(key).startswith("dip-deblur-") for key in keys)]
            if busy:
                killed.append(pids[busy[0]])
                os.kill(pids[busy[0]], signal.SIGKILL)
                return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_a_busy_worker)
    killer.start()
    items = list(deblur_batch(stack, 5, client=ready, iterations=200, **TINY))
    killer.join()
    assert killed, "no task was seen running"
    assert sorted(item.index for item in items) == [0, 1, 2, 3]
    assert all(item.status == "done" for item in items), [item.error for item in items]
    with pytest.raises(ProcessLookupError):
        os.kill(killed[0], 0)
