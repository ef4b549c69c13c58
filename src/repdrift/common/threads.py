"""CPU threads for torch, OpenMP and BLAS: one setting, applied before the thread pools start.

On a CPU shared with other work, thread pools larger than the cores this process may use, or
OpenMP threads that spin while they wait, make forwards and SVDs several times slower.
:func:`configure_threads` sets one thread count everywhere: ``--threads`` on the CLI, else
``REPDRIFT_THREADS``, else ``OMP_NUM_THREADS`` when the user set it, else the cores available
to this process (its affinity, which containers and ``taskset`` narrow).

OpenMP's wait policy is left alone: measured with ``benchmarks/threads.py`` on 2 cores, sleeping
threads (``OMP_WAIT_POLICY=PASSIVE``) made forwards 1.7x and SVDs 2x faster while another
process kept a core busy, but SVDs 4x slower on an idle machine. On a shared machine,
``--threads 1`` was fastest of all (forward 1.85x, SVD 2.7x faster than torch's default).
"""

from __future__ import annotations

import os
import sys

from threadpoolctl import threadpool_limits

from repdrift.errors import InputError

ENV_VAR = "REPDRIFT_THREADS"
_POOL_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, which containers and taskset narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def resolve_threads(threads: int | str | None = None) -> int:
    """The thread count: ``threads``, else ``$REPDRIFT_THREADS``, else ``$OMP_NUM_THREADS``
    (a limit the user already set for torch), else :func:`available_cores`."""
    where, value = "--threads", threads
    for var in (ENV_VAR, "OMP_NUM_THREADS"):
        if value is None or value == "":
            where, value = var, os.environ.get(var)
    if value is None or value == "":
        return available_cores()
    try:
        count = int(value)
    except (TypeError, ValueError):
        raise InputError(f"{where}={value!r}: expected a whole number of threads") from None
    if count < 1:
        raise InputError(f"{where}={value!r}: expected at least 1 thread")
    return count


def configure_threads(threads: int | str | None = None) -> int:
    """Use ``threads`` CPU threads in torch, OpenMP and the BLAS libraries; returns the count.

    Call it before heavy work starts: OpenMP reads its variables when torch is first imported;
    BLAS pools already loaded (numpy's) and torch, when imported, are resized directly.
    """
    count = resolve_threads(threads)
    explicit = threads is not None or bool(os.environ.get(ENV_VAR))
    for var in _POOL_VARS:
        if explicit or var not in os.environ:
            os.environ[var] = str(count)
    threadpool_limits(count)
    torch = sys.modules.get("torch")  # never imported here: `repdrift --help` stays fast
    if torch is not None:
        torch.set_num_threads(count)
    return count


__all__ = ["ENV_VAR", "available_cores", "configure_threads", "resolve_threads"]
