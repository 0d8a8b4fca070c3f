"""Keep freed memory in the process during CPU runs (glibc only).

Every iteration allocates and frees the same large activation buffers. glibc serves blocks
above its mmap threshold with fresh ``mmap`` calls and returns them with ``munmap``, so each
iteration can pay page faults on hundreds of MB. In one session a full-size SelfDeblur
iteration went from 0.95 s to 0.56 s on a 2-core CPU when freed memory stayed in the heap;
in a later one (2026-11-25, same kind of machine) the gain was under 10 % (``docs/presets.md``).
It costs nothing, so it stays. ``keep_freed_memory`` sets that up for the duration of a run and
restores glibc's defaults afterwards, handing the memory back with ``malloc_trim``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["keep_freed_memory"]

# mallopt parameters from glibc's malloc.h, and glibc's defaults for them.
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_MAX = -1, -2, -4
_DEFAULTS = {_M_TRIM_THRESHOLD: 128 * 1024, _M_TOP_PAD: 128 * 1024, _M_MMAP_MAX: 65536}
_RUN = {_M_TRIM_THRESHOLD: 1 << 30, _M_TOP_PAD: 64 << 20, _M_MMAP_MAX: 0}

_depth = 0


def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # noqa: B018 - raises AttributeError on musl and others
        return libc
    except (OSError, AttributeError):
        return None


@contextmanager
def keep_freed_memory(enabled: bool = True) -> Iterator[None]:
    """Within the block, glibc keeps freed memory for reuse instead of unmapping it.

    A no-op off glibc or when ``enabled`` is false. Nested uses keep the outer setting.
    """
    global _depth
    libc = _glibc() if enabled else None
    if libc is None:
        yield
        return
    if _depth == 0:
        for parameter, value in _RUN.items():
            libc.mallopt(parameter, value)
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0:
            for parameter, value in _DEFAULTS.items():
                libc.mallopt(parameter, value)
            libc.malloc_trim(0)
