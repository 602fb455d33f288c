"""CuPy backend: the same model with the same seed gives the same numbers on the GPU as on the CPU.

Every test here is marked ``gpu``; conftest.py skips them when CuPy or a GPU is missing.
"""

from __future__ import annotations

import numpy as np
import pytest

from miniclip import backend
from miniclip.checks import CASES, run_checks
from miniclip.layers import Embedding
from miniclip.walkthrough_model import WalkthroughCLIP, WalkthroughConfig

pytestmark = pytest.mark.gpu


def _inputs(cfg: WalkthroughConfig, dtype):
    rng = np.random.default_rng(100)
    n, length = 4, 5
    ids = rng.integers(0, cfg.vocab_size, size=(n, length))
    ids[0, :2] = ids[2, 1] = 1  # a repeated word
    images = rng.standard_normal((n, cfg.channels, 4, 6)).astype(dtype)
    mask = (np.arange(length)[None, :] < np.array([5, 2, 1, 4])[:, None]).astype(dtype)
    return ids, images, mask


def _run(cfg: WalkthroughConfig, dtype, device: str):
    """Build the model from seed 7 on ``device``; return (initial weights, loss, grads, image grad) on the host."""
    with backend.using(device):
        model = WalkthroughCLIP(cfg, rng=np.random.default_rng(7), dtype=dtype)
        initial = model.state()
        ids, images, mask = (backend.to_device(a) for a in _inputs(cfg, dtype))
        loss = model(ids, images, mask)
        dimages = model.backward()
        assert backend.get_array_module(loss) is backend.get_array_module()
        grads = {name: backend.to_host(p.grad) for name, p in model.parameters().items()}
        return initial, backend.to_float(loss), grads, backend.to_host(dimages), loss.dtype


@pytest.mark.parametrize(("dtype", "rtol"), [(np.float64, 1e-5), (np.float32, 1e-4)], ids=["float64", "float32"])
@pytest.mark.parametrize("base", [np.e, 3.0], ids=["base e", "base 3"])
def test_gpu_matches_cpu(dtype, rtol, base):
    cfg = WalkthroughConfig(vocab_size=7, channels=2, base=base)
    cpu = _run(cfg, dtype, "cpu")
    gpu = _run(cfg, dtype, "gpu")
    for name in cpu[0]:
        np.testing.assert_array_equal(gpu[0][name], cpu[0][name], err_msg=f"initial {name}")
    assert gpu[1] == pytest.approx(cpu[1], rel=rtol)
    atol = 1e-6 if dtype == np.float32 else 1e-12
    for name in cpu[2]:
        np.testing.assert_allclose(gpu[2][name], cpu[2][name], rtol=rtol, atol=atol, err_msg=name)
        assert gpu[2][name].dtype == dtype
    np.testing.assert_allclose(gpu[3], cpu[3], rtol=rtol, atol=atol)
    assert gpu[4] == dtype
    assert backend.get_device() == "cpu"  # using() put the device back


def test_embedding_repeated_ids_accumulate_on_gpu():
    with backend.using("gpu"):
        lookup = Embedding(3, 2, rng=np.random.default_rng(0), dtype=np.float64)
        ids = backend.to_device(np.array([[1, 1, 2]]))
        lookup(ids)
        lookup.backward(backend.to_device(np.array([[[1.0, 2.0], [10.0, 20.0], [100.0, 200.0]]])))
        grad = backend.to_host(lookup.table.grad)
    np.testing.assert_array_equal(grad, [[0.0, 0.0], [11.0, 22.0], [100.0, 200.0]])


@pytest.mark.parametrize("bad", [3, -1], ids=["too large", "negative"])
def test_out_of_range_cupy_ids_raise(bad):
    with backend.using("gpu"):
        xp = backend.get_array_module()
        lookup = Embedding(3, 2, rng=np.random.default_rng(0), dtype=np.float32)
        ids = xp.asarray([[0, bad]])
        assert backend.get_array_module(ids) is not np
        with pytest.raises(ValueError, match=r"token ids must lie in \[0, 2\]"):
            lookup(ids)


def test_host_ids_are_moved_to_the_gpu_table():
    with backend.using("gpu"):
        lookup = Embedding(3, 2, rng=np.random.default_rng(0), dtype=np.float32)
        vectors = lookup(np.array([[0, 2]]))
        assert backend.get_array_module(vectors) is backend.get_array_module()


def test_gradient_checks_pass_on_gpu():
    with backend.using("gpu"):
        results = run_checks()
    assert [r.label for r in results] == list(CASES)
    for result in results:
        assert result.ok, result.report()
