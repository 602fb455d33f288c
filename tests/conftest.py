"""Shared test setup: skip GPU tests where there is no GPU, and never leak a device choice.

Nothing is seeded globally: every test builds its own ``np.random.default_rng(seed)``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from miniclip import backend
from miniclip.configs import CONFIGS


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip items marked ``gpu`` unless CuPy imports and sees a GPU (checked once, only if needed)."""
    gpu_items = [item for item in items if item.get_closest_marker("gpu") is not None]
    if not gpu_items or backend.gpu_available():
        return
    reason = "needs CuPy and an NVIDIA GPU (miniclip.backend.gpu_available() is False)"
    skip = pytest.mark.skip(reason=reason)
    for item in gpu_items:
        item.add_marker(skip)


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
