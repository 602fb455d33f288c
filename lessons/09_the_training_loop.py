# %% [markdown]
# # Lesson 09 — The training loop
#
# Everything so far computed one loss and one gradient. Training repeats that thousands of
# times, and a few more pieces make the repetition work. One step, on a batch of B images:
#
#     images ─random crop + flip─→ normalise ─→ image encoder ┐
#     labels ─one caption each, from a random template──────→ text encoder ┤→ logits (B, B) → loss
#                                                               targets: label-aware (lesson 08)
#     backward → clip the global gradient norm → AdamW step (learning rate from the schedule)
#              → clamp the temperature
#
# and every epoch ends with a zero-shot evaluation on the test split and a checkpoint.
# `miniclip.training.loop.Trainer` is that loop. This lesson first takes one step by hand, with the
# package's own pieces, and checks that it is exactly `Trainer.step`; then it trains a tiny
# model on the shapes for a few epochs (seconds on a CPU) and watches the loss fall and the
# zero-shot accuracy rise; then it interrupts a run, resumes it, and gets the same numbers
# as a run that was never interrupted.
#
# The code: `miniclip/training/loop.py` and `miniclip/training/step.py`, with `miniclip/training/configs.py` and
# `miniclip/training/checkpoint.py`.

# %%
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from miniclip import set_device
from miniclip.data.augment import batches, horizontal_flip, random_crop
from miniclip.data.captions import caption_rows, draw_templates
from miniclip.model.targets import label_aware_targets
from miniclip.optim import clip_grad_norm, warmup_cosine
from miniclip.teaching.lesson_output import lesson_out, scratch_folder, show
from miniclip.training.checkpoint import load_checkpoint
from miniclip.training.configs import CONFIGS, TrainConfig, named_config
from miniclip.training.loop import Trainer, train

set_device("cpu")  # lessons run on NumPy; on the GPU the same code runs on CuPy arrays
np.set_printoptions(precision=4, suppress=True, linewidth=120)
out = lesson_out()  # the run's folder goes here when MINICLIP_LESSON_OUT is set, else a scratch one
scratch = scratch_folder("09_runs")  # for the runs this lesson throws away; removed when the process ends

# %% [markdown]
# ## A tiny configuration
#
# `named_config("tiny", ...)` copies the named configuration `tiny` and replaces a few
# fields. It trains the shapes in seconds: 2048 training images, batches of 64, four epochs,
# and a small model — a CNN of two stages (8 and 16 channels) after a 2×2 patchify stem, and
# a one-block text transformer of width 32, meeting in a 32-dimensional space.


# %%
def tiny(out_dir: str | Path, **changes: object) -> TrainConfig:
    """The configuration ``tiny``, writing to ``out_dir``."""
    return named_config("tiny", out_dir=str(out_dir), **changes)


cfg = tiny("unused")
for name in ("data", "n_train", "n_test", "epochs", "batch_size", "lr", "warmup", "weight_decay", "grad_clip"):
    print(f"{name:<13} {getattr(cfg, name)}")
print(f"{'targets':<13} {cfg.targets}   augment {cfg.augment}   model {cfg.model}")

# %% [markdown]
# ## One step by hand
#
# Two trainers with the same configuration start identical: the weights are drawn from the
# seed, and so are the two generators that decide the shuffling (`order_rng`) and every crop,
# flip and caption template (`augment_rng`). We take one step by hand on the first, then let
# the second take its own `Trainer.step` on the same batch, and compare every weight.
# (Augmentation is switched on here so that all the pieces appear; the shapes configuration
# leaves it off.)

# %%
for name in ("by_hand", "twin"):
    shutil.rmtree(scratch / name, ignore_errors=True)  # this cell's own trainers, from an earlier time it ran
by_hand = Trainer(tiny(scratch / "by_hand", augment=True), show_progress=False)
twin = Trainer(tiny(scratch / "twin", augment=True), show_progress=False)
model, rng = by_hand.model, by_hand.augment_rng
idx = next(batches(len(by_hand.dataset.train_labels), cfg.batch_size, by_hand.order_rng))  # (B,) the first batch
print(f"{by_hand.steps_per_epoch} steps per epoch, {by_hand.total_steps} in all; this batch: {idx[:8]} ...")

# %% [markdown]
# **1. Images, augmented.** The training images stay uint8 until the batch is cut. Each is
# shifted by up to 4 pixels (pad, crop) and mirrored with probability ½.

# %%
images, labels = by_hand.train_images[idx], by_hand.train_labels[idx]  # (B, 3, 32, 32) uint8, (B,)
augmented = horizontal_flip(random_crop(images, 4, rng), 0.5, rng)  # (B, 3, 32, 32) uint8
print("images", images.shape, images.dtype, f"— {int((augmented != images).any(axis=(1, 2, 3)).sum())} changed")

# %% [markdown]
# **2. Captions.** Every caption that can occur (48 classes × 5 templates) was tokenised
# once when the trainer was built; a step only draws a template per image and picks rows of
# that table: `row = label · T + template` (`miniclip.data.captions`, where `make_captions`
# draws the same captions as strings).

# %%
n_templates = len(by_hand.templates)
template = draw_templates(rng, len(idx), n_templates)  # (B,)
row = caption_rows(labels, template, n_templates)  # (B,) which caption of the table: label · T + template
ids, mask = by_hand.caption_ids[row], by_hand.caption_mask[row]  # (B, L) each
for k in range(3):
    print(f"  image {idx[k]:>4} ({by_hand.dataset.class_names[labels[k]]}): {by_hand.tokenizer.decode(ids[k])!r}")

# %% [markdown]
# **3. Targets.** Label-aware (lesson 08), $Y_{ij} = [c_i = c_j] / n_{c_i}$: with 40 training
# classes in a batch of 64, several classes appear more than once, and each such pair counts
# as a match.

# %%
targets = label_aware_targets(labels, np.float32)  # (B, B)
counts = np.bincount(labels)
print(f"{int((counts > 1).sum())} classes appear more than once in this batch; targets {targets.shape}")

# %% [markdown]
# **4. The learning rate.** Linear warm-up over the first 5% of the steps, then a cosine down
# to 0 (lesson 06b works the schedule out by hand). The first step of warm-up has a learning
# rate of exactly 0, so we take our step at the end of the warm-up, where the rate peaks.

# %%
total, warmup_steps = by_hand.total_steps, int(cfg.warmup * by_hand.total_steps)
for s in (0, 3, warmup_steps, total // 2, total - 1):
    print(f"  step {s:>3}: lr {warmup_cosine(s, total, warmup_steps, cfg.lr, cfg.min_lr):.5f}")
step = warmup_steps
lr = warmup_cosine(step, total, warmup_steps, cfg.lr, cfg.min_lr)

# %% [markdown]
# **5. Forward, backward, clip, AdamW, clamp.** The forward normalises the augmented images
# and returns the loss; the backward fills every `.grad`. Clipping rescales all gradients
# together when their global norm exceeds 1 (here it does: early gradients are large). AdamW
# (lesson 06b) updates the weights, and the temperature is clamped to `[0, ln 100]`. The
# trainer's own step (`train_step` in `miniclip/training/step.py`) does exactly this, with two
# savings that change no number: it asks for no gradient of the images, which are data
# (`model.backward(image_grad=False)`), and AdamW keeps every weight, gradient and moment in
# one flat buffer per group (`miniclip/optim/flat.py`), so zeroing and clipping are a few
# whole-buffer operations instead of a few per parameter.

# %%
by_hand.optimizer.set_lr(lr)
model.zero_grad()
loss = model(ids, by_hand.normalize_fn(augmented), mask, targets)  # 0-d
model.backward()
norm_before = float(clip_grad_norm(model.parameters(), cfg.grad_clip))
norm_after = float(np.sqrt(sum((p.grad**2).sum() for p in model.parameters().values())))
by_hand.optimizer.step()
model.clamp_logit_scale()
print(f"loss {float(loss):.4f}; gradient norm {norm_before:.3f} → clipped to {norm_after:.3f}; lr {lr:.4f}")

twin_loss = twin.step(idx, step)  # the trainer's own step, on the same batch
same = all(np.array_equal(p.data, twin.model.parameters()[n].data) for n, p in model.parameters().items())
print(f"Trainer.step: loss {float(twin_loss):.4f}; all {len(model.parameters())} parameters identical: {same}")
assert float(loss) == float(twin_loss) and same
assert norm_before > cfg.grad_clip and abs(norm_after - cfg.grad_clip) < 1e-3

# %% [markdown]
# The loss of the batch before the step, against chance and the floor: with these targets
# the smallest possible loss is the entropy of the targets, $\frac{1}{B} \sum_{c} n_c \log n_c$ (lesson 08),
# not 0. An untrained model scores near `ln B`, chance, or above it: the initial scale of
# 14.3 makes its random preferences confident.

# %%
batch_floor = float((counts[counts > 0] * np.log(counts[counts > 0])).sum() / len(idx))
print(f"loss before the step {float(loss):.3f}, chance ln 64 = {np.log(64):.3f}, floor {batch_floor:.3f}")

# %% [markdown]
# ## Training for a few epochs
#
# `Trainer(cfg).run()` repeats that step over shuffled batches. After each epoch it
# classifies the 480 test images zero-shot, with three sets of prompts: one template, all
# five training templates averaged (the prompt ensemble), and templates it never trained on;
# and separately on the 8 held-out colour–shape classes. It writes `metrics.jsonl`,
# `curves.png` and `checkpoint.npz` into the run folder (with `MINICLIP_LESSON_OUT` set:
# `09_shapes_run` there, and the curves also as `09_curves.png`). Chance is 1/48 ≈ 2.1%.

# %%
run_dir = out / "09_shapes_run" if out else scratch / "run"
if run_dir.exists():
    shutil.rmtree(run_dir)  # this lesson's own run from an earlier time: start afresh
start = time.perf_counter()
metrics = Trainer(tiny(run_dir), show_progress=False).run()
print(f"trained in {time.perf_counter() - start:.1f} s")
print(f"{'epoch':>5} {'loss':>6} {'scale':>6} {'one template':>13} {'ensemble':>9} {'unseen':>7}", end=" ")
print(f"{'held-out':>9} {'img/s':>6}")
for m in metrics:
    z = m["zero_shot"]
    print(
        f"{m['epoch']:>5} {m['train_loss']:6.3f} {m['logit_scale']:6.1f} {z['one template']['top1']:13.1%}"
        f" {z['train templates']['top1']:9.1%} {z['unseen templates']['top1']:7.1%}"
        f" {z['train templates']['heldout_top1']:9.1%} {m['images_per_second']:6.0f}"
    )
print("files:", sorted(p.name for p in run_dir.iterdir()))
show(run_dir / "curves.png", "09_curves.png")  # drawn by miniclip.plots.plot_curves after each epoch

# %% [markdown]
# The loss starts near or above $\log 64 \approx 4.16$ (an untrained model, sharpened by the
# initial scale 14.3) and falls towards the floor of its batches; the zero-shot accuracy climbs
# well above chance (2.1 %) within a few epochs. (Exact figures vary with the machine's
# arithmetic; the checks below leave room for that.)
#
# Two things in the table need a closer look before they are read as success.
#
# **What has it learnt?** Lesson 10 splits each prediction into its three words. In this
# run's model size and colour are right about 98 % of the time, but the *shape* only about
# a third of the time, where guessing among the four shapes gets 25 %. So the model has
# learnt the sizes and colours as words, and the shapes barely: a class is right about as
# often as its shape is. Four epochs of a tiny CNN with a 2×2 patchify stem see colour and
# extent long before they see corners.
#
# **Why is held-out accuracy above the overall one?** The held-out column is measured on the
# 8 classes never trained on — yellow circles, red squares, white triangles and green crosses,
# in both sizes — only 80 of the 480 test images, so one image is 1.25 points and a few lucky
# ones move it a lot. And since size and colour are nearly always right, a held-out image is
# right when the model picks its shape among the four classes with its size and colour. If
# the model leans towards one shape, say a colour's circle, every image of that colour
# that it cannot read is given the circle: that class catches its own images too, and its
# accuracy (its recall) rises without any knowledge of circles — the *attractor* effect
# lesson 12 measures (count what each class is given, not only what it gets right). So the
# fair baseline for a held-out class is not 1/48 but about 25 % (its size and colour right,
# the shape guessed); what lifts it above that is partly composition and partly attractors.

# %%
first, last = metrics[0], metrics[-1]
best_top1 = max(v["top1"] for v in last["zero_shot"].values())
assert last["train_loss"] < first["train_loss"] - 0.5
assert best_top1 > 5 / 48  # five times chance
assert (run_dir / "checkpoint.npz").is_file() and (run_dir / "metrics.jsonl").is_file()

# %% [markdown]
# ## Stop and resume
#
# A long run must survive Ctrl-C. The first Ctrl-C asks the loop to stop at the next step
# boundary; there it saves a checkpoint holding its position *inside* the epoch and raises
# `KeyboardInterrupt`; `--resume` (here `Trainer(cfg, resume=True)`) continues from that very
# step. Everything random comes from the two generators, whose states are in the checkpoint,
# so the resumed run draws the same batches, crops and captions as an uninterrupted one.
#
# `run(on_step=...)` calls a function at every step boundary; raising `KeyboardInterrupt`
# from it is the same as pressing Ctrl-C there. A smaller run (256 images, two epochs of 4
# steps) is trained twice: straight through, and stopped at step 6, in the middle of the
# second epoch, then resumed.


# %%
def stop_at(step_to_stop: int) -> Callable[[int], None]:
    """An ``on_step`` hook that presses Ctrl-C just before step ``step_to_stop``."""

    def on_step(step: int) -> None:
        if step == step_to_stop:
            raise KeyboardInterrupt

    return on_step


small = {"n_train": 256, "n_test": 96, "epochs": 2, "augment": True}
for name in ("straight", "stopped"):
    shutil.rmtree(scratch / name, ignore_errors=True)  # this cell's own runs, from an earlier time it ran
straight = train(tiny(scratch / "straight", **small), show_progress=False)

stopped_cfg = tiny(scratch / "stopped", **small)
try:
    train(stopped_cfg, show_progress=False, on_step=stop_at(6))
except KeyboardInterrupt:
    print("interrupted before step 6")
saved = load_checkpoint(stopped_cfg.out_dir)
print("in the checkpoint:")
print("  progress      ", saved.progress)
print("  metrics       ", f"{len(saved.metrics)} epoch(s) so far, loss {saved.metrics[0]['train_loss']:.4f}")
print("  generators    ", {name: state["bit_generator"] for name, state in saved.rng_state.items()})
print("  model arrays  ", len(saved.model.state()), "e.g.", list(saved.model.state())[:3])
print("  optimiser     ", f"step {int(saved.optimizer_state['step'])}, {len(saved.optimizer_state) - 1} moment arrays")
print("  configuration ", sorted(saved.train_config["config"])[:6], "...")
print("  files         ", sorted(p.name for p in Path(stopped_cfg.out_dir).iterdir()))
assert saved.progress["epoch"] == 1 and saved.progress["batch"] == 2  # 4 steps per epoch: step 6 = epoch 2, batch 2
assert int(saved.optimizer_state["step"]) == 6  # steps 0..5 taken

resumed = Trainer(stopped_cfg, resume=True, show_progress=False).run()
for a, b in zip(straight, resumed, strict=True):
    print(f"epoch {a['epoch']}: loss straight {a['train_loss']:.6f}, stopped + resumed {b['train_loss']:.6f}")
    assert a["train_loss"] == b["train_loss"] and a["zero_shot"] == b["zero_shot"]
weights_a = load_checkpoint(scratch / "straight").model.state()
weights_b = load_checkpoint(stopped_cfg.out_dir).model.state()
assert all(np.array_equal(weights_a[name], weights_b[name]) for name in weights_a)
print("the same losses, accuracies and final weights, to the last bit")

# %% [markdown]
# ## The real runs
#
# On CIFAR-10 the same loop runs from the command line. `miniclip train` picks the `cpu`
# configuration (printed below): a residual CNN after a 2×2 patchify stem and the
# walkthrough's bag-of-words text encoder (ten class names need no attention), batches of
# 256, with crops and flips. It downloads CIFAR-10 (the 170 MB (162 MiB) archive
# `cifar-10-binary.tar.gz`) on the first run, shows a
# progress bar with the loss, the temperature and the images per second, and writes
# `runs/cifar10-cpu/`. How long it takes and the zero-shot accuracy it reaches: see the
# README for the measured figure.
#
#     miniclip train                              # CIFAR-10 on the CPU (configuration "cpu")
#     miniclip train --resume                     # after Ctrl-C: continue where it stopped
#     miniclip train --data shapes                # the shapes, a minute or two
#     miniclip train --targets identity           # CLIP's own targets, to compare (lesson 08)
#     miniclip eval runs/cifar10-cpu              # lesson 10's measurements, with plots
#
# On a GPU it is one flag: `miniclip train --device gpu` (with CuPy installed). Every array
# then lives on the GPU — the same code, CuPy instead of NumPy — and the default
# configuration becomes `gpu`: a wider CNN at full resolution, a deeper text transformer,
# more epochs of larger batches. Its loss is checked every 20 steps instead of every step,
# since reading a number back from the GPU makes the CPU wait for it.

# %%
for name in ("cpu", "gpu"):
    c = CONFIGS[name]
    print(f"{name}: {c.epochs} epochs, batch {c.batch_size}, lr {c.lr}, augment {c.augment}, model {c.model}")
assert CONFIGS["cpu"].data == CONFIGS["gpu"].data == "cifar10"

# %% [markdown]
# ## What you should take away
#
# * one step is: augment the uint8 batch, draw a caption per image, forward with label-aware
#   targets, backward, clip the global gradient norm, an AdamW step at the scheduled learning
#   rate, clamp the temperature — `Trainer.step` does exactly that, weight for weight;
# * the loss is compared with its floor, not with 0, and zero-shot accuracy on the test split
#   (one template, the ensemble, unseen wordings, held-out classes) is the measure of progress;
# * a checkpoint holds the weights, the optimiser's moments, the position in the epoch and the
#   generators' states, so an interrupted run resumes to the same numbers;
# * read accuracies against the right baseline: 1/48 for a whole class, 25 % for the shape
#   of a class whose size and colour are right — and count what each class is given.
#
# ## Exercises
#
# Solutions, each checked by asserts: `lessons/solutions/09_the_training_loop.py`.
#
# 1. **Write the backward first: the temperature.** The logits are $Z = e^{s} C$, C the
#    cosines. Given the loss's gradient $dZ$, derive $\partial L / \partial s$ by hand (one
#    number: the chain rule through $e^{s}$), write it, and check it with central differences
#    (`numerical_gradient`) on `ContrastiveLoss` with label-aware targets, for random unit
#    embeddings of a batch of 8 and s = ln 14.3. At the clamp's top, s = ln 100, the step
#    clamps s back: what does that do to a gradient that asks for more?
# 2. **Predict, then run: the schedule of the tiny run.** 2048 images in batches of 64 for
#    4 epochs, 5 % warm-up, peak 4 · 10⁻³: predict the number of steps, the warm-up length
#    (`int(0.05 · steps)`), and the rate at steps 0, 3 and the last step. Check with
#    `warmup_cosine` and the `tiny` configuration.
# 3. **Change a number: the clip.** The step by hand found a gradient norm above 1 and
#    scaled it down to 1. Predict what `clip_grad_norm` does to gradients of norm 5 with
#    `max_norm = 2`, and to gradients of norm 0.5, then check on two random parameters.
print("lesson 09 passed: one step by hand equals Trainer.step, the loss fell, zero-shot beat chance, resume is exact")
