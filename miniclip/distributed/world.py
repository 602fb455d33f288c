"""The processes a training run is spread over, and the three collective operations it needs.

A *world* is W processes (ranks 0 … W−1) that each hold a slice of the global batch. Sharded
training needs three operations on arrays whose first axis is the batch:

    all_gather(x)      every rank's x, stacked in rank order: (n, …) → (W·n, …), on every rank
    all_reduce(x)      the sum of every rank's x, on every rank: same shape
    reduce_scatter(x)  the sum of every rank's x, and each rank keeps its own block of rows:
                       (W·n, …) → (n, …)

``reduce_scatter`` is the adjoint of ``all_gather``: if every rank's copy of the gathered
array receives a gradient, the gradient of rank r's slice is the sum, over all ranks, of the
rows that came from r. Lesson 17 derives it.

:class:`SingleProcess` is the world of one (every operation returns its input), what a run
without ``mpiexec`` uses. :class:`MPIWorld` runs the operations over MPI through ``mpi4py``
(``pip install "miniclip[distributed]"``; its ``mpich`` wheel brings ``mpiexec``): host
(NumPy) arrays only.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import numpy as np


class SingleProcess:
    """The world of one process: rank 0 of 1, every collective operation the identity."""

    rank, size = 0, 1

    def all_gather(self, x: Any) -> Any:
        return x

    def all_reduce(self, x: Any) -> Any:
        return x

    def all_reduce_in_place(self, buffer: Any) -> None:
        pass

    def reduce_scatter(self, x: Any) -> Any:
        return x

    def barrier(self) -> None:
        pass

    def abort(self, code: int = 1) -> None:
        """End the run (nothing else to stop)."""
        sys.exit(code)


class MPIWorld:
    """The processes ``mpiexec`` started, talking over MPI (``mpi4py``'s ``COMM_WORLD`` unless told otherwise)."""

    def __init__(self, comm: Any = None) -> None:
        try:
            from mpi4py import MPI
        except ImportError as error:  # the boundary: a clear line, not a traceback
            raise RuntimeError(
                'training on many processes needs mpi4py: pip install "miniclip[distributed]"'
            ) from error
        self._mpi = MPI
        self.comm = comm if comm is not None else MPI.COMM_WORLD
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()

    def all_gather(self, x: Any) -> Any:
        x = _contiguous(x)
        out = np.empty((self.size * x.shape[0], *x.shape[1:]), dtype=x.dtype)
        self.comm.Allgather(x, out)
        return out

    def all_reduce(self, x: Any) -> Any:
        x = _contiguous(x)
        out = np.empty_like(x)
        self.comm.Allreduce(x, out, op=self._mpi.SUM)
        return out

    def all_reduce_in_place(self, buffer: Any) -> None:
        """Sum a contiguous buffer over the ranks, in place: the flat gradient buffers, one call each."""
        self.comm.Allreduce(self._mpi.IN_PLACE, buffer, op=self._mpi.SUM)

    def reduce_scatter(self, x: Any) -> Any:
        x = _contiguous(x)
        if x.shape[0] % self.size:
            raise ValueError(f"reduce_scatter needs rows divisible by the {self.size} ranks, got {x.shape[0]}")
        out = np.empty((x.shape[0] // self.size, *x.shape[1:]), dtype=x.dtype)
        self.comm.Reduce_scatter_block(x, out, op=self._mpi.SUM)
        return out

    def barrier(self) -> None:
        """Wait until every rank is here, asleep: MPI's own barrier polls at full speed, taking a core from the
        rank still working (rank 0 evaluating, while the others wait for it)."""
        request = self.comm.Ibarrier()
        while not request.Test():
            time.sleep(0.005)

    def abort(self, code: int = 1) -> None:
        """End every rank now (``MPI_Abort``): one rank's error must not leave the others waiting forever."""
        sys.stdout.flush()
        sys.stderr.flush()
        time.sleep(0.5)  # the launcher forwards what this rank printed; the abort would cut it off
        self.comm.Abort(code)
        os._exit(code)  # MPI_Abort ends the process; should it return, nothing after it may run


def launched_world() -> SingleProcess | MPIWorld:
    """The world this process belongs to: an :class:`MPIWorld` when ``mpiexec`` started several, else one process.

    Told by the launcher's environment (MPICH's ``PMI_SIZE``, Open MPI's ``OMPI_COMM_WORLD_SIZE``), so a
    run without ``mpiexec`` never imports mpi4py.
    """
    for variable in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE"):
        if int(os.environ.get(variable, "1")) > 1:
            return MPIWorld()
    return SingleProcess()


def _contiguous(x: Any) -> np.ndarray:
    """``x`` as a C-contiguous host array, copied only if it is not one (a 0-d array stays 0-d)."""
    return np.require(x, requirements="C")
