"""Shared test setup: skip GPU tests where there is no GPU, and never leak a device choice.

A test that needs the GPU is marked ``@pytest.mark.gpu`` (a whole file: ``pytestmark``), and the hook
below skips it, saying why, where CuPy or a GPU is missing; nothing else in the tests skips for the GPU.
A test of what happens *without* CuPy uses the ``without_cupy`` fixture, so it runs on every machine.

Nothing is seeded globally: every test builds its own ``np.random.default_rng(seed)``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest

from miniclip import backend
from miniclip.training.configs import CONFIGS


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip items marked ``gpu`` unless CuPy imports and sees a GPU (checked once, only if needed)."""
    gpu_items = [item for item in items if item.get_closest_marker("gpu") is not None]
    if not gpu_items:
        return
    try:
        backend._cupy()  # what --device gpu would do: import CuPy and count the GPUs
    except backend.DeviceUnavailableError as exc:  # e.g. "GPU requested but CuPy is not installed: <how to>"
        missing = str(exc).removesuffix(f": {backend.GPU_HINT}").removeprefix("GPU requested but ")
        skip = pytest.mark.skip(reason=f"marked gpu: needs CuPy and an NVIDIA GPU, but here {missing}")
        for item in gpu_items:
            item.add_marker(skip)


@pytest.fixture
def without_cupy(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Make ``import cupy`` fail in this test and in the processes it starts, as where CuPy is not installed."""
    monkeypatch.setitem(sys.modules, "cupy", None)  # None in sys.modules: the import raises ImportError
    hidden = tmp_path_factory.mktemp("without_cupy")
    (hidden / "cupy.py").write_text('raise ImportError("CuPy is hidden for this test")\n', encoding="utf-8")
    monkeypatch.setenv("PYTHONPATH", str(hidden), prepend=os.pathsep)  # found before any installed CuPy


@pytest.fixture(autouse=True)
def _cpu_device() -> Iterator[None]:
    """Start every test on the CPU and put back whatever device was chosen before it."""
    before = backend._device
    backend._device = "cpu"
    try:
        yield
    finally:
        backend._device = before


# The model of the named `tiny` configuration (the lessons' run) at half its widths, so that the
# training tests that share it stay fast; a copy, so no test can change the configuration.
TINY_TRAIN_MODEL = CONFIGS["tiny"].to_dict()["model"] | {"cnn_channels": [4, 8], "text_width": 16, "embed_dim": 16}
