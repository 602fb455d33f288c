"""Every command on the GPU against the same command on the CPU, from the same seed.

Each test runs a command through ``miniclip.cli.main`` with ``--device gpu`` and again with
``--device cpu`` on a tiny run (the ``tiny`` configuration on 192 synthetic shapes: no download,
seconds), and compares what the two computed. The work is in a helper ``_run_x(folder, device)``
that checks what holds on either device, each side in a folder of its own; the test compares the
two sides. Setting ``GPU`` below to ``"cpu"`` (and removing ``pytestmark``) runs the same logic on
a machine without a GPU.

Why the tolerances (``GPU`` and CPU start from the same host draws: weights, batches, crops,
flips, caption templates; only the order of float32 additions differs, ~1e-7 relative per sum):

* losses: ``LOSS_RTOL`` = 1e-4, as in test_gpu.py; a few steps of rounding stay near 1e-6;
* embeddings and cosine scores (each at most 1 in size): ``EMBED_ATOL`` = 1e-4; probabilities
  (a softmax of ``e^s`` · cosine, ``e^s`` ≤ 100) the same, as a probability moves by at most
  a quarter of its logits' change;
* accuracies: counts of images, so within ``TIE_IMAGES`` = 2 images of the split; an argmax can
  flip only where two classes score within rounding of each other;
* weights after training: as in test_gpu.py, ``rtol`` = ``atol`` = 1e-3: AdamW moves every weight
  by about lr a step whatever its gradient's size, so a gradient that is zero up to rounding (the
  attention's key bias) can move differently on the two devices.

On the GPU the embedding's scatter-add (atomic adds) may sum a repeated token's gradients in any
order, so two GPU runs are equal only to rounding: a resumed GPU run is compared with an
uninterrupted one to these tolerances too, where the CPU's are equal to the bit.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import miniclip.evaluation.classify_and_search as classify_and_search
import miniclip.measure.bench as bench_module
import miniclip.teaching.walkthrough as walkthrough_module
from miniclip import backend
from miniclip.cli import main
from miniclip.data import load_dataset
from miniclip.evaluation.linear_probe import holdout_split
from miniclip.evaluation.report import PROBE_HOLDOUT
from miniclip.evaluation.trained_run import load_run
from miniclip.module import Module
from miniclip.optim import AdamW
from miniclip.training.checkpoint import load_checkpoint
from miniclip.training.rollback import StepSnapshot

pytestmark = pytest.mark.gpu

GPU = "gpu"  # the device under test; the CPU's numbers are the reference
LOSS_RTOL = 1e-4
EMBED_ATOL = 1e-4
TIE_IMAGES = 2
STATE_TOL = 1e-3

N_TRAIN, N_TEST = 192, 96  # 6 steps of 32 an epoch
TINY = ["--config", "tiny", "--n-train", str(N_TRAIN), "--n-test", str(N_TEST), "--batch-size", "32"]
# The shipped cpu configuration (flip averaging, crops and flips) on a few shapes.
FLIP = ["--config", "cpu", "--data", "shapes", "--n-train", "64", "--n-test", "48", "--batch-size", "32"]
FLIP_TEST = 48
BENCH = ["--config", "tiny", "--batch-size", "8", "--warmup", "1", "--steps", "2", "--layer-steps", "1"]
BENCH += ["--gemm-size", "64", "--torch-threads", "1"]
QUERY = "a photo of a small red circle"


# ---------------------------------------------------------------- running a command, and what it computed


def _cli(*args: str) -> tuple[int, str, str]:
    """``miniclip ARGS`` in this process: the exit status, stdout and stderr."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        status = main(list(args))
    return status, stdout.getvalue(), stderr.getvalue()


@contextlib.contextmanager
def _recorded(owner: Any, name: str) -> Iterator[list[Any]]:
    """While inside, every return value of ``owner.name`` (a function the command looks up when it runs)."""
    returned: list[Any] = []
    real = getattr(owner, name)

    def record(*args: Any, **kwargs: Any) -> Any:
        returned.append(real(*args, **kwargs))
        return returned[-1]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(owner, name, record)
        yield returned


@contextlib.contextmanager
def _devices_used() -> Iterator[set[str]]:
    """While inside, the devices of every layer's output: ``{"gpu"}`` proves the model ran on the GPU."""
    seen: set[str] = set()
    real = Module.__call__

    def call(self: Module, *args: Any, **kwargs: Any) -> Any:
        out = real(self, *args, **kwargs)
        if hasattr(out, "shape"):
            seen.add("cpu" if backend.get_array_module(out) is np else "gpu")
        return out

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Module, "__call__", call)
        yield seen


def _train(out: Path, device: str, *args: str) -> list[dict[str, Any]]:
    """``miniclip train ARGS --out OUT --device DEVICE``; its metrics, every epoch's."""
    with _devices_used() as used:
        status, printed, err = _cli("train", *args, "--out", str(out), "--device", device)
    assert status == 0, err
    assert f"on {device}, writing to {out}" in printed and device in used
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]


def _side(tmp_path: Path, name: str) -> Path:
    """A folder of its own for one side's files (both sides may then run on one device)."""
    folder = tmp_path / name
    folder.mkdir()
    return folder


# ---------------------------------------------------------------- comparing the two devices


def _assert_accuracies_agree(gpu: dict[str, Any], cpu: dict[str, Any], n: int) -> None:
    """top-1 and top-5 of every row (a prompt set, a member) within ``TIE_IMAGES`` of ``n`` images."""
    assert gpu.keys() == cpu.keys()
    for name, row in cpu.items():
        for key in ("top1", "top5"):
            if row.get(key) is not None:
                assert abs(gpu[name][key] - row[key]) <= TIE_IMAGES / n + 1e-9, (name, key, gpu[name][key], row[key])


def _assert_metrics_agree(
    gpu: list[dict[str, Any]], cpu: list[dict[str, Any]], n_test: int, *, exact: bool = False
) -> None:
    """Two runs' metrics.jsonl: the same epochs, their losses to ``LOSS_RTOL``, their zero-shot to a tie (or equal)."""
    assert [m["epoch"] for m in gpu] == [m["epoch"] for m in cpu]
    for g, c in zip(gpu, cpu, strict=True):
        if exact:  # all but the timings
            assert (g["train_loss"], g["logit_scale"], g["zero_shot"]) == (
                c["train_loss"],
                c["logit_scale"],
                c["zero_shot"],
            )
            continue
        assert g["train_loss"] == pytest.approx(c["train_loss"], rel=LOSS_RTOL)
        if c["logit_scale"] is None:
            assert g["logit_scale"] is None
        else:
            assert g["logit_scale"] == pytest.approx(c["logit_scale"], rel=LOSS_RTOL)
        _assert_accuracies_agree(g["zero_shot"], c["zero_shot"], n_test)


def _assert_states_agree(gpu: dict[str, np.ndarray], cpu: dict[str, np.ndarray], *, exact: bool = False) -> None:
    """Every array of two checkpoints, by name: equal, or close to ``STATE_TOL`` (see the module docstring)."""
    assert gpu.keys() == cpu.keys()
    for name, value in cpu.items():
        assert gpu[name].dtype == value.dtype, name
        if exact:
            np.testing.assert_array_equal(gpu[name], value, err_msg=name)
        else:
            np.testing.assert_allclose(gpu[name], value, rtol=STATE_TOL, atol=STATE_TOL, err_msg=name)


def _assert_same_best(
    gpu_items: list[Any], gpu_scores: Any, cpu_items: list[Any], cpu_scores: Any, atol: float
) -> None:
    """Two best-first lists agree: scores place by place within ``atol``, items alike up to near ties.

    An item whose score stands more than ``2·atol`` from its neighbours' holds the same place in
    both; one that scores more than ``2·atol`` above the last place is in both lists.
    """
    gpu_scores, cpu_scores = np.asarray(gpu_scores, dtype=float), np.asarray(cpu_scores, dtype=float)
    assert len(gpu_items) == len(cpu_items)
    np.testing.assert_allclose(gpu_scores, cpu_scores, atol=atol)
    gaps = np.abs(np.diff(cpu_scores))  # (k-1,) between neighbours
    alone = np.r_[np.inf, gaps] > 2 * atol
    alone &= np.r_[gaps, np.inf] > 2 * atol
    for k in np.flatnonzero(alone):
        assert gpu_items[k] == cpu_items[k], (k, gpu_items, cpu_items)
    for items, scores, other in ((cpu_items, cpu_scores, gpu_items), (gpu_items, gpu_scores, cpu_items)):
        inside = {item for item, score in zip(items, scores, strict=True) if score > scores[-1] + 2 * atol}
        assert inside <= set(other), (items, other)


# ---------------------------------------------------------------- runs trained once, on the CPU


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two tiny runs on the same split (learning rates 4e-3 and 1e-2) and a run of the cpu configuration."""
    root = tmp_path_factory.mktemp("runs")
    with backend.using("cpu"):
        _train(root / "a", "cpu", *TINY, "--epochs", "2")
        _train(root / "b", "cpu", *TINY, "--epochs", "2", "--lr", "1e-2")
        _train(root / "flip", "cpu", *FLIP, "--epochs", "1")
    return {name: root / name for name in ("a", "b", "flip")}


# ---------------------------------------------------------------- bench


def _torch_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def _run_bench(device: str) -> tuple[str, dict[str, Any]]:
    """``miniclip bench`` of the tiny configuration: its report and figures; PyTorch's TF32 checked off as it runs."""
    tf32: list[tuple[bool, bool]] = []  # (matmul, cuDNN) as each PyTorch step began
    real_step = bench_module.torch_step

    def torch_step(*args: Any, **kwargs: Any) -> Any:
        step, model, where = real_step(*args, **kwargs)
        import torch

        def recorded() -> Any:
            tf32.append((torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32))
            return step()

        return recorded, model, where

    with (
        _recorded(bench_module, "run_bench") as results,
        pytest.MonkeyPatch.context() as patch,
        _devices_used() as used,
    ):
        patch.setattr(bench_module, "torch_step", torch_step)
        status, printed, err = _cli("bench", "--device", device, *BENCH)
    assert status == 0, err  # 1: PyTorch computed another loss
    assert device in used
    result = results[0]
    assert result["machine"]["device"] == device and f"miniclip ({device})" in printed
    if device == "gpu":
        import cupy

        name = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)["name"].decode()
        assert f"gpu: {name}, cupy {cupy.__version__}" in printed
        assert "CuPy (cuBLAS) float32 GEMM 64×64" in printed
    table = printed[printed.index("where the time goes") :]
    for layer in ("image.stem_conv", "image.blocks.0.conv1", "text.lookup", "text.blocks.0.attn", "loss"):
        assert f"\n{layer} " in table, layer
    assert "outside: optimiser (AdamW)" in table
    reference = result["torch"]
    if "skipped" in reference:
        assert f"PyTorch comparison skipped: {reference['skipped']}" in printed
    else:
        assert reference["device"] == ("cuda" if device == "gpu" else "cpu")
        assert reference["same_loss"] and ": equal" in printed
        assert "both in plain float32 (PyTorch's TF32 switched off for the comparison)" in printed
        assert tf32 and not any(any(flags) for flags in tf32), tf32
    return printed, result


def test_bench_on_the_gpu_names_it_times_every_layer_and_computes_the_cpus_loss():
    _, gpu = _run_bench(GPU)
    _, cpu = _run_bench("cpu")
    assert gpu["miniclip"]["loss0"] == pytest.approx(cpu["miniclip"]["loss0"], rel=LOSS_RTOL)  # same weights, batch
    assert gpu["cost"].training_flops == cpu["cost"].training_flops
    assert [r["name"] for r in gpu["layers"]["rows"]] == [r["name"] for r in cpu["layers"]["rows"]]
    if GPU == "gpu" and _torch_cuda():  # PyTorch on CUDA beside CuPy: only this part needs it
        assert gpu["torch"]["device"] == "cuda" and gpu["torch"]["same_loss"]
        assert gpu["torch"]["loss0"] == pytest.approx(cpu["miniclip"]["loss0"], rel=LOSS_RTOL)


# ---------------------------------------------------------------- eval --linear-probe


def _run_eval_probe(folder: Path, device: str, run: Path) -> dict[str, Any]:
    """``miniclip eval RUN --linear-probe``: its eval.json."""
    out = folder / "eval"
    with _devices_used() as used:
        status, printed, err = _cli(
            "eval", str(run), "--out", str(out), "--linear-probe", "--no-progress", "--device", device
        )
    assert status == 0 and err == "", err
    assert device in used
    summary = json.loads((out / "eval.json").read_text(encoding="utf-8"))
    probe = summary["linear_probe"]
    assert probe["all"]["n_train"] == N_TRAIN and 0 <= probe["all"]["top1"] <= 1
    assert f"  all {N_TRAIN} training images " in printed
    return summary


def test_eval_with_the_linear_probe_on_the_gpu_matches_the_cpu(runs, tmp_path):
    gpu = _run_eval_probe(_side(tmp_path, "gpu"), GPU, runs["a"])
    cpu = _run_eval_probe(_side(tmp_path, "cpu"), "cpu", runs["a"])
    _assert_accuracies_agree(gpu["zero_shot"], cpu["zero_shot"], N_TEST)
    for direction in ("text_to_image", "image_to_text"):
        for k, value in cpu["recall"][direction].items():
            assert abs(gpu["recall"][direction][k] - value) <= TIE_IMAGES / N_TEST + 1e-9, (direction, k)

    # λ is the best held-out accuracy's (the largest among equals): a count on the held-out images.
    labels = load_dataset("shapes", seed=0, n_train=N_TRAIN, n_test=N_TEST).train_labels
    held_out = len(holdout_split(labels, PROBE_HOLDOUT, 0)[1])
    gpu_probe, cpu_probe = gpu["linear_probe"], cpu["linear_probe"]
    for lam, accuracy in cpu_probe["l2_heldout_accuracy"].items():
        assert abs(gpu_probe["l2_heldout_accuracy"][lam] - accuracy) <= TIE_IMAGES / held_out + 1e-9, lam
    if gpu_probe["l2"] != cpu_probe["l2"]:  # allowed only on a near tie of the two λ
        scores = cpu_probe["l2_heldout_accuracy"]
        assert abs(scores[f"{gpu_probe['l2']:g}"] - scores[f"{cpu_probe['l2']:g}"]) <= TIE_IMAGES / held_out + 1e-9
        return
    _assert_accuracies_agree({"all": gpu_probe["all"]}, {"all": cpu_probe["all"]}, N_TEST)
    _assert_accuracies_agree(gpu_probe["few_shot"], cpu_probe["few_shot"], N_TEST)


# ---------------------------------------------------------------- eval of two runs: a model ensemble


def _run_ensemble(folder: Path, device: str, first: Path, second: Path) -> dict[str, Any]:
    """``miniclip eval A B --out DIR``: its eval.json."""
    out = folder / "ensemble"
    with _devices_used() as used:
        status, printed, err = _cli("eval", str(first), str(second), "--out", str(out), "--device", device)
    assert status == 0, err
    assert device in used
    summary = json.loads((out / "eval.json").read_text(encoding="utf-8"))
    assert [m["checkpoint"] for m in summary["members"]] == [str(p / "checkpoint.npz") for p in (first, second)]
    assert re.search(r"^ensemble +\d+\.\d% +\d+\.\d%$", printed, re.M)
    return summary


def test_an_ensemble_on_the_gpu_matches_the_cpu(runs, tmp_path):
    gpu = _run_ensemble(_side(tmp_path, "gpu"), GPU, runs["a"], runs["b"])
    cpu = _run_ensemble(_side(tmp_path, "cpu"), "cpu", runs["a"], runs["b"])
    members = {m["checkpoint"]: m for m in cpu["members"]}
    _assert_accuracies_agree({m["checkpoint"]: m for m in gpu["members"]}, members, N_TEST)
    _assert_accuracies_agree({"ensemble": gpu["ensemble"]}, {"ensemble": cpu["ensemble"]}, N_TEST)


# ---------------------------------------------------------------- classify and search


def _image_files(folder: Path, count: int = 6) -> list[str]:
    """The first ``count`` test shapes of the runs' split as PNG files (written once)."""
    folder.mkdir(exist_ok=True)
    images = load_dataset("shapes", seed=0, n_train=N_TRAIN, n_test=N_TEST).test_images[:count]  # (n, 3, H, W)
    paths = []
    for k, image in enumerate(images):
        path = folder / f"shape-{k}.png"
        if not path.exists():
            Image.fromarray(np.ascontiguousarray(image.transpose(1, 2, 0))).save(path)
        paths.append(str(path))
    return paths


def _run_classify(folder: Path, device: str, run: Path) -> list[list[tuple[str, float]]]:
    """``miniclip classify RUN IMAGES --labels ...``: every label's probability for each image, best first."""
    files = _image_files(folder / "images")
    labels = load_dataset("shapes", seed=0, n_train=N_TRAIN, n_test=N_TEST).class_names[:8]
    with _recorded(classify_and_search, "classify_images") as results, _devices_used() as used:
        status, printed, err = _cli("classify", str(run), *files, "--labels", *labels, "--top", "3", "--device", device)
    assert status == 0 and err == "", err
    assert device in used
    ranked = results[0]
    assert len(ranked) == len(files) and printed.count("%") == 3 * len(files)
    for path, rows in zip(files, ranked, strict=True):
        assert sorted(label for label, _ in rows) == sorted(labels) and path in printed
        assert sum(p for _, p in rows) == pytest.approx(1.0, rel=1e-5)
    return ranked


def test_classify_on_the_gpu_matches_the_cpu(runs, tmp_path):
    gpu = _run_classify(_side(tmp_path, "gpu"), GPU, runs["a"])
    cpu = _run_classify(_side(tmp_path, "cpu"), "cpu", runs["a"])
    for gpu_rows, cpu_rows in zip(gpu, cpu, strict=True):
        gpu_labels, gpu_probs = zip(*gpu_rows, strict=True)
        cpu_labels, cpu_probs = zip(*cpu_rows, strict=True)
        _assert_same_best(list(gpu_labels), gpu_probs, list(cpu_labels), cpu_probs, EMBED_ATOL)


def _run_search(folder: Path, device: str, run: Path) -> tuple[list[int], np.ndarray]:
    """``miniclip search RUN QUERY --top 8``: the test images' indices, best first, and their cosines."""
    grid = folder / "search.png"
    with _recorded(classify_and_search, "search_images") as results, _devices_used() as used:
        status, printed, err = _cli("search", str(run), QUERY, "--top", "8", "--out", str(grid), "--device", device)
    assert status == 0 and err == "", err
    assert device in used
    indices, scores = results[0]
    assert len(indices) == 8 and np.all(np.diff(scores) <= 0) and np.all(np.abs(scores) <= 1 + 1e-6)
    assert f"saved {grid}" in printed and grid.stat().st_size > 0
    return [int(i) for i in indices], np.asarray(scores)


def test_search_on_the_gpu_matches_the_cpu(runs, tmp_path):
    gpu = _run_search(_side(tmp_path, "gpu"), GPU, runs["a"])
    cpu = _run_search(_side(tmp_path, "cpu"), "cpu", runs["a"])
    _assert_same_best(gpu[0], gpu[1], cpu[0], cpu[1], EMBED_ATOL)


# ---------------------------------------------------------------- the predictive objective


def _run_predictive(folder: Path, device: str) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    """``miniclip train --objective predictive``: its metrics and its final weights."""
    out = folder / "predictive"
    metrics = _train(out, device, *TINY, "--epochs", "1", "--objective", "predictive")
    saved = load_checkpoint(out)
    assert saved.model_config.objective == "predictive" and metrics[0]["logit_scale"] is None
    assert np.isfinite(metrics[0]["train_loss"])
    return metrics, saved.model.state()


def test_the_predictive_objective_trains_on_the_gpu_as_on_the_cpu(tmp_path):
    gpu_metrics, gpu_state = _run_predictive(_side(tmp_path, "gpu"), GPU)
    cpu_metrics, cpu_state = _run_predictive(_side(tmp_path, "cpu"), "cpu")
    _assert_metrics_agree(gpu_metrics, cpu_metrics, N_TEST)
    _assert_states_agree(gpu_state, cpu_state)


# ---------------------------------------------------------------- Ctrl-C inside a step, then --resume


def _run_interrupted(folder: Path, device: str) -> dict[str, Any]:
    """A run cut halfway through its 5th AdamW update (a second Ctrl-C), resumed, beside one never cut.

    As test_train.py's CPU test: the update moves a few weights and counts the step, then the
    interrupt lands. The checkpoint must hold the state before that step exactly as it was copied
    (weights, buffers, moments, step count, generator); the resumed run must end as the one never cut.
    """
    args = ["train", *TINY, "--epochs", "1", "--device", device]
    cut, straight = folder / "cut", folder / "straight"
    before_step: list[Any] = []  # the state copied before the latest step, read on the host
    real_take, real_step = StepSnapshot.take, AdamW.step
    updates: list[int] = []

    def take(self: StepSnapshot) -> None:
        real_take(self)
        before_step[:] = [(self.model.state(), self.optimizer.state(), self.rng.bit_generator.state)]

    def cut_step(self: AdamW) -> None:
        updates.append(self.t)
        if len(updates) < 5:
            return real_step(self)
        self.t += 1  # as AdamW.step begins: the step is counted, and the first few weights moved
        for name, p in list(self.params.items())[:3]:
            self.m[name] += 1.0
            p.data -= 0.5
        raise KeyboardInterrupt

    handler = signal.getsignal(signal.SIGINT)
    with pytest.MonkeyPatch.context() as patch, _devices_used() as used:
        patch.setattr(StepSnapshot, "take", take)
        patch.setattr(AdamW, "step", cut_step)
        status, printed, err = _cli(*args, "--out", str(cut))
    assert status == 130, err
    assert f"interrupted: checkpoint saved in {cut}; continue with the same command and --resume" in printed
    assert signal.getsignal(signal.SIGINT) is handler and device in used  # the roll-back's brief SIG_IGN is undone
    saved = load_checkpoint(cut)
    model_before, optimizer_before, rng_before = before_step[0]
    assert saved.progress["epoch"] == 0 and saved.progress["batch"] == 4
    assert int(saved.optimizer_state["step"]) == int(optimizer_before["step"]) == 4
    assert saved.rng_state["augment"] == rng_before
    cut_state = {f"model/{k}": v for k, v in saved.model.state().items()}
    cut_state |= {f"optim/{k}": v for k, v in saved.optimizer_state.items() if k != "step"}
    copied = {f"model/{k}": v for k, v in model_before.items()}
    copied |= {f"optim/{k}": v for k, v in optimizer_before.items() if k != "step"}
    _assert_states_agree(cut_state, copied, exact=True)  # a copy and back, on one device: to the bit

    status, _, err = _cli(*args, "--out", str(cut), "--resume")
    assert status == 0, err
    status, _, err = _cli(*args, "--out", str(straight))
    assert status == 0, err
    resumed, uninterrupted = load_checkpoint(cut), load_checkpoint(straight)
    on_cpu = device == "cpu"  # the GPU's atomic adds round in any order: equal only to rounding there
    _assert_states_agree(resumed.model.state(), uninterrupted.model.state(), exact=on_cpu)
    _assert_metrics_agree(resumed.metrics, uninterrupted.metrics, N_TEST, exact=on_cpu)
    return {"cut": cut_state, "final": resumed.model.state(), "metrics": resumed.metrics}


def test_ctrl_c_inside_a_gpu_step_rolls_back_and_resume_finishes_as_on_the_cpu(tmp_path):
    gpu = _run_interrupted(_side(tmp_path, "gpu"), GPU)
    cpu = _run_interrupted(_side(tmp_path, "cpu"), "cpu")
    _assert_states_agree(gpu["cut"], cpu["cut"])
    _assert_states_agree(gpu["final"], cpu["final"])
    _assert_metrics_agree(gpu["metrics"], cpu["metrics"], N_TEST)


# ---------------------------------------------------------------- flip averaging (both shipped configurations)


def _run_flip_average(folder: Path, device: str, run: Path) -> dict[str, Any]:
    """The cpu configuration trained on DEVICE (its evaluation flip-averaged), and RUN (the same) evaluated there."""
    metrics = _train(folder / "flip", device, *FLIP, "--epochs", "1")
    out = folder / "eval"
    status, _, err = _cli("eval", str(run), "--out", str(out), "--device", device)
    assert status == 0, err
    summary = json.loads((out / "eval.json").read_text(encoding="utf-8"))
    with backend.using(device):
        trained = load_run(run)
        images = trained.dataset().test_images  # (N, 3, 32, 32) uint8
        flipped = backend.to_host(trained.embed_images(images))  # (N, d) as the run is evaluated
        plain = backend.to_host(trained.embed_images(images, flip_average=False))  # (N, d) one view
    assert trained.config.flip_average and len(images) == FLIP_TEST
    np.testing.assert_allclose(np.linalg.norm(flipped, axis=1), 1.0, rtol=1e-5)  # the sum of two views, renormalised
    assert np.abs(flipped - plain).max() > 100 * EMBED_ATOL  # the mirror images count: a comparison that could fail
    return {"metrics": metrics, "eval": summary, "flipped": flipped, "plain": plain}


def test_flip_averaging_on_the_gpu_matches_the_cpu(runs, tmp_path):
    gpu = _run_flip_average(_side(tmp_path, "gpu"), GPU, runs["flip"])
    cpu = _run_flip_average(_side(tmp_path, "cpu"), "cpu", runs["flip"])
    _assert_metrics_agree(gpu["metrics"], cpu["metrics"], FLIP_TEST)
    _assert_accuracies_agree(gpu["eval"]["zero_shot"], cpu["eval"]["zero_shot"], FLIP_TEST)
    np.testing.assert_allclose(gpu["flipped"], cpu["flipped"], atol=EMBED_ATOL)
    np.testing.assert_allclose(gpu["plain"], cpu["plain"], atol=EMBED_ATOL)


# ---------------------------------------------------------------- walkthrough


NUMBER = re.compile(r"-?\d+(?:\.(\d+))?(?:e[-+]?\d+)?")


def _run_walkthrough(device: str) -> tuple[str, dict[str, np.ndarray]]:
    """``miniclip walkthrough``: its printout and every number it was printed from."""
    with _recorded(walkthrough_module, "compute_walkthrough") as computed, _devices_used() as used:
        status, printed, err = _cli("walkthrough", "--device", device)
    assert status == 0 and err == "", err
    assert device in used
    assert printed.startswith("miniclip walkthrough: 3 text–image pairs by hand") and "Step 13" in printed
    return printed, computed[0]


def test_the_walkthrough_on_the_gpu_prints_the_cpus_numbers():
    gpu_text, gpu = _run_walkthrough(GPU)
    cpu_text, cpu = _run_walkthrough("cpu")
    assert gpu.keys() == cpu.keys()
    for name, value in cpu.items():  # float64 sums of a few small numbers: equal but for the last bits
        np.testing.assert_allclose(gpu[name], value, rtol=1e-12, atol=1e-12, err_msg=name)
    assert NUMBER.sub("#", gpu_text) == NUMBER.sub("#", cpu_text)  # the same words and layout
    for g, c in zip(NUMBER.finditer(gpu_text), NUMBER.finditer(cpu_text), strict=True):
        last_digit = 10.0 ** -len(c.group(1) or "")  # a rounding boundary may move the last printed digit by one
        assert abs(float(g.group()) - float(c.group())) <= 1.01 * last_digit, (g.group(), c.group())
