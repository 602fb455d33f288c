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
(``pip install "miniclip[distributed]"``; its ``mpich`` wheel brings ``mpiexec``) on host
(NumPy) arrays. On GPUs, :class:`NCCLWorld` sends device (CuPy) arrays from GPU to GPU with
NVIDIA's NCCL (``cupy.cuda.nccl``), one GPU per rank, queued on the current stream like any
kernel, so a step never waits for the host; MPI still starts it and carries the few host
numbers (losses, a stop flag). Where ranks must share a GPU (NCCL refuses two ranks on one
device), :class:`MPIWorld` carries device arrays through the host: a copy each way, said when
the run starts (:func:`launched_world`).
"""

from __future__ import annotations

import hashlib
import os
import platform
import sys
import time
from typing import Any

import numpy as np

from miniclip.backend import _cupy, get_device, on_gpu, to_device, to_host


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
        if on_gpu(x):  # a GPU shared by several ranks: through the host
            return to_device(self.all_gather(to_host(x)))
        x = _contiguous(x)
        out = np.empty((self.size * x.shape[0], *x.shape[1:]), dtype=x.dtype)
        self.comm.Allgather(x, out)
        return out

    def all_reduce(self, x: Any) -> Any:
        if on_gpu(x):
            return to_device(self.all_reduce(to_host(x)))
        x = _contiguous(x)
        out = np.empty_like(x)
        self.comm.Allreduce(x, out, op=self._mpi.SUM)
        return out

    def all_reduce_in_place(self, buffer: Any) -> None:
        """Sum a contiguous buffer over the ranks, in place: the flat gradient buffers, one call each."""
        if on_gpu(buffer):
            buffer[...] = self.all_reduce(buffer)
            return
        self.comm.Allreduce(self._mpi.IN_PLACE, buffer, op=self._mpi.SUM)

    def reduce_scatter(self, x: Any) -> Any:
        if on_gpu(x):
            return to_device(self.reduce_scatter(to_host(x)))
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


class NCCLWorld(MPIWorld):
    """One GPU per rank: device arrays go GPU to GPU through NCCL, host arrays through MPI."""

    def __init__(self, gpu: int, comm: Any = None) -> None:
        super().__init__(comm)
        cupy = _cupy()
        from cupy.cuda import nccl

        self._nccl = nccl
        cupy.cuda.Device(gpu).use()  # before any array of this rank exists
        unique_id = nccl.get_unique_id() if self.rank == 0 else None  # rank 0 makes the rendezvous…
        self.communicator = nccl.NcclCommunicator(self.size, self._share(unique_id), self.rank)  # …all join it
        self._types = {np.dtype(np.float32): nccl.NCCL_FLOAT32, np.dtype(np.float64): nccl.NCCL_FLOAT64}

    def _share(self, unique_id: Any) -> Any:
        """Rank 0's NCCL id on every rank, in the form this CuPy takes: bytes, or a tuple of byte values.

        Sent as 128 small integers (int16 holds both signed and unsigned byte values), then 1 if bytes:
        nothing is pickled.
        """
        raw = np.zeros(129, dtype=np.int16)
        if self.rank == 0:
            as_bytes = isinstance(unique_id, bytes)
            raw[:128] = np.frombuffer(unique_id, dtype=np.uint8) if as_bytes else np.array(unique_id)
            raw[128] = as_bytes
        self.comm.Bcast(raw, root=0)
        if raw[128]:
            return raw[:128].astype(np.uint8).tobytes()
        return tuple(int(v) for v in raw[:128])

    def _call(self, operation: str, send: Any, receive: Any, count: int, *op: int) -> None:
        stream = _cupy().cuda.get_current_stream().ptr  # queued behind this rank's kernels, no wait
        call = getattr(self.communicator, operation)
        call(send.data.ptr, receive.data.ptr, count, self._types[send.dtype], *op, stream)

    def all_gather(self, x: Any) -> Any:
        if not on_gpu(x):
            return super().all_gather(x)
        x = _cupy().ascontiguousarray(x)
        out = _cupy().empty((self.size * x.shape[0], *x.shape[1:]), dtype=x.dtype)
        self._call("allGather", x, out, x.size)
        return out

    def all_reduce(self, x: Any) -> Any:
        if not on_gpu(x):
            return super().all_reduce(x)
        x = _cupy().ascontiguousarray(x)
        out = _cupy().empty_like(x)
        self._call("allReduce", x, out, x.size, self._nccl.NCCL_SUM)
        return out

    def all_reduce_in_place(self, buffer: Any) -> None:
        if not on_gpu(buffer):
            return super().all_reduce_in_place(buffer)
        self._call("allReduce", buffer, buffer, buffer.size, self._nccl.NCCL_SUM)  # NCCL allows in place

    def reduce_scatter(self, x: Any) -> Any:
        if not on_gpu(x):
            return super().reduce_scatter(x)
        if x.shape[0] % self.size:
            raise ValueError(f"reduce_scatter needs rows divisible by the {self.size} ranks, got {x.shape[0]}")
        x = _cupy().ascontiguousarray(x)
        out = _cupy().empty((x.shape[0] // self.size, *x.shape[1:]), dtype=x.dtype)
        self._call("reduceScatter", x, out, out.size, self._nccl.NCCL_SUM)
        return out

    def abort(self, code: int = 1) -> None:
        self.communicator.abort()  # a rank stuck in an NCCL call must not outlive the others
        super().abort(code)


def launched_world() -> SingleProcess | MPIWorld:
    """The world this process belongs to: one process, or the ranks ``mpiexec`` started.

    Told by the launcher's environment (MPICH's ``PMI_SIZE``, Open MPI's ``OMPI_COMM_WORLD_SIZE``), so a
    run without ``mpiexec`` never imports mpi4py. On the GPU (``backend.get_device()``) each rank takes
    the GPU of its local rank: an :class:`NCCLWorld` when no two ranks share a GPU, else an
    :class:`MPIWorld` through the host, said on stderr.
    """
    size = max(int(os.environ.get(variable, "1")) for variable in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE"))
    if size == 1:
        return SingleProcess()
    world = MPIWorld()
    if get_device() != "gpu":
        return world
    # Each rank takes the GPU of its local rank. NCCL needs every rank on a GPU of its own, which the
    # ranks settle together from every rank's (machine, GPU bus id): the same answer on every rank.
    cupy = _cupy()
    local = int(os.environ.get("MPI_LOCALRANKID", os.environ.get("OMPI_COMM_WORLD_LOCAL_RANK", "0")))
    gpu = local % cupy.cuda.runtime.getDeviceCount()
    cupy.cuda.Device(gpu).use()
    place = f"{platform.node()} {cupy.cuda.Device(gpu).pci_bus_id}"
    key = np.array([int.from_bytes(hashlib.sha256(place.encode()).digest()[:8], "little", signed=True)])
    if len(set(world.all_gather(key).tolist())) == world.size:
        return NCCLWorld(gpu, world.comm)
    if world.rank == 0:
        print(
            "miniclip: some processes share a GPU, and NCCL needs one GPU per process: arrays go through the host "
            "(a copy each way)",
            file=sys.stderr,
        )
    return world


def _contiguous(x: Any) -> np.ndarray:
    """``x`` as a C-contiguous host array, copied only if it is not one (a 0-d array stays 0-d)."""
    return np.require(x, requirements="C")
