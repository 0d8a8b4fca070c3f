"""Many images at once on Dask's distributed scheduler: files, stacks, lazy arrays.

Each unit of work (an *item*) is one file or one plane of an array, and each runs the
single-image pipeline, :func:`napari_dip_deblur.restore.restore`, in a task on a worker:

- ``mode="per_plane"`` (the default): a blind estimate on each item, a kernel each;
- ``mode="shared"``: one kernel estimated blindly on one item (``reference``, default the
  best-textured), then every item restored with it by the non-blind step
  (``restore(item, kernel=shared.kernel)``); ``kernel=`` gives that kernel directly.

:func:`deblur_batch` is a generator of :class:`BatchItem`, one per item in the order they
finish, so results can be written or shown as they come. Work runs on a
``dask.distributed.LocalCluster`` sized to the machine (:func:`open_client`), or on any
cluster given by its client or scheduler address (``client=``). No napari.

Faults: an item that cannot be read or restored (a corrupt file, NaN values, a constant or
too small image) comes back with ``status="failed"`` and its error, and the others go on; a
worker process that dies takes its task to another worker (the scheduler reschedules it);
other exceptions of a task are retried ``retries`` times. Closing the generator (``break``,
Ctrl-C) cancels the tasks not yet finished.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .presets import DEFAULT_PRESET

__all__ = [
    "BATCH_MODES",
    "BatchItem",
    "SharedKernel",
    "batch_items",
    "deblur_batch",
    "default_layout",
    "estimate_shared_kernel",
    "open_client",
]

BATCH_MODES = ("per_plane", "shared")

_TORCH_THREADS_VARIABLE = "DIP_DEBLUR_TORCH_THREADS"


@dataclass(frozen=True)
class BatchItem:
    """The outcome of one item of :func:`deblur_batch`.

    Attributes
    ----------
    index : int
        The item's position in the batch: the file's place in the input list, or the
        plane's flat index in the stack (``np.ravel_multi_index(key, stack_shape)``).
    key : str or tuple of int
        The file's path, or the plane's index into the stack's leading axes.
    status : {"done", "failed"}
    image : ndarray of float32 or None
        The restored file or plane (the input's shape and intensity scale); None if failed.
    kernel : ndarray of float32 or None
        The kernel it was restored with: ``(kh, kw)``, or ``(*stack, kh, kw)`` for a TIFF
        stack file in per-plane mode (a kernel per plane). None if failed.
    seconds : float
        Time of the task on its worker (reading and restoring).
    error : str or None
        Why it failed.
    value_range : ndarray or None
        ``[min, max]`` of the input in its own dtype: enough to write the result on the
        input's scale (:func:`napari_dip_deblur.batch_io.write_result`).
    colour : bool
        Whether the item was read as colour.
    worker : str or None
        The worker that ran it.
    """

    index: int
    key: Any
    status: str
    image: np.ndarray | None = None
    kernel: np.ndarray | None = None
    seconds: float = 0.0
    error: str | None = None
    value_range: np.ndarray | None = None
    colour: bool = False
    worker: str | None = None


@dataclass(frozen=True)
class SharedKernel:
    """One kernel for a whole batch (:func:`estimate_shared_kernel`).

    Attributes
    ----------
    kernel : (kh, kw) ndarray of float32
        Centred, sums to 1, convolution orientation (``RestoreResult.kernel``).
    weight : float or None
        The non-blind prior weight the blind run's preset ends with (``fast``: 1.25e-4), to
        restore every item with; None: the non-blind solver's default.
    reference : int
        The item it was estimated on.
    seconds : float
    """

    kernel: np.ndarray
    weight: float | None
    reference: int
    seconds: float


@dataclass(frozen=True)
class _Spec:
    """What every task of a batch needs besides its data (small: sent with each task)."""

    kernel_size: Any
    kernel: np.ndarray | None
    mode: str
    colour: str  # files: "auto", "rgb" or "grey"
    channel_axis: int | None  # arrays: -1 or None
    restore_options: dict[str, Any] = field(default_factory=dict)
    torch_threads: int | None = None


@dataclass
class _Source:
    """The items of a batch and how a task gets its data."""

    kind: str  # "files", "array" (numpy or array-like) or "dask"
    keys: list[Any]
    array: Any = None
    stack_shape: tuple[int, ...] = ()

    def data(self, client: Any, index: int, retries: int) -> Any:
        key = self.keys[index]
        if self.kind == "files":
            return str(key)
        if self.kind == "dask":  # computed on the cluster, recomputed if its worker dies
            return client.compute(self.array[key], retries=retries)
        # A plane read here (one at a time) and sent inside its task, so the scheduler
        # holds it and can run the task again elsewhere if a worker dies.
        return np.ascontiguousarray(self.array[key])


# --------------------------------------------------------------------------- the cluster


def default_layout(workers: int | None = None, cores: int | None = None) -> tuple[int, int]:
    """Worker processes and torch threads per worker for a machine: workers x threads =
    cores.

    Default: one single-threaded worker per core. One blind run per core is the most work
    per core-second (a start on one thread was measured 1.28-1.31x faster per core-second
    than on two; ``docs/benchmarks/batch.md`` measures the batch). ``workers`` fewer than
    the cores gives each ``cores // workers`` threads (fewer processes: less memory).
    """
    if cores is None:
        cores = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                 else os.cpu_count() or 1)
    if workers is None:
        return cores, 1
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    return int(workers), max(1, cores // int(workers))


@contextlib.contextmanager
def open_client(client: Any = None, *, workers: int | None = None,
                threads_per_worker: int | None = None, device: str = "auto",
                memory_limit: str | float | None = "auto") -> Iterator[Any]:
    """A ``distributed.Client`` for a batch: the one given, one connected to an address, or
    one on a new ``LocalCluster`` (closed on exit).

    Parameters
    ----------
    client : distributed.Client, str or None
        A client (used as it is, not closed), a scheduler address (``"tcp://host:8786"``:
        any deployment, e.g. dask-jobqueue's Slurm or PBS clusters), or None: a local
        cluster sized by :func:`default_layout`.
    workers, threads_per_worker : int, optional
        The local cluster's worker processes and torch threads per worker (default: one
        single-threaded worker per core). Each worker runs one task at a time.
    device : str
        ``"auto"`` or ``"cuda..."`` with CUDA present: one worker per GPU, each advertising
        the resource ``GPU=1`` so that it runs one task at a time.
    memory_limit : str or float or None
        Each local worker's memory limit (distributed's ``memory_limit``).
    """
    from distributed import Client, LocalCluster

    if client is not None:
        if workers is not None or threads_per_worker is not None:
            raise ValueError("workers and threads_per_worker size a local cluster; with "
                             "client= the cluster is already sized")
        if isinstance(client, str):
            with Client(client) as connected:
                yield connected
        elif isinstance(client, Client):
            yield client
        else:
            raise TypeError(f"client must be a distributed.Client, a scheduler address or "
                            f"None, got {type(client).__name__}")
        return
    n_workers, threads = default_layout(workers)
    if threads_per_worker is not None:
        if isinstance(threads_per_worker, bool) or \
                not isinstance(threads_per_worker, (int, np.integer)) or threads_per_worker < 1:
            raise ValueError(f"threads_per_worker must be an integer >= 1, got "
                             f"{threads_per_worker!r}")
        threads = int(threads_per_worker)
    resources = None
    gpus = _local_gpus(device)
    if gpus:
        n_workers, threads, resources = (workers or gpus), threads_per_worker or 1, {"GPU": 1}
    # One task per worker (dask threads 1); torch's threads set through the environment of
    # the worker process and again in each task (_set_torch_threads).
    env = {"OMP_NUM_THREADS": str(threads), _TORCH_THREADS_VARIABLE: str(threads)}
    cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                           dashboard_address=None, env=env, resources=resources,
                           memory_limit=memory_limit)
    try:
        with Client(cluster) as local:
            yield local
    finally:
        cluster.close()


def _local_gpus(device: str) -> int:
    if not (device == "auto" or str(device).startswith("cuda")):
        return 0
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _uses_gpus(client: Any) -> bool:
    """Whether the cluster's workers advertise a GPU resource (then a task takes one)."""
    workers = client.scheduler_info().get("workers", {})
    return any("GPU" in (info.get("resources") or {}) for info in workers.values())


# --------------------------------------------------------------------------- the inputs


def batch_items(inputs: Any, *, channel_axis: int | None = None) -> list[Any]:
    """The items of a batch, in order: file paths, or plane indices of an array.

    Parameters
    ----------
    inputs : path, glob pattern, folder, list of them; or array
        Files (PNG, JPEG, TIFF; a TIFF stack file is one item); or an array whose planes
        are the items: ``(*stack, M, N)`` (or ``(*stack, M, N, C)`` with
        ``channel_axis=-1``) as a numpy array, a dask array, or any array-like with
        ``shape``, ``dtype`` and numpy indexing (a zarr array), read one plane at a time.
    """
    return list(_as_source(inputs, channel_axis).keys)


def _as_source(inputs: Any, channel_axis: int | None) -> _Source:
    if isinstance(inputs, (str, os.PathLike)) or (
            isinstance(inputs, (list, tuple)) and inputs
            and all(isinstance(i, (str, os.PathLike)) for i in inputs)):
        from .batch_io import expand_inputs

        if channel_axis is not None:
            raise ValueError("channel_axis applies to arrays; for files give colour= "
                             "('auto', 'rgb' or 'grey')")
        return _Source("files", [str(path) for path in expand_inputs(inputs)])
    kind = _array_kind(inputs)
    if kind is None:
        raise TypeError(f"inputs must be file paths, a glob pattern, a folder, or an array "
                        f"(numpy, dask, zarr), got {type(inputs).__name__}")
    shape = tuple(int(s) for s in inputs.shape)
    if channel_axis is not None and channel_axis not in (-1, len(shape) - 1):
        raise ValueError(f"channel_axis must be -1 (the last axis) for a batch, got "
                         f"{channel_axis}; move it last (np.moveaxis) first")
    spatial = 2 if channel_axis is None else 3
    if len(shape) < spatial:
        raise ValueError(f"inputs must have at least {spatial} axes (a plane"
                         f"{' and colour' if spatial == 3 else ''}), got shape {shape}")
    dtype = np.dtype(inputs.dtype)
    if dtype.kind == "b" or not (np.issubdtype(dtype, np.integer)
                             or np.issubdtype(dtype, np.floating)):
        raise ValueError(f"inputs must hold real numbers (integer or float), got dtype {dtype}")
    stack_shape = shape[:len(shape) - spatial]
    keys = [tuple(int(i) for i in index) for index in np.ndindex(*stack_shape)]
    return _Source(kind, keys, inputs, stack_shape)


def _array_kind(inputs: Any) -> str | None:
    if isinstance(inputs, np.ndarray):
        return "array"
    try:
        import dask.array as da
    except ImportError:  # pragma: no cover - dask is a dependency
        da = None
    if da is not None and isinstance(inputs, da.Array):
        return "dask"
    if all(hasattr(inputs, name) for name in ("shape", "dtype", "__getitem__")):
        return "array"
    return None


# --------------------------------------------------------------------------- the tasks


def _set_torch_threads(threads: int | None) -> None:
    import torch

    threads = threads or int(os.environ.get(_TORCH_THREADS_VARIABLE, "0") or 0)
    if threads and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def _worker_device(device: str) -> str:
    """On a worker of a local GPU cluster (named 0, 1, ...), its own GPU."""
    if device not in ("auto", "cuda"):
        return device
    import torch

    if not torch.cuda.is_available():
        return device
    try:
        from distributed import get_worker

        name = get_worker().name
    except ValueError:  # not on a worker
        return device
    return f"cuda:{int(name) % torch.cuda.device_count()}" if str(name).isdigit() else device


def _load(data: Any, spec: _Spec) -> tuple[np.ndarray, int | None]:
    """The item's array and its colour axis; a file is read here, on the worker."""
    if isinstance(data, str):
        from ._io import read_image
        from .batch_io import colour_axis

        try:
            array = read_image(data)
        except Exception as error:  # each reader (tifffile, imageio) has its own errors
            raise ValueError(f"cannot read {Path(data).name}: {error}") from None
        return array, colour_axis(data, array, spec.colour)
    return np.asarray(data), spec.channel_axis


def _run_item(data: Any, index: int, key: Any, spec: _Spec) -> BatchItem:
    """One item: read it, restore it with :func:`~napari_dip_deblur.restore.restore`.

    A bad item (unreadable, NaN, too small, a diverged run) is returned as failed; other
    exceptions (out of memory, ...) are raised, so that distributed retries the task.
    """
    from .api import DeblurDivergedError
    from .restore import restore

    started = time.perf_counter()
    worker = _worker_name()
    _set_torch_threads(spec.torch_threads)
    try:
        array, channel_axis = _load(data, spec)
        options = dict(spec.restore_options)
        if spec.kernel is not None:
            result = restore(array, kernel=spec.kernel, channel_axis=channel_axis,
                             **_known_kernel_options(options))
            kernel = result.kernel
        else:
            options["device"] = _worker_device(options.get("device", "auto"))
            result = restore(array, spec.kernel_size, mode=spec.mode,
                             channel_axis=channel_axis, **options)
            kernel = result.kernel if result.kernel is not None else result.kernels
    except (ValueError, DeblurDivergedError) as error:
        return BatchItem(index=index, key=key, status="failed", error=str(error),
                         seconds=time.perf_counter() - started, worker=worker)
    value_range = np.array([array.min(), array.max()], dtype=array.dtype)
    return BatchItem(index=index, key=key, status="done", image=result.image, kernel=kernel,
                     seconds=time.perf_counter() - started, value_range=value_range,
                     colour=channel_axis is not None, worker=worker)


def _known_kernel_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """The options ``restore`` takes with a given kernel (the others steer a blind run)."""
    return {name: options[name] for name in ("method", "nonblind_options", "noise_aware",
                                              "luminance_weights", "memory_check")
            if name in options}


def _estimate_kernel(data: Any, index: int, spec: _Spec) -> SharedKernel:
    """The shared kernel: ``restore`` on the reference item (mode "shared" for a stack)."""
    from .restore import restore

    started = time.perf_counter()
    _set_torch_threads(spec.torch_threads)
    array, channel_axis = _load(data, spec)
    options = dict(spec.restore_options)
    options["device"] = _worker_device(options.get("device", "auto"))
    result = restore(array, spec.kernel_size, mode="shared", channel_axis=channel_axis,
                     **options)
    weight = result.settings.get("nonblind_options", {}).get("weight")
    return SharedKernel(kernel=result.kernel, weight=None if weight is None else float(weight),
                        reference=index, seconds=time.perf_counter() - started)


def _texture_score(data: Any, spec: _Spec) -> float:
    """Mean gradient energy of the item's grey image (its first plane for a stack file),
    sampled on at most about 512 x 512 points, as ``restore`` chooses a reference plane;
    -inf for an item that cannot be read."""
    from .colour import luminance
    from .regions import gradient_energy

    try:
        array, channel_axis = _load(data, spec)
        spatial = 2 if channel_axis is None else 3
        plane = array[(0,) * (array.ndim - spatial)]
        stride = max(1, math.ceil(max(plane.shape[:2]) / 512))
        plane = plane[::stride, ::stride]
        grey = luminance(plane, channel_axis=-1) if channel_axis is not None else plane
        score = float(gradient_energy(grey).mean())
    except ValueError:
        return -math.inf
    return score if math.isfinite(score) else -math.inf


def _worker_name() -> str | None:
    try:
        from distributed import get_worker

        return str(get_worker().name)
    except ValueError:
        return None


# --------------------------------------------------------------------------- the batch


def _spec(kernel_size: Any, kernel: Any, mode: str, colour: str, channel_axis: int | None,
          torch_threads: int | None, options: dict[str, Any]) -> _Spec:
    if mode not in BATCH_MODES:
        raise ValueError(f"mode must be one of {BATCH_MODES}, got {mode!r}")
    if colour not in ("auto", "rgb", "grey"):
        raise ValueError(f"colour must be 'auto', 'rgb' or 'grey', got {colour!r}")
    if kernel is not None:
        from ._validation import real_array

        kernel = real_array(kernel, "kernel", finite=False).astype(np.float32)
        if mode != "shared":
            raise ValueError("kernel applies to mode='shared' (every item restored with it)")
    elif kernel_size is None:
        raise ValueError("give kernel_size (the odd size of the kernels to estimate, e.g. "
                         "15) or kernel (a known kernel, e.g. a measured PSF)")
    if torch_threads is not None and (isinstance(torch_threads, bool) or not isinstance(
            torch_threads, (int, np.integer)) or torch_threads < 1):
        raise ValueError(f"threads_per_worker must be an integer >= 1, got {torch_threads!r}")
    spec = _Spec(kernel_size=kernel_size, kernel=kernel, mode=mode, colour=colour,
                 channel_axis=channel_axis, restore_options=options,
                 torch_threads=None if torch_threads is None else int(torch_threads))
    _check_options(spec)
    return spec


def _check_options(spec: _Spec) -> None:
    """Refuse bad run options here, before anything runs, rather than in every task: set up
    (not run) ``restore_iter`` on a random grey image of a size that fits the kernel, on
    the CPU (a worker's GPU is not needed to check), without the memory check."""
    from .restore import restore_iter

    sides = (spec.kernel.shape if spec.kernel is not None and spec.kernel.ndim == 2
             else np.atleast_1d(np.asarray(spec.kernel_size if spec.kernel_size is not None
                                           else 1)))
    try:
        side = max(64, 2 * int(max(sides)) + 1)
    except (TypeError, ValueError):
        side = 64  # a malformed kernel_size: restore_iter says what is wrong with it
    probe = np.random.default_rng(0).random((side, side)).astype(np.float32)
    options = {**spec.restore_options, "device": "cpu", "memory_check": False}
    if spec.kernel is not None:
        run = restore_iter(probe, kernel=spec.kernel, **_known_kernel_options(options))
    else:
        run = restore_iter(probe, spec.kernel_size, mode=spec.mode, **options)
    run.close()


def estimate_shared_kernel(inputs: Any, kernel_size: int | tuple[int, int], *,
                           reference: int | None = None, channel_axis: int | None = None,
                           colour: str = "auto", client: Any = None,
                           workers: int | None = None, threads_per_worker: int | None = None,
                           retries: int = 2, preset: Any = DEFAULT_PRESET,
                           iterations: int | None = None, seed: int = 0, device: str = "auto",
                           **options: Any) -> SharedKernel:
    """Estimate one kernel for a whole batch, in one task on the cluster.

    The kernel is ``restore(item, kernel_size, mode="shared", ...).kernel`` on the
    ``reference`` item (for a stack file: on its best-textured plane).

    Parameters
    ----------
    inputs, channel_axis, colour, client, workers, threads_per_worker, retries
        As for :func:`deblur_batch`.
    kernel_size : int or (int, int)
    reference : int, optional
        The item (its index) to estimate on. Default: the one with the most gradient
        energy (every item is read once, in parallel, to choose).
    preset, iterations, seed, device, **options
        As for :func:`napari_dip_deblur.restore.restore`.

    Returns
    -------
    SharedKernel

    Raises
    ------
    ValueError
        A bad argument, or a reference item that cannot be read or estimated on.
    """
    source = _as_source(inputs, channel_axis)
    options = {"preset": preset, "iterations": iterations, "seed": seed, "device": device,
               **options}
    spec = _spec(kernel_size, None, "shared", colour, channel_axis, threads_per_worker,
                 options)
    n = len(source.keys)
    if reference is not None and not (isinstance(reference, (int, np.integer))
                                      and -n <= reference < n):
        raise ValueError(f"reference must be an item index in [-{n}, {n}), got {reference!r}")
    with open_client(client, **_local_sizing(client, workers, threads_per_worker, device)) \
            as active:
        return _estimate_on(active, source, spec, reference, retries)


def _local_sizing(client: Any, workers: int | None, threads: int | None,
                  device: str) -> dict[str, Any]:
    if client is not None:
        if workers is not None:
            raise ValueError("workers sizes a local cluster; with client= the cluster is "
                             "already sized")
        return {}
    return {"workers": workers, "threads_per_worker": threads, "device": device}


def _estimate_on(client: Any, source: _Source, spec: _Spec, reference: int | None,
                 retries: int) -> SharedKernel:
    resources = {"GPU": 1} if _uses_gpus(client) else None
    n = len(source.keys)
    if reference is None:
        score_spec = _Spec(None, None, "shared", spec.colour, spec.channel_axis)
        scores = client.gather([
            client.submit(_texture_score, source.data(client, i, retries), score_spec,
                          pure=False, retries=retries) for i in range(n)])
        reference = int(np.argmax(scores))
    reference = int(reference) % n
    future = client.submit(_estimate_kernel, source.data(client, reference, retries),
                           reference, spec, pure=False, retries=retries, resources=resources,
                           key=f"dip-deblur-kernel-{uuid.uuid4().hex[:8]}")
    try:
        return future.result()
    except ValueError as error:
        raise ValueError(f"the shared kernel could not be estimated on item {reference} "
                         f"({source.keys[reference]}): {error}") from None


def deblur_batch(inputs: Any, kernel_size: int | tuple[int, int] | None = None, *,
                 kernel: Any = None, mode: str = "per_plane", channel_axis: int | None = None,
                 colour: str = "auto", reference: int | None = None,
                 skip: Iterable[int] = (), client: Any = None, workers: int | None = None,
                 threads_per_worker: int | None = None, retries: int = 2,
                 window: int | None = None, preset: Any = DEFAULT_PRESET,
                 iterations: int | None = None, seed: int = 0, device: str = "auto",
                 **options: Any) -> Iterator[BatchItem]:
    """Deblur many images on a Dask cluster: a generator of results as they finish.

    Parameters
    ----------
    inputs : path, glob pattern, folder, list of them; or array
        See :func:`batch_items`: files (one item each) or the planes of a numpy, dask or
        zarr-like array (one item each; read one at a time, never the whole array at once).
    kernel_size : int or (int, int), optional
        Odd size of the kernels to estimate; not needed with ``kernel``.
    kernel : (kh, kw) array_like, optional
        A known kernel (a measured PSF, an earlier :func:`estimate_shared_kernel`): every
        item is restored with it, no blind run (``mode="shared"``).
    mode : {"per_plane", "shared"}
        A blind estimate per item, or one kernel for all (estimated on ``reference`` by
        :func:`estimate_shared_kernel`, unless ``kernel`` is given).
    channel_axis : int, optional
        Arrays: -1 if the last axis is colour. Files: use ``colour``.
    colour : {"auto", "rgb", "grey"}
        Files: how a last axis of 3 or 4 is read, as ``dip-deblur --colour``.
    reference : int, optional
        ``mode="shared"``: the item to estimate on (default: the best-textured).
    skip : iterable of int
        Items not to run (e.g. done by an earlier run).
    client : distributed.Client, str or None
        Where to run (see :func:`open_client`): a client, a scheduler address, or None for
        a local cluster started for this batch and closed when the generator ends.
    workers, threads_per_worker : int, optional
        The local cluster's size (default: one single-threaded worker per core). With a
        ``client``, ``threads_per_worker`` sets torch's threads in each task.
    retries : int
        Runs again of a task that raised an unexpected error (a bad item is not retried;
        a task whose worker died is rescheduled by the scheduler in any case).
    window : int, optional
        At most this many items submitted and not yet collected (default: twice the
        cluster's task slots): more are read and submitted as results come back, so memory
        stays bounded and closing the generator leaves little to cancel.
    preset, iterations, seed, device, **options
        As for :func:`napari_dip_deblur.restore.restore` (``starts=1``, ``noise_aware``,
        ``method``, ``nonblind_options``, ...). Every item uses the same ``seed``: an item
        gives what ``restore`` gives on it alone, whatever the number of workers.

    Yields
    ------
    BatchItem
        One per item not skipped, in completion order.

    Raises
    ------
    ValueError, TypeError
        A bad argument (before anything runs); in shared mode, a reference item that
        cannot be estimated on.

    Notes
    -----
    An item's result equals, within floating-point tolerance, what the single-image API
    gives on it with the same seed: ``restore(item, kernel_size, mode="per_plane",
    seed=seed, ...)`` per plane, ``restore(item, kernel=shared.kernel,
    nonblind_options={"weight": shared.weight})`` with a shared kernel.
    """
    source = _as_source(inputs, channel_axis)
    restore_options = {"preset": preset, "iterations": iterations, "seed": seed,
                       "device": device, **options}
    spec = _spec(kernel_size, kernel, mode, colour, channel_axis, threads_per_worker,
                 restore_options)
    for name, value, least in (("retries", retries, 0), ("window", window, 1)):
        if value is not None and (isinstance(value, bool) or not isinstance(
                value, (int, np.integer)) or value < least):
            raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
    n = len(source.keys)
    skipped = set()
    for index in skip:
        if not isinstance(index, (int, np.integer)) or not 0 <= index < n:
            raise ValueError(f"skip: {index!r} is not an item index in [0, {n})")
        skipped.add(int(index))
    todo = [i for i in range(n) if i not in skipped]
    return _batch(source, spec, todo, reference, client,
                  _local_sizing(client, workers, threads_per_worker, device), retries, window)


def _batch(source: _Source, spec: _Spec, todo: list[int], reference: int | None,
           client: Any, sizing: dict[str, Any], retries: int,
           window: int | None) -> Iterator[BatchItem]:
    from distributed import as_completed

    if not todo:
        return
    with open_client(client, **sizing) as active:
        if spec.mode == "shared" and spec.kernel is None:
            shared = _estimate_on(active, source, spec, reference, retries)
            options = dict(spec.restore_options)
            if shared.weight is not None:
                options["nonblind_options"] = {**options.get("nonblind_options", {}),
                                               "weight": shared.weight}
            spec = _Spec(spec.kernel_size, shared.kernel, "shared", spec.colour,
                         spec.channel_axis, options, spec.torch_threads)
        resources = {"GPU": 1} if _uses_gpus(active) else None
        slots = sum(active.nthreads().values()) or 1
        window = window or 2 * slots
        batch_id = uuid.uuid4().hex[:8]
        remaining = iter(todo)
        pending: dict[Any, int] = {}
        finished = as_completed()

        def submit_more() -> None:
            while len(pending) < window:
                index = next(remaining, None)
                if index is None:
                    return
                future = active.submit(
                    _run_item, source.data(active, index, retries), index,
                    source.keys[index], spec, key=f"dip-deblur-{batch_id}-{index}",
                    retries=retries, resources=resources)
                pending[future] = index
                finished.add(future)

        try:
            submit_more()
            for future in finished:
                index = pending.pop(future)
                yield _collect(future, index, source.keys[index])
                submit_more()
        finally:
            if pending:  # closed early (break, Ctrl-C): what is not finished is dropped
                active.cancel(list(pending))


def _collect(future: Any, index: int, key: Any) -> BatchItem:
    try:
        return future.result()
    except Exception as error:  # the task's own error after its retries, a lost worker
        return BatchItem(index=index, key=key, status="failed",
                         error=f"{type(error).__name__}: {error}")
