"""Training on many processes: the sharded contrastive loss and data parallelism equal one process.

The in-process tests need nothing: on one rank (``SingleProcess``) the sharded loss must be
the ordinary one, and its layers pass the finite-difference check. The MPI tests launch
``mpiexec -n W`` (``tests/distributed_step.py``) and compare one float64 step on W ranks with
one process on the same global batch: the loss and every parameter's gradient within 1e-10
relative, batch norm's running statistics too, and the weights after AdamW. They skip where
mpi4py (and with it ``mpiexec``) is missing: ``pip install -e ".[distributed]"``.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from miniclip.distributed.data_parallel import check_data_parallel, make_data_parallel, own_batch, own_slice
from miniclip.distributed.sharded_loss import ShardedContrastiveLoss, ShardedSimilarity, local_targets
from miniclip.distributed.world import SingleProcess
from miniclip.layers.contrastive_loss import ContrastiveLoss
from miniclip.layers.similarity import Similarity
from miniclip.model.targets import label_aware_targets
from miniclip.teaching.gradcheck import gradcheck

sys.path.insert(0, str(Path(__file__).parent))
from distributed_step import reference_step  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MPIEXEC = shutil.which("mpiexec", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]))
needs_mpi = pytest.mark.skipif(
    importlib.util.find_spec("mpi4py") is None or MPIEXEC is None,
    reason='needs mpi4py and mpiexec: pip install -e ".[distributed]"',
)


def _embeddings(rng: np.random.Generator, n: int, d: int = 4) -> tuple[np.ndarray, np.ndarray]:
    t, i = rng.standard_normal((n, d)), rng.standard_normal((n, d))
    return t / np.linalg.norm(t, axis=1, keepdims=True), i / np.linalg.norm(i, axis=1, keepdims=True)


@pytest.mark.parametrize("targets", ["identity", "label_aware"])
def test_on_one_rank_the_sharded_loss_is_the_ordinary_one(targets: str) -> None:
    rng = np.random.default_rng(0)
    t, i = _embeddings(rng, 6)
    y = label_aware_targets(np.array([0, 1, 0, 2, 1, 3]), np.float64) if targets == "label_aware" else None
    world = SingleProcess()
    similarity, loss = ShardedSimilarity(world), ShardedContrastiveLoss(world)
    local_y = None if y is None else local_targets(y, 0, 6)
    sharded = loss(5.0 * similarity(t, i), local_y)
    plain_similarity, plain_loss = Similarity(), ContrastiveLoss()
    plain = plain_loss(5.0 * plain_similarity(t, i), y)
    np.testing.assert_allclose(sharded, plain, rtol=1e-14)
    dt, di = similarity.backward(5.0 * loss.backward())
    dt_plain, di_plain = plain_similarity.backward(5.0 * plain_loss.backward())
    np.testing.assert_allclose(dt, dt_plain, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(di, di_plain, rtol=1e-12, atol=1e-15)


def test_the_sharded_layers_pass_the_gradient_check() -> None:
    rng = np.random.default_rng(1)
    t, i = _embeddings(rng, 5)
    world = SingleProcess()
    for result in (
        gradcheck(ShardedSimilarity(world), t, i),
        gradcheck(ShardedContrastiveLoss(world), 3.0 * rng.standard_normal((10, 5))),
        gradcheck(
            ShardedContrastiveLoss(world),
            3.0 * rng.standard_normal((10, 5)),
            kwargs={"targets": local_targets(label_aware_targets(np.array([0, 1, 0, 1, 2]), np.float64), 0, 5)},
        ),
    ):
        assert result.ok, result.report()


def test_own_slice_cuts_equal_runs_and_refuses_an_uneven_batch() -> None:
    class Rank:
        def __init__(self, rank: int, size: int) -> None:
            self.rank, self.size = rank, size

    assert [own_slice(Rank(r, 3), 12) for r in range(3)] == [slice(0, 4), slice(4, 8), slice(8, 12)]
    with pytest.raises(ValueError, match="does not split evenly over 5 ranks"):
        own_slice(Rank(0, 5), 12)
    y = np.arange(36.0).reshape(6, 6)
    *_, block = own_batch(Rank(1, 3), np.zeros((6, 2)), np.zeros((6, 1)), np.zeros((6, 2)), y)
    np.testing.assert_array_equal(block, np.concatenate([y[2:4], y[:, 2:4].T]))  # its rows, its columns


def test_what_cannot_be_split_is_refused_in_one_line() -> None:
    check_data_parallel(96, "contrastive", 0.0, 3)
    with pytest.raises(ValueError, match="--batch-size 64 does not split evenly over 3 processes"):
        check_data_parallel(64, "contrastive", 0.0, 3)
    with pytest.raises(ValueError, match="needs the contrastive objective, not 'predictive'"):
        check_data_parallel(96, "predictive", 0.0, 3)
    with pytest.raises(ValueError, match="does not support dropout yet"):  # every rank would draw the same masks
        check_data_parallel(96, "contrastive", 0.1, 3)


def test_only_the_contrastive_model_shards() -> None:
    from miniclip.model.config import ModelConfig, build_model

    predictive = build_model(
        ModelConfig(objective="predictive", image_encoder="patch_mlp"), rng=np.random.default_rng(0)
    )
    with pytest.raises(ValueError, match="needs the contrastive model"):
        make_data_parallel(predictive, SingleProcess())


def _compare(got: dict[str, np.ndarray], ref: dict[str, np.ndarray]) -> None:
    """Loss, gradients and buffers within 1e-10; weights after AdamW where the gradient is more than rounding.

    AdamW divides by √v, so a gradient that is rounding noise on both sides (the key bias of
    attention, whose true gradient is zero) becomes a full step of ±lr in a direction set by the
    noise: those parameters' weights after the step are not comparable, their gradients are.
    """
    got = {key: value for key, value in got.items() if key != "world"}  # which world ran it, said by the GPU test
    assert set(got) == set(ref)
    largest = max(np.abs(ref[k]).max() for k in ref if k.startswith("grad/"))
    for key in ref:
        scale = max(np.abs(ref[key]).max(), 1e-300)
        compared = np.ones(ref[key].shape, dtype=bool)
        if key.startswith("data/"):  # the weights whose gradient is more than rounding noise
            compared = np.abs(ref["grad/" + key.removeprefix("data/")]) >= 1e-9 * largest
        assert np.abs(got[key] - ref[key])[compared].max(initial=0.0) <= 1e-10 * scale, key


@needs_mpi
@pytest.mark.parametrize(
    ("ranks", "image_encoder", "targets"),
    [(2, "vit", "identity"), (3, "vit", "label_aware"), (2, "cnn", "label_aware"), (3, "cnn", "identity")],
)
def test_a_step_on_many_ranks_equals_one_process(ranks: int, image_encoder: str, targets: str, tmp_path: Path) -> None:
    """float64, the ``tiny`` configuration: a BN-free ViT, and the CNN with batch norm over all ranks."""
    out = tmp_path / "rank0.npz"
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    command = [MPIEXEC, "-n", str(ranks), sys.executable, str(ROOT / "tests" / "distributed_step.py")]
    subprocess.run([*command, "tiny", image_encoder, targets, str(out)], check=True, timeout=180, env=env, cwd=ROOT)
    with np.load(out) as got:
        _compare(dict(got), reference_step("tiny", image_encoder, targets))


@needs_mpi
@pytest.mark.parametrize(("variant", "first_wrong"), [("detached", "grad/"), ("local_bn", "loss")])
def test_the_checks_catch_a_gather_without_backward_and_per_rank_batch_norm(
    variant: str, first_wrong: str, tmp_path: Path
) -> None:
    """The same comparison fails for the two usual mistakes: the tolerance is not vacuous.

    Without the gather's backward the loss is right and the gradients wrong; per-rank batch norm
    changes the loss itself.
    """
    out = tmp_path / "rank0.npz"
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    command = [MPIEXEC, "-n", "2", sys.executable, str(ROOT / "tests" / "distributed_step.py")]
    subprocess.run([*command, "tiny", "cnn", "identity", str(out), variant], check=True, timeout=180, env=env, cwd=ROOT)
    with np.load(out) as got, pytest.raises(AssertionError, match=first_wrong):
        _compare(dict(got), reference_step("tiny", "cnn", "identity"))


# --- `mpiexec -n W miniclip train`: the same run as one process, and every rank ends together -------------

RUN = ["train", "--data", "shapes", "--config", "tiny", "--n-train", "512", "--n-test", "200", "--batch-size", "96"]
ONE_THREAD = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}  # W ranks on a few cores


def _miniclip(ranks: int, *argv: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "miniclip", *argv]
    if ranks > 1:
        command = [MPIEXEC, "-n", str(ranks), *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=ONE_THREAD, cwd=ROOT)


def _metrics(out: Path) -> list[dict]:
    import json

    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


@needs_mpi
def test_mpiexec_train_gives_the_one_process_run(tmp_path: Path) -> None:
    """Three epochs of 5 steps: the losses equal to float32 rounding, zero-shot within one image of 200.

    The ranks add their partial sums in another order than one process does (a loss's share, a
    gradient's, batch norm's statistics), so float32 results differ in the last bits, and a few
    steps carry that into the 6th digit of the loss; a test image whose two best classes are that
    close may change its answer.
    """
    one, two = (_miniclip(w, *RUN, "--epochs", "3", "--out", str(tmp_path / f"w{w}")) for w in (1, 2))
    assert one.returncode == 0 and two.returncode == 0, one.stderr + two.stderr
    assert two.stdout.count("zero-shot top-1 (one template)") == 1  # rank 0 alone speaks
    assert "2 processes, 48 pairs of each batch apiece" in two.stdout
    for a, b in zip(_metrics(tmp_path / "w1"), _metrics(tmp_path / "w2"), strict=True):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-5)
        assert b["logit_scale"] == pytest.approx(a["logit_scale"], rel=1e-5)
        for name, acc in a["zero_shot"].items():
            assert abs(b["zero_shot"][name]["top1"] - acc["top1"]) <= 1 / 200 + 1e-9, name
    assert _metrics(tmp_path / "w2")[0]["first_loss"] == pytest.approx(_metrics(tmp_path / "w1")[0]["first_loss"])


@needs_mpi
def test_a_batch_that_does_not_split_is_refused_before_any_work(tmp_path: Path) -> None:
    done = _miniclip(3, "train", "--data", "shapes", "--batch-size", "64", "--out", str(tmp_path / "run"), timeout=60)
    assert done.returncode != 0
    message = "miniclip train: error: --batch-size 64 does not split evenly over 3 processes: give a multiple of 3"
    assert done.stderr.count(message) == 1, done.stderr  # said once, by the first rank, and every rank returned
    assert "Abort" not in done.stderr
    assert not (tmp_path / "run").exists()


@needs_mpi
def test_a_failing_rank_ends_every_rank_with_one_message(tmp_path: Path) -> None:
    """Rank 1 raises inside its third step; rank 0, waiting for it in the next all-gather, must not hang."""
    code = f"""
import sys
from miniclip.cli import main
from miniclip.training import loop
step = loop.Trainer.step
def failing(self, idx, n):
    if self.world.rank == 1 and n == 2:
        raise RuntimeError("a fault on one rank")
    return step(self, idx, n)
loop.Trainer.step = failing
sys.exit(main({[*RUN, "--epochs", "3", "--out", str(tmp_path / "run")]!r}))
"""
    command = [MPIEXEC, "-n", "2", sys.executable, "-c", code]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=ONE_THREAD, cwd=ROOT)
    assert done.returncode != 0
    assert done.stderr.count("miniclip train (rank 1 of 2): error: a fault on one rank") == 1, done.stderr
    assert "(rank 0 of 2)" not in done.stderr and "Traceback" not in done.stderr
    assert not list((tmp_path / "run").glob(".*"))  # no half-written file left behind


LONG_RUN = [*RUN, "--n-train", "2048", "--epochs", "40"]  # long enough to be stopped after its first epoch


def _after_the_first_epoch(out: Path) -> subprocess.Popen[str]:
    """``mpiexec -n 2 miniclip train`` of LONG_RUN into ``out``, returned once its first epoch is written."""
    command = [MPIEXEC, "-n", "2", sys.executable, "-m", "miniclip", *LONG_RUN, "--out", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ONE_THREAD)
    deadline = time.monotonic() + 120
    while not (out / "metrics.jsonl").exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    return process


@needs_mpi
def test_ctrl_c_stops_every_rank_at_one_boundary_and_another_world_resumes(tmp_path: Path) -> None:
    """SIGINT to mpiexec (it passes it on to every rank): all ranks stop together, rank 0 saves, one process resumes."""
    out = tmp_path / "run"
    process = _after_the_first_epoch(out)
    try:
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    assert stdout.count("interrupted: checkpoint saved") == 1
    epochs_done = len(_metrics(out))
    assert 1 <= epochs_done < 40
    resumed = _miniclip(1, *RUN, "--n-train", "2048", "--epochs", str(epochs_done + 1), "--out", str(out), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert len(_metrics(out)) == epochs_done + 1


@needs_mpi
@pytest.mark.gpu
@pytest.mark.parametrize("image_encoder", ["vit", "cnn"])
def test_a_step_on_two_ranks_on_the_gpu_equals_one_process(image_encoder: str, tmp_path: Path) -> None:
    """The same float64 step with CuPy arrays: NCCL where each rank has a GPU, through the host where they share one."""
    out = tmp_path / "rank0.npz"
    command = [MPIEXEC, "-n", "2", sys.executable, str(ROOT / "tests" / "distributed_step.py")]
    argv = ["tiny", image_encoder, "label_aware", str(out), "exact", "gpu"]
    subprocess.run([*command, *argv], check=True, timeout=300, env=ONE_THREAD, cwd=ROOT)
    with np.load(out) as got:
        print(f"world on the GPU: {got['world']}")  # NCCLWorld with two GPUs, MPIWorld through the host with one
        _compare(dict(got), reference_step("tiny", image_encoder, "label_aware"))


@needs_mpi
@pytest.mark.gpu
def test_mpiexec_train_runs_on_the_gpu(tmp_path: Path) -> None:
    done = _miniclip(2, "--device", "gpu", *RUN, "--epochs", "1", "--out", str(tmp_path / "run"), timeout=300)
    assert done.returncode == 0, done.stderr
    assert "2 processes, 48 pairs of each batch apiece" in done.stdout
    assert len(_metrics(tmp_path / "run")) == 1


@needs_mpi
@pytest.mark.skipif(shutil.which("pgrep") is None, reason="needs pgrep to find one rank")
def test_a_rank_that_dies_ends_every_rank(tmp_path: Path) -> None:
    """kill -9 of one rank (no Python left to say anything): mpiexec ends the others, nothing waits forever."""
    out = tmp_path / "run"
    process = _after_the_first_epoch(out)
    try:
        ranks = [int(pid) for pid in _pids(out) if int(pid) != process.pid]
        assert len(ranks) == 2, ranks
        os.kill(max(ranks), signal.SIGKILL)
        process.communicate(timeout=30)  # the others are ended, not left waiting in a collective
    finally:
        process.kill()
    assert process.returncode != 0
    assert _pids(out) == []


def _pids(out: Path) -> list[str]:
    """The processes running ``python -m miniclip`` with ``out`` on their command line (mpiexec's own included)."""
    return subprocess.run(["pgrep", "-f", "--", f"-m miniclip .*{out}"], capture_output=True, text=True).stdout.split()
