# %% [markdown]
# # Lesson 14 — Batch size, prompts and ensembles
#
# Three knobs that change what a CLIP gets out of the same data, none of them a new layer:
#
# * **the batch size.** The contrastive loss classifies each image among the N captions of its
#   batch (lesson 02): the other N − 1 are its *in-batch negatives*. A bigger batch is a harder
#   question with more answers to rule out. CLIP trained with N = 32,768;
# * **the prompts** a class is written into at test time: the bare name, one sentence, or the
#   average of many (the prompt ensemble of lesson 10);
# * **model ensembles**: two models trained alike but from different seeds, their class
#   probabilities averaged.
#
# The lesson starts from the loss of N pairs that know nothing (exactly ln N), looks at why an
# untrained model's first loss is a little above it, then trains the tiny shapes model at three
# batch sizes for the same number of images and reports what came out; then compares prompts
# on one run, and ensembles two runs by hand.
#
# The code: `miniclip/evaluation/compare.py` (the curves), `miniclip/evaluation/zeroshot.py` (the
# prompt ensemble) and `miniclip/evaluation/ensemble.py` (model ensembles).

# %%
import copy
import math

import numpy as np

from miniclip import set_device
from miniclip.data import UNSEEN_TEMPLATES
from miniclip.data.augment import batches
from miniclip.data.captions import CLIP_CIFAR10_TEMPLATES, caption_rows, draw_templates, fill
from miniclip.evaluation.compare import format_comparison, learning_curve, plot_learning_curves
from miniclip.evaluation.trained_run import load_run
from miniclip.evaluation.zeroshot import (
    caption_embeddings,
    class_embeddings,
    classify_scores,
    encode_images,
    prompt_ensemble,
    zero_shot,
)
from miniclip.layers import ContrastiveLoss
from miniclip.layers.logit_scale import INIT
from miniclip.layers.softmax import softmax
from miniclip.model.targets import label_aware_targets
from miniclip.teaching.lesson_output import figure_folder, scratch_folder, show
from miniclip.teaching.lesson_runs import tiny_run  # trained once, reused by 11–14
from miniclip.training.configs import named_config
from miniclip.training.loop import Trainer

set_device("cpu")  # lessons run on NumPy; on the GPU the same code runs on CuPy arrays
np.set_printoptions(precision=3, suppress=True, linewidth=120)


# %% [markdown]
# ## 1. In-batch negatives: the loss of knowing nothing is ln N
#
# A batch of N pairs gives an N × N matrix of logits, $z_{ij}$ = caption i against image j. The
# loss (lesson 02) is a cross-entropy along every row and every column,
# $L = (L_{\mathrm{rows}} + L_{\mathrm{cols}}) / 2$, with
#
# $$L_{\mathrm{rows}} = \frac{1}{N} \sum_i \left( \log \sum_j e^{z_{ij}} - \sum_j Y_{ij} z_{ij} \right)$$
#
# A model that cannot tell the pairs apart gives all logits one value. Then every row's
# softmax is uniform, each entry 1/N, and whatever the targets — the identity, or lesson 08's
# label-aware ones, whose rows also sum to 1 — each row costs $-\log(1/N)$: for N equal logits,
# whatever their value and whatever Y,
#
# $$L = \ln N$$
#
# By hand and with `ContrastiveLoss`, for N = 4, 16 and 64, with labels drawn from 4 classes
# so that classes repeat (the label-aware targets then count same-class pairs as matches):

# %%
rng = np.random.default_rng(0)
loss_fn = ContrastiveLoss()
print(f"{'N':>3} {'ln N':>7} {'by hand':>8} {'identity Y':>11} {'label-aware Y':>14} {'its floor':>10}")
for n in (4, 16, 64):
    logits = np.full((n, n), 0.3 * math.exp(INIT), dtype=np.float64)  # (N, N) any constant
    p = softmax(logits, axis=1)  # (N, N) each row 1/N
    by_hand = float(-np.log(p[np.arange(n), np.arange(n)]).mean())  # −log(1/N) in every row
    labels = rng.integers(0, 4, n)  # (N,) classes repeat
    y = label_aware_targets(labels, np.float64)  # (N, N) rows and columns sum to 1
    counts = np.bincount(labels)
    floor = float((counts * np.log(np.maximum(counts, 1))).sum() / n)  # lesson 08: (1/N) Σ_c n_c ln n_c
    identity, aware = float(loss_fn(logits)), float(loss_fn(logits, y))
    print(f"{n:3d} {math.log(n):7.4f} {by_hand:8.4f} {identity:11.4f} {aware:14.4f} {floor:10.4f}")
    assert np.allclose(p, 1 / n) and abs(by_hand - math.log(n)) < 1e-12
    assert abs(identity - math.log(n)) < 1e-12 and abs(aware - math.log(n)) < 1e-12
    same = (labels[:, None] == labels[None, :]).astype(np.float64)  # (N, N) the perfect label-aware logits
    assert abs(float(loss_fn(40 * same, y)) - floor) < 1e-9  # how low label-aware targets can go

# %% [markdown]
# ln N is where every run starts and the yardstick of its loss: 1.39 nats for 4 pairs, 4.16
# for 64. The targets do not move the start; they move the end. Identity targets can reach 0
# when every caption differs; label-aware ones stop at the entropy of the targets,
# (1/N) Σ_c n_c ln n_c (the last column, reached when every caption spreads its probability
# evenly over its class's images: lesson 08).
#
# **The untrained model's first loss is not exactly ln N.** Its logits are not all equal: they
# are the logit scale, e^s = 1/0.07 ≈ 14.3 at the start, times cosines that an untrained model
# makes neither equal nor meaningful. Split each row's loss around ln N:
#
# $$\log \sum_j e^{z_{ij}} - \sum_j Y_{ij} z_{ij} = \ln N + \mathrm{spread}_i + \mathrm{lag}_i$$
#
# $$\mathrm{spread}_i = \log \left( \frac{1}{N} \sum_j e^{z_{ij}} \right) - \frac{1}{N} \sum_j z_{ij} \geq 0$$
#
# $$\mathrm{lag}_i = \frac{1}{N} \sum_j z_{ij} - \sum_j Y_{ij} z_{ij}$$
#
# The spread is never negative (Jensen: the log of a mean is at least the mean of the logs);
# the lag is how far the matches' logits lie below the row's mean.
#
# The spread is the price of logits that differ at random: 0 when a row is constant, growing
# with how much its logits vary (about $\sigma^2 / 2$ for a small standard deviation σ). The lag is what
# the model already knows — nothing yet, so it comes out near 0; it is the term training drives
# large and negative. Here is
# the very first batch of the tiny shapes run with batches of 64, rebuilt by hand: the trainer's
# two generators copied, the first shuffled batch and its caption templates drawn from them
# (lesson 09), one forward of the untrained model. (The trainer is built here and never run:
# it draws the run's starting weights and generators from the seed. The run itself is trained
# in section 2.)

# %%
cfg64 = named_config("tiny", out_dir=str(scratch_folder("14_start_bs64")))
trainer64 = Trainer(cfg64, show_progress=False)
model, dataset = trainer64.model, trainer64.dataset
untrained = model.state()  # the forward below moves batch norm's running statistics: restored after it
order, augment = copy.deepcopy(trainer64.order_rng), copy.deepcopy(trainer64.augment_rng)
idx = next(batches(len(dataset.train_labels), cfg64.batch_size, order))  # (64,) the first batch
batch_labels = dataset.train_labels[idx]  # (64,)
row = caption_rows(batch_labels, draw_templates(augment, len(idx), len(trainer64.templates)), len(trainer64.templates))
targets = label_aware_targets(batch_labels, np.float32)  # (64, 64)
images = trainer64.normalize_fn(dataset.train_images[idx])  # (64, 3, 32, 32)
first = float(model(trainer64.caption_ids[row], images, trainer64.caption_mask[row], targets))
z = model.logits.astype(np.float64)  # (64, 64) scale × cosines, caption i against image j
model.load_state(untrained)
n, scale0 = len(idx), float(model.logit_scale.scale)
cosines = z / scale0  # (64, 64)
parts = []
for m, y in ((z, targets), (z.T, targets.T)):  # rows: text→image; columns: image→text
    top = m.max(axis=1, keepdims=True)  # (64, 1)
    log_mean_exp = (top[:, 0] + np.log(np.exp(m - top).mean(axis=1))).mean()
    parts.append((log_mean_exp - m.mean(axis=1).mean(), m.mean(axis=1).mean() - (y * m).sum(axis=1).mean()))
spread, lag = (float(np.mean(v)) for v in zip(*parts, strict=True))
print(f"cosines: mean {cosines.mean():.3f}, standard deviation within a row {cosines.std(axis=1).mean():.3f}")
print(f"logits = {scale0:.2f} × cosines: standard deviation within a row {z.std(axis=1).mean():.3f}")
print(f"first loss {first:.4f} = ln 64 {math.log(n):.4f} + spread {spread:.4f} + lag {lag:+.4f}")
assert abs(first - (math.log(n) + spread + lag)) < 1e-4 and spread > 0

# %% [markdown]
# The untrained cosines are small — about ±0.1 around 0.06 — but the logit scale magnifies
# them 14.3 times, to logits that vary by about ±1.4 within a row. That spread is the first
# loss's excess over ln N, and why a run's first logged loss reads "ln N and a little": here
# about half a nat, and roughly as much at every batch size (section 2).
#
# **What a bigger batch buys.** Each image is scored against N − 1 wrong captions, and each
# caption against N − 1 wrong images, so one step compares N² pairs for the price of encoding
# N of each: more negatives, a harder N-way question (its chance level ln N grows), more signal
# about what *not* to match. But a negative teaches something only when it is different. With
# label-aware targets a same-class caption is not a negative at all, and the shapes' training
# split has 40 classes: past a few dozen pairs, a bigger batch brings more copies of the same
# 39 other classes, not new kinds of negatives. CLIP's 400 million captions were nearly all
# different, so each of its 32,767 negatives was a new one.

# %%
print(f"{'N':>5} {'negatives N − 1':>16} {'of another class':>17} {'distinct other classes':>23}")
for b in (16, 64, 256):
    first_batch = dataset.train_labels[next(batches(len(dataset.train_labels), b, np.random.default_rng(0)))]
    other = (first_batch[:, None] != first_batch[None, :]).sum(axis=1).mean()  # per image
    distinct = np.mean([len(set(first_batch[first_batch != c])) for c in first_batch])
    print(f"{b:5d} {b - 1:16d} {other:17.1f} {distinct:23.1f}")
    assert distinct <= 39

# %% [markdown]
# ## 2. A batch-size sweep at a fixed number of images
#
# Three runs of the tiny configuration (lesson 09), alike but for the batch: 16, 64 and 256
# pairs, all four epochs, so each sees the same 4 × 2048 = 8192 images. The smaller the batch,
# the more steps: 512, 128 and 32. `learning_curve` reads each run back (its zero-shot accuracy
# after every epoch, against the images seen by then, and its first loss) and
# `format_comparison` prints what `miniclip compare` prints. (Batch 64 is the plain `tiny` run
# of lessons 11–13, trained once and shared by `tiny_run` when `MINICLIP_LESSON_OUT` is set.)

# %%
folders = {16: tiny_run("14_bs16", batch_size=16), 64: tiny_run(), 256: tiny_run("14_bs256", batch_size=256)}
curves = [learning_curve(folder, label=f"batch {b}") for b, folder in folders.items()]
print(format_comparison(curves))
for b, curve in zip(folders, curves, strict=True):
    steps = cfg64.epochs * (len(dataset.train_labels) // b)  # the trainer's total_steps
    print(f"batch {b:3d}: {steps:3d} steps; top-1 after each epoch {curve.top1}")
chance = 1 / dataset.num_classes
assert all(c.images_seen[-1] == 4 * 2048 for c in curves)
assert abs(curves[1].first_loss - first) < 1e-4  # the logged first loss is the batch rebuilt by hand
assert all(abs(c.first_loss - math.log(c.batch_size)) < 1.5 for c in curves)  # ln N and a little
assert all(c.top1[-1] > 2 * chance for c in curves)
assert curves[2].top1[-1] < min(curves[0].top1[-1], curves[1].top1[-1])  # batch 256: 32 steps are too few
path = plot_learning_curves(curves, figure_folder() / "14_batch_size_sweep.png", title="tiny shapes")
show(path, "14_batch_size_sweep.png")

# %% [markdown]
# At this scale **the small batches win**, and by a lot. That is not the in-batch negatives
# failing; it is the number of steps. AdamW moves each weight by about the learning rate per
# step whatever the batch (its first step is lr · sign(g), lesson 06b): a larger batch gives a
# less noisy gradient, but not a longer step. At one learning rate and one budget of images, the
# run of 32 steps simply travels a sixteenth as far as the run of 512. (And, as above, past a
# few dozen pairs the shapes have no new negatives to offer.) A fair comparison of batch sizes
# raises the learning rate with the batch and trains long enough that the number of steps is no
# longer what limits the run.
#
# The CLIP paper's batch of 32,768 is a choice at another scale: 32 epochs of 400 million
# pairs, about 12.8 billion images and still some 390,000 steps, on captions that are almost
# all different. There the steps are plentiful and the hardness of the negatives is what is
# scarce, so a larger batch pays; later work that varied it (SigLIP, Zhai et al. 2023) found
# the gain levelling off around that size. (How such a batch is split over 256 GPUs, each
# computing only its own pairs' rows and columns of the logits, is lesson 17.) Read the
# first-loss column above the other way, too: each run started at ln N (2.8, 4.2 and 5.5 nats)
# and about 0.6 to 0.75 nats more, the spread of section 1.
#
# ## 3. Prompts: the same model, other words
#
# The batch-64 run (seed 0) is read back with `load_run`, as `miniclip eval` reads any run, and
# its 480 test images are encoded once. Each class is then written with six sets of templates:
# the bare name ("{}" gives "small red circle"), the shapes' first training template "a {}.",
# CLIP's "a photo of a {}." (also one of the shapes' five), the ensemble of the five training
# templates, CLIP's 18 CIFAR-10 templates, and the 8 templates never trained on.

# %%
run_a = load_run(folders[64])
model_a, tokenizer, length = run_a.checkpoint.model, run_a.checkpoint.tokenizer, run_a.config.context_length
names, test_images, test_labels = dataset.class_names, dataset.test_images, dataset.test_labels
images_a = encode_images(model_a, test_images, run_a.normalize)  # (480, 32) unit length
prompt_sets = {
    'bare label "{}"': ["{}"],
    '"a {}." (first training template)': ["a {}."],
    '"a photo of a {}."': ["a photo of a {}."],
    "ensemble of the 5 training templates": dataset.train_templates,
    "CLIP's 18 CIFAR-10 templates": CLIP_CIFAR10_TEMPLATES,
    "ensemble of the 8 unseen templates": UNSEEN_TEMPLATES,
}
prompt_top1 = {}
for name, templates in prompt_sets.items():
    prompt_top1[name] = zero_shot(images_a, test_labels, class_embeddings(model_a, tokenizer, names, templates, length))
    print(f"  {name:<38} top-1 {prompt_top1[name]['top1']:6.1%}   top-5 {prompt_top1[name]['top5']:6.1%}")
print(f"  {'chance':<38} top-1 {chance:6.1%}")
assert abs(prompt_top1["ensemble of the 5 training templates"]["top1"] - curves[1].top1[-1]) < 1e-9  # as logged
assert all(r["top1"] > 2 * chance for r in prompt_top1.values())

# %% [markdown]
# On the shapes the wording changes little — a point or two between the six rows, within the
# noise of 480 test images (one image is 0.2 %). Every caption is a few words around the three
# that name the class, and the tokenizer reads every word it never trained on as `<unk>`
# (lesson 10), so CLIP's CIFAR-10 templates and the unseen ones come down to the class name
# among unknown words:

# %%
for t in ("{}", "a photo of a {}.", CLIP_CIFAR10_TEMPLATES[1], UNSEEN_TEMPLATES[0]):
    caption = fill(t, "large yellow circle")
    print(f"  {t!r:<28} → {caption!r:<40} read as {tokenizer.decode(tokenizer.encode(caption))!r}")

# %% [markdown]
# **The prompt ensemble, by hand, for one class.** `caption_embeddings` encodes every class in
# every template, (K, T, d), each a unit vector; `prompt_ensemble` takes each class's mean over
# its templates and normalises it again, since the mean of unit vectors is shorter than 1 —
# the more the templates disagree, the shorter. `class_embeddings` is the two in a row.

# %%
per_template = caption_embeddings(model_a, tokenizer, names, dataset.train_templates, length)  # (48, 5, 32)
c = names.index("large yellow circle")
mean = per_template[c].mean(axis=0)  # (32,)
w = mean / np.linalg.norm(mean)  # (32,) unit length again
print(f"{names[c]}: cosines between its five prompts\n", per_template[c] @ per_template[c].T)
print(f"length of their mean {np.linalg.norm(mean):.4f}; renormalised to {np.linalg.norm(w):.4f}")
ensemble_a = class_embeddings(model_a, tokenizer, names, dataset.train_templates, length)  # (48, 32)
assert np.allclose(w, ensemble_a[c], atol=1e-6) and np.allclose(prompt_ensemble(per_template), ensemble_a, atol=1e-6)
assert np.linalg.norm(mean) <= 1 + 1e-6

# %% [markdown]
# The five prompts of a class are nearly the same vector (cosines above 0.99), so their mean is
# nearly unit length and the ensemble can add little here. On ImageNet, where the wordings
# differ far more and a bare label is often ambiguous ("crane", "boxer"), the CLIP paper
# (Radford et al., 2021, §3.1.4) measures three comparisons: the single template "A photo of
# a {label}." improves zero-shot accuracy by 1.3 points over the bare class name; ensembling
# 80 prompts adds 3.5 points over that single default prompt; together, prompt engineering and
# the ensemble improve on the bare name by almost 5 points. This lesson's rows are the same
# comparisons on the shapes: the bare label against "a photo of a {}." (the paper's 1.3), and
# that single prompt against an ensemble (the paper's 3.5). On CIFAR-10, with sixteen
# training templates, `miniclip eval` prints the same comparison (bare label, "a photo of a
# {}.", the 18-template ensemble, unseen) for a real run.
#
# ## 4. Model ensembles
#
# A second run exactly like the first but for its seed. The seed draws the initial weights, the
# shuffling — and, for the shapes, the images themselves: its training set is a fresh draw of
# the same 40 classes, and its test split other images too. (`miniclip eval A B` therefore
# refuses these two: it ensembles runs only on a test split they share.) Here both are scored
# by hand on the first run's test images, each with its own normalisation, prompts and
# temperature, as `evaluation/classify_and_search.py` turns cosines into probabilities: member
# m, with its logit scale $e^{s_m}$, its image embedding $i_n^{(m)}$ and its class embeddings
# $w_c^{(m)}$, and the ensemble of M members:
#
# $$p_m(c \mid n) = \frac{\exp(e^{s_m} i_n^{(m)} \cdot w_c^{(m)})}{\sum_k \exp(e^{s_m} i_n^{(m)} \cdot w_k^{(m)})}$$
#
# $$p(c \mid n) = \frac{1}{M} \sum_m p_m(c \mid n)$$

# %%
run_b = load_run(tiny_run("14_bs64_seed1", seed=1))
model_b = run_b.checkpoint.model
images_b = encode_images(model_b, test_images, run_b.normalize)  # (480, 32): the same images, B's space
ensemble_b = class_embeddings(model_b, run_b.checkpoint.tokenizer, names, dataset.train_templates, length)  # (48, 32)


def class_probabilities(scale: float, images: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """softmax over the classes of scale × cosines, written out: (N, d), (K, d) → (N, K), rows sum to 1."""
    logits = scale * (images @ classes.T)  # (N, K)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))  # (N, K), the largest is e^0 = 1
    return e / e.sum(axis=1, keepdims=True)


scale_a, scale_b = float(model_a.logit_scale.scale), float(model_b.logit_scale.scale)
p_a = class_probabilities(scale_a, images_a, ensemble_a)  # (480, 48)
p_b = class_probabilities(scale_b, images_b, ensemble_b)  # (480, 48)
p_ens = (p_a + p_b) / 2  # (480, 48)
top1 = {name: classify_scores(p, test_labels)["top1"] for name, p in (("A", p_a), ("B", p_b), ("ensemble", p_ens))}
agree = float((p_a.argmax(axis=1) == p_b.argmax(axis=1)).mean())
print(f"logit scales: A {scale_a:.2f}, B {scale_b:.2f}; A and B give the same class to {agree:.0%} of the images")
for name, value in top1.items():
    print(f"  {name:<9} top-1 {value:6.1%}")
assert np.allclose(p_a, softmax(scale_a * (images_a @ ensemble_a.T), axis=1), atol=1e-6)  # as classify_images does it
assert np.allclose(p_ens.sum(axis=1), 1.0, atol=1e-6)
assert top1["A"] == zero_shot(images_a, test_labels, ensemble_a)["top1"]  # a softmax keeps each row's order
assert top1["ensemble"] >= min(top1["A"], top1["B"])

# %% [markdown]
# The two members, trained alike, disagree on more than half of the images; their average is
# right more often than the worse of them, and in this run more often than either. Where one
# is unsure (a flat row of probabilities) and the other sure, the sure one decides. Only what
# the members say about the classes is averaged, never their vectors.
#
# **Why probabilities, not embeddings.** Each run has its own embedding space. Nothing in
# training fixes its axes: turn all of a model's embeddings by the same rotation Q and every
# cosine, every probability and the loss stay exactly as they were. Two seeds land in two such
# spaces, unrelated — A's images against B's class embeddings are near chance. So the mean of
# A's and B's vector for one image means nothing, and an "ensemble" of averaged embeddings
# works only as far as the cross terms i^(A) · w^(B) happen to be small noise: turn B's space
# (which changes nothing about B) and its answers change. The probabilities' average does not
# move. Twenty random rotations of B:

# %%
cross = zero_shot(images_a, test_labels, ensemble_b)["top1"]  # A's images, B's classes


def embedding_average(images_b: np.ndarray, classes_b: np.ndarray) -> np.ndarray:
    """The wrong ensemble: each image's and each class's two vectors averaged, renormalised; its cosines (N, K)."""
    i = images_a + images_b  # (N, d)
    w = ensemble_a + classes_b  # (K, d)
    return (i / np.linalg.norm(i, axis=1, keepdims=True)) @ (w / np.linalg.norm(w, axis=1, keepdims=True)).T


mixed_top1, changed = [], []
plain = embedding_average(images_b, ensemble_b).argmax(axis=1)  # (480,) B's space as it came out
for seed in range(20):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(32, 32)))  # (32, 32) a random rotation
    turned_b = class_probabilities(scale_b, images_b @ q, ensemble_b @ q)  # (480, 48) B in a turned space
    assert np.allclose(turned_b, p_b, atol=1e-5)  # a rotation changes nothing about one model
    assert np.allclose((p_a + turned_b) / 2, p_ens, atol=1e-5)  # nor about the ensemble of probabilities
    mixed = embedding_average(images_b @ q, ensemble_b @ q)  # (480, 48)
    mixed_top1.append(classify_scores(mixed, test_labels)["top1"])
    changed.append(float((mixed.argmax(axis=1) != plain).mean()))
print(f"A's images against B's classes: top-1 {cross:.1%} (chance {chance:.1%})")
print(f"averaged probabilities: top-1 {top1['ensemble']:.1%} in every rotation of B")
print(
    f"averaged embeddings: top-1 {np.mean(mixed_top1):.1%} on average over the rotations, from "
    f"{min(mixed_top1):.1%} to {max(mixed_top1):.1%}; {np.mean(changed):.0%} of the answers change"
)
assert cross < min(top1["A"], top1["B"]) / 2 and min(changed) > 0

# %% [markdown]
# The embedding average is a lottery over rotations: sometimes above the probabilities'
# average, sometimes well below, and over a third of its answers depend on an arbitrary choice
# nothing in training made. (Where it does well, it is because its sum contains each member's
# own cosines i^(A)·w^(A) + i^(B)·w^(B), with the cross terms as noise on top.)
#
# Averaging each member's *own* scores is what survives any rotation of any member; the
# probabilities are those scores on one scale, each member's confidence set by its own learned
# temperature. (Averaging the logits would survive rotations too, but a logit is unbounded: a
# member with large margins could outvote the other by any amount, while a probability is at
# most 1.) That is what `miniclip eval` does with several runs.
#
# ## 5. On CIFAR-10
#
# The same three questions for real runs (each about twelve minutes on the CPU, lesson 09). A
# batch-size sweep at the same twelve epochs — the same images seen — and its comparison: the
# table above, the learning curves, and the final accuracy and first loss against N beside ln N:
#
#     miniclip train --batch-size 64 --out runs/bs64
#     miniclip train --batch-size 256 --out runs/bs256
#     miniclip train --batch-size 1024 --out runs/bs1024
#     miniclip compare runs/bs* --out sweep.png
#
# Prompts: `miniclip eval runs/bs256` prints zero-shot accuracy with the bare label, "a photo of
# a {}.", the 18-template ensemble and the unseen templates side by side. A model ensemble of two
# seeds (CIFAR-10's test split is the same 10,000 images whatever the seed):
#
#     miniclip train --seed 1 --out runs/bs256-seed1
#     miniclip eval runs/bs256 runs/bs256-seed1 --out runs/ensemble
#
# Batch 256 is the `cpu` configuration's own, so `runs/bs256` is the README's CPU run, whose
# measured figures the README gives.
#
# ## What you should take away
#
# * N pairs whose logits are all equal cost exactly ln N, whatever the targets; an untrained
#   model starts a little above (the spread of 14.3 × its random cosines); the targets set
#   where the loss can end (label-aware ones: (1/N) Σ_c n_c ln n_c), not where it starts;
# * a bigger batch gives each pair N − 1 negatives — but at a fixed learning rate and a fixed
#   number of images it also means fewer steps, and at the tiny scale the steps win; CLIP's
#   32,768 pays off where steps are plentiful and negatives all different;
# * a prompt ensemble averages a class's template embeddings and renormalises; on the shapes
#   the wording matters little, because unknown words all read as `<unk>`;
# * ensemble models by averaging their class probabilities: each embedding space is only
#   defined up to a rotation, so vectors from two runs cannot be mixed.

# %%
print("lesson 14 passed: N equal logits cost ln N, the first loss rebuilt by hand, the ensemble by hand")

# %% [markdown]
# ## Exercises
#
# Solutions, each checked by asserts: `lessons/solutions/14_batch_size_prompts_and_ensembles.py`.
#
# 1. *Write the backward before seeing it.* The prompt ensemble of section 3 for one class:
#    T template embeddings (T, d) → their mean m → $w = m / \|m\|$. Derive the gradient of the T
#    embeddings from dw (what does the normalisation do to the part of dw along w?), write it as
#    the `backward` of a small `Module`, and check it on five random unit vectors in 8
#    dimensions with `miniclip.teaching.gradcheck`. Which direction do the gradients never
#    point in, and why do all five templates get the same one?
# 2. *Derive, then check.* Show that a row's spread is about $\sigma^2 / 2$ for small logits
#    (σ the standard deviation of the row's logits; expand $e^{d}$ to second order around the
#    row's mean). Check it on rows of 64 random logits at σ = 0.5, 0.1 and 0.02: how fast does
#    the ratio spread / (σ²/2) approach 1?
# 3. *Predict, then run.* With labels drawn uniformly from 40 classes, how many distinct
#    classes other than an image's own does a batch of N hold, on average? Derive the formula,
#    predict the numbers for N = 16, 64 and 256, and compare them with a simulation and with
#    the table of section 1.
