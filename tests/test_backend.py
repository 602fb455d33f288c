"""The backend: device choice (argument, environment, context manager), moving arrays, scatter-add."""

from __future__ import annotations

import types

import numpy as np
import pytest

from miniclip import backend


@pytest.mark.parametrize("name", ["tpu", "", "cuda"])
def test_set_device_rejects_unknown_names(name):
    with pytest.raises(ValueError, match=r"device must be one of \('cpu', 'gpu'\)"):
        backend.set_device(name)
    assert backend.get_device() == "cpu"  # unchanged


def test_set_device_cpu():
    backend.set_device("cpu")
    assert backend.get_device() == "cpu"
    assert backend.get_array_module() is np


def test_environment_variable_is_read_lazily(monkeypatch):
    monkeypatch.setattr(backend, "_device", None)
    monkeypatch.setenv("MINICLIP_DEVICE", " CPU ")
    assert backend._device is None  # nothing read yet
    assert backend.get_device() == "cpu"
    assert backend._device == "cpu"


def test_environment_variable_defaults_to_cpu(monkeypatch):
    monkeypatch.setattr(backend, "_device", None)
    monkeypatch.delenv("MINICLIP_DEVICE", raising=False)
    assert backend.get_device() == "cpu"


def test_bad_environment_variable_raises_when_first_needed(monkeypatch):
    monkeypatch.setattr(backend, "_device", None)
    monkeypatch.setenv("MINICLIP_DEVICE", "tpu")
    with pytest.raises(ValueError, match="'tpu'"):
        backend.get_device()


def test_using_restores_the_previous_device(monkeypatch):
    monkeypatch.setattr(backend, "_device", None)
    with backend.using("cpu"):
        assert backend.get_device() == "cpu"
    assert backend._device is None  # restored exactly, even the "not chosen yet" state


def test_using_restores_after_an_exception():
    backend.set_device("cpu")
    with pytest.raises(RuntimeError, match="boom"), backend.using("cpu"):
        raise RuntimeError("boom")
    assert backend.get_device() == "cpu"


@pytest.mark.usefixtures("without_cupy")
def test_gpu_without_cupy_raises_one_line_error():
    with pytest.raises(backend.DeviceUnavailableError) as info:
        backend.set_device("gpu")
    message = str(info.value)
    assert "\n" not in message
    assert "CuPy" in message
    assert "--device cpu" in message
    assert backend.get_device() == "cpu"  # the failed switch changed nothing
    assert not backend.gpu_available()


@pytest.mark.usefixtures("without_cupy")
def test_using_gpu_without_cupy_raises_and_keeps_device():
    with pytest.raises(backend.DeviceUnavailableError), backend.using("gpu"):
        pass  # pragma: no cover - never entered
    assert backend.get_device() == "cpu"


def test_to_device_and_to_host_round_trip():
    host = np.arange(6, dtype=np.float64).reshape(2, 3)
    device = backend.to_device(host, dtype=np.float32)
    assert device.dtype == np.float32
    back = backend.to_host(device)
    assert isinstance(back, np.ndarray)
    np.testing.assert_array_equal(back, host)
    assert backend.to_device([1, 2, 3]).shape == (3,)  # anything array-like
    assert backend.to_float(np.asarray(2.5, dtype=np.float32)) == 2.5


def test_get_array_module():
    assert backend.get_array_module(np.zeros(2)) is np
    assert backend.get_array_module(np.float32(1.0)) is np  # NumPy scalars too
    assert backend.get_array_module(3.0) is np
    assert backend.get_array_module() is np


def test_seed_returns_a_reproducible_generator():
    a = backend.seed(7).standard_normal(4)
    b = backend.seed(7).standard_normal(4)
    np.testing.assert_array_equal(a, b)


def test_seed_seeds_cupy_when_the_gpu_was_chosen_by_the_environment(monkeypatch):
    """``MINICLIP_DEVICE=gpu`` not read yet when ``seed`` runs: CuPy's generator must still be seeded."""
    seeded = []
    fake_cupy = types.SimpleNamespace(random=types.SimpleNamespace(seed=seeded.append))
    monkeypatch.setattr(backend, "_cupy", lambda: fake_cupy)  # stands in for CuPy and a GPU
    monkeypatch.setattr(backend, "_device", None)
    monkeypatch.setenv("MINICLIP_DEVICE", "gpu")
    backend.seed(11)
    assert seeded == [11]
    assert backend._device == "gpu"


def test_seed_leaves_cupy_alone_on_the_cpu(monkeypatch):
    def no_cupy():
        raise AssertionError("seed() asked for CuPy on the CPU")

    monkeypatch.setattr(backend, "_cupy", no_cupy)
    monkeypatch.setattr(backend, "_device", None)
    monkeypatch.delenv("MINICLIP_DEVICE", raising=False)
    np.testing.assert_array_equal(backend.seed(3).random(2), np.random.default_rng(3).random(2))


def test_scatter_add_with_repeated_indices_adds_all():
    target = np.zeros((4, 2))
    index = np.array([1, 3, 1, 1])
    values = np.array([[1.0, 2.0], [10.0, 20.0], [100.0, 200.0], [1000.0, 2000.0]])
    backend.scatter_add(target, index, values)
    expected = np.array([[0.0, 0.0], [1101.0, 2202.0], [0.0, 0.0], [10.0, 20.0]])
    np.testing.assert_array_equal(target, expected)

    lossy = np.zeros((4, 2))
    lossy[index] += values  # what scatter_add exists to avoid: repeated rows keep only one update
    assert not np.array_equal(lossy, expected)


def test_scatter_add_matches_add_at_on_many_rows():
    """The sorted, run-summed path for (M,) indices and (M, D) rows adds what np.add.at adds, onto existing values."""
    rng = np.random.default_rng(5)
    index = rng.integers(0, 7, 500)  # many repeats, some rows never hit
    values = rng.standard_normal((500, 3))
    start = rng.standard_normal((9, 3))
    target, expected = start.copy(), start.copy()
    backend.scatter_add(target, index, values)
    np.add.at(expected, index, values)
    np.testing.assert_allclose(target, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(target[7:], start[7:])  # untouched rows stay as they were


def test_keep_freed_memory_takes_on_glibc_and_is_harmless_twice() -> None:
    import platform

    first, second = backend.keep_freed_memory(), backend.keep_freed_memory()
    assert first is second
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert first is True  # mallopt accepted both settings
