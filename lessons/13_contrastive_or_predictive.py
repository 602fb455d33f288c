# %% [markdown]
# # Lesson 13 — Contrastive or predictive?
#
# CLIP's loss asks an image to pick its own caption out of the batch. The obvious alternative
# is to ask the image to *predict* its caption: read the words off the picture. Radford et al.
# (2021, §2.3 and Fig. 2) tried that first. A language model writing the caption word by word
# learned zero-shot ImageNet slowly; predicting only the caption's **bag of words** (order
# dropped) was three times as efficient; and the contrastive objective, with the same
# bag-of-words text side, was four times as efficient again — it reached the same zero-shot
# accuracy with a quarter of the images. Their reason: a caption could be written in many ways,
# and a predictive loss must get the exact words right, where the contrastive one only has to
# tell which caption of the batch belongs to which image.
#
# `miniclip.model.predictive` is that bag-of-words baseline: the same image encoder, a linear layer
# from its feature to the vocabulary, and a softmax cross-entropy against the caption's word
# counts. This lesson puts the two losses side by side on four image–caption pairs, by hand,
# then the two ways they classify zero-shot, and then trains both on the tiny shapes and
# measures their learning curves, as `miniclip compare` does for CIFAR-10 runs.
#
# The code: `miniclip/model/predictive.py` and `miniclip/evaluation/compare.py`.

# %%
import math

import numpy as np

from miniclip import set_device
from miniclip.data import UNSEEN_TEMPLATES
from miniclip.evaluation.compare import efficiency, format_comparison, learning_curve, plot_learning_curves
from miniclip.evaluation.trained_run import load_run
from miniclip.evaluation.zeroshot import class_vectors, class_word_targets, encode_images, zero_shot
from miniclip.layers.contrastive_loss import ContrastiveLoss
from miniclip.layers.logit_scale import INIT
from miniclip.layers.softmax import softmax
from miniclip.model.predictive import BagOfWordsPredictor, PredictiveLoss, predictive_class_scores, word_count_targets
from miniclip.model.tokenizer import SPECIALS, Tokenizer
from miniclip.teaching.lesson_output import figure_folder, scratch_folder, show
from miniclip.teaching.lesson_runs import tiny_run  # trained once, reused by 11–14
from miniclip.training.configs import named_config
from miniclip.training.loop import Trainer

set_device("cpu")  # lessons run on NumPy; on the GPU the same code runs on CuPy arrays
np.set_printoptions(precision=3, suppress=True, linewidth=120)


# %% [markdown]
# ## 1. Four pairs, two losses
#
# Four images and their captions. The image encoder's outputs are hand-picked 3-d features
# whose axes we may read as "red", "dog" and "cat" (an encoder's features mean nothing so
# plain, but the numbers are easier to follow). For the contrastive loss the captions need
# embeddings too: the same three axes, written by hand.

# %%
captions = ["a red cat", "a blue dog", "a red dog", "a green cat"]
N = len(captions)
features = np.array(  # (4, 3) the image encoder's output for the four images: "red", "dog", "cat"
    [
        [0.9, 0.1, 0.8],  # a red cat
        [0.1, 0.9, 0.2],  # a blue dog
        [0.8, 0.7, 0.1],  # a red dog
        [0.2, 0.1, 0.9],  # a green cat
    ]
)
text_features = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])  # (4, 3)

# %% [markdown]
# **The contrastive loss, by hand** (lessons 02 and 04). Normalise both sides, take every
# caption's cosine with every image, `C = T Iᵀ` (captions on the rows, as everywhere in
# miniclip), multiply by the logit scale e^s (CLIP's starting value 1/0.07 ≈ 14.3) and take
# the softmax both ways: along each row a caption's distribution over the four images
# (text→image), down each column an image's distribution over the four captions
# (image→text). The loss is the mean of the two cross-entropies against the identity, its
# gradient
#
# $$\frac{\partial L}{\partial z} = \frac{(P_{\mathrm{rows}} - Y) + (P_{\mathrm{cols}} - Y)}{2N}$$

# %%
images = features / np.linalg.norm(features, axis=1, keepdims=True)  # (4, 3) unit rows: I
texts = text_features / np.linalg.norm(text_features, axis=1, keepdims=True)  # (4, 3) unit rows: T
cosines = texts @ images.T  # (4, 4) captions × images
scale = math.exp(INIT)  # e^s = 1/0.07
logits = scale * cosines  # (4, 4)
Y = np.eye(N)  # (4, 4) pair i is caption i with image i
p_rows = softmax(logits, axis=1)  # (4, 4) text→image: each row sums to 1
p_cols = softmax(logits, axis=0)  # (4, 4) image→text: each column sums to 1
contrastive_by_hand = (-np.log(np.diag(p_rows)).mean() - np.log(np.diag(p_cols)).mean()) / 2
dlogits_by_hand = ((p_rows - Y) + (p_cols - Y)) / (2 * N)  # (4, 4)
print("cosines, captions (rows) × images (columns):\n", cosines)
print("image→text: each image's probabilities over the captions (columns):\n", p_cols)
print(f"contrastive loss {contrastive_by_hand:.4f}  (ln 4 = {math.log(N):.4f} would be a model that cannot tell)")
contrastive = ContrastiveLoss()
assert abs(float(contrastive(logits)) - contrastive_by_hand) < 1e-12
assert np.allclose(contrastive.backward(), dlogits_by_hand, rtol=0, atol=1e-15)
assert (np.argmax(cosines, axis=0) == np.arange(N)).all() and (np.argmax(cosines, axis=1) == np.arange(N)).all()

# %% [markdown]
# What the contrastive loss asks of an image is *relative*: be closer to your caption than
# to the other three in the batch. Two consequences you can check on these numbers:
#
# * whatever every caption shares cannot help an image choose. Add the same vector to every
#   caption embedding (the word "a" that all four contain, say): each image's four logits all
#   move by the same amount, and its softmax over the captions does not change;
# * it has no floor above zero (with distinct captions: lesson 08's duplicates give it one).
#   Every image here is already nearest its own caption, so a sharper softmax (a larger logit
#   scale, which training learns) drives the loss towards 0, however small the margins.

# %%
shift = np.array([0.3, -0.2, 0.5])  # (3,) added to every caption embedding
shifted_cols = softmax(scale * (texts + shift) @ images.T, axis=0)  # (4, 4)
assert np.allclose(shifted_cols, p_cols)  # image j's logits all moved by scale · (shift · i_j)
print("the same vector added to every caption: each image's probabilities over the captions are unchanged")

# %% [markdown]
# **The predictive loss, by hand.** Now the same four images, but no text encoder: a linear
# layer turns each feature into one logit per token of the vocabulary, `z = f W + b`, and the
# target is the caption's bag of words `q`: its word counts, divided by their sum. The
# vocabulary is a real `Tokenizer` built from the four captions: the four special tokens and
# six words. The specials are not words of the caption and get no share of `q` (every caption
# has one `<start>` and one `<end>`: predicting them says nothing about the image).

# %%
tokenizer = Tokenizer.build(captions)
V = tokenizer.vocab_size
ids, mask = tokenizer.encode_batch(captions, 5)  # (4, 5) each: <start> a word word <end>
print(f"vocabulary of {V} tokens: {tokenizer.tokens}")
print("token ids:\n", ids)
counts = np.zeros((N, V))  # (4, 10)
for n in range(N):
    for token in ids[n][mask[n] == 1]:
        if token >= len(SPECIALS):  # a word, not <pad> <unk> <start> <end>
            counts[n, token] += 1
q = counts / counts.sum(axis=1, keepdims=True)  # (4, 10) each row sums to 1
print("targets q (rows: captions; columns: tokens):\n", q)
assert np.allclose(q, word_count_targets(ids, mask, V, dtype=np.float64))

# %% [markdown]
# The predictor, set by hand to what a little training might give it: the "red", "dog" and
# "cat" axes raise the logits of those words, and the bias raises "a", the word of every
# caption, which needs no image at all. Nothing in these features says "blue" or "green".
# Then the softmax over the ten tokens, the cross-entropy and its gradient, which the linear
# layer carries back to the features:
#
# $$L = -\frac{1}{N} \sum_n \sum_v q_{nv} \log p_{nv}, \quad \frac{\partial L}{\partial z} = \frac{p - q}{N}$$

# %%
word = tokenizer.ids  # word → token id
predictor = BagOfWordsPredictor(3, V, rng=np.random.default_rng(0), dtype=np.float64)
W = np.zeros((3, V))  # (3, 10)
W[0, word["red"]], W[1, word["dog"]], W[2, word["cat"]] = 3.0, 3.0, 3.0
b = np.zeros(V)  # (10,)
b[word["a"]] = 2.0
predictor.linear.weight.data[...], predictor.linear.bias.data[...] = W, b
z = features @ W + b  # (4, 10) word logits
p = np.exp(z - z.max(axis=1, keepdims=True))
p /= p.sum(axis=1, keepdims=True)  # (4, 10) softmax over the vocabulary
predictive_by_hand = -(q * np.log(p)).sum() / N
dz_by_hand = (p - q) / N  # (4, 10)
print("predicted word probabilities p:\n", p)
print(f"predictive loss {predictive_by_hand:.4f}")
predictive = PredictiveLoss()
assert np.allclose(predictor(features), z)
assert abs(float(predictive(z, q)) - predictive_by_hand) < 1e-12
assert np.allclose(predictive.backward(), dz_by_hand, rtol=0, atol=1e-15)
assert np.allclose(predictor.backward(dz_by_hand), dz_by_hand @ W.T)  # d/d(features) (4, 3)

# %% [markdown]
# What the predictive loss asks of an image is *absolute*: put probability on the exact words
# of your caption, a third on each of "a", "red", "cat". Every image is asked to predict "a"
# — a third of every target goes to a word that tells the images nothing about each other —
# and "blue" and "green", which these features cannot see, cost loss that no predictor on
# them can remove. The gradient shows both: the column of "a" pushes every image the same way
# and the columns of "blue" and "green" ask for probability the features cannot give.
#
# And it has a floor. Each image's term is the cross-entropy
#
# $$H(q_n, p_n) = H(q_n) + \mathrm{KL}(q_n \| p_n)$$
#
# the entropy of the target, which no model can change, plus a divergence ≥ 0 that is zero
# only when $p_n = q_n$. Three equally likely words: $H(q_n) = \ln 3$, here for every caption.

# %%
print(f"dL/dz, column 'a': {dz_by_hand[:, word['a']]},  'blue': {dz_by_hand[:, word['blue']]}")
entropy = -np.array([(row[row > 0] * np.log(row[row > 0])).sum() for row in q])  # (4,) H(q_n)
kl = np.array([(q[n] * np.log(np.where(q[n] > 0, q[n], 1) / p[n])).sum() for n in range(N)])  # (4,) KL(q_n ‖ p_n)
print(f"H(q_n) = {entropy}  (ln 3 = {math.log(3):.4f});  KL(q_n ‖ p_n) = {kl}")
print(f"loss {predictive_by_hand:.4f} = floor {entropy.mean():.4f} + what a predictor can still learn {kl.mean():.4f}")
assert np.allclose(entropy, math.log(3)) and (kl >= 0).all()
assert abs(predictive_by_hand - (entropy.mean() + kl.mean())) < 1e-12
best = np.where(q > 0, np.log(np.where(q > 0, q, 1)), -40.0)  # (4, 10) logits whose softmax is q (to 1e-17)
assert abs(float(PredictiveLoss()(best, q)) - math.log(3)) < 1e-12  # the best any model can do

# %% [markdown]
# The two floors side by side. Scale up the contrastive logits (a sharper temperature) and its
# loss goes to zero; scale up the predictive logits and its loss does *not*: a sharper softmax
# bets more on the single most likely word, while the target wants three at a third each. The
# contrastive optimum lies at infinite confidence (training clamps the scale at 100); the
# predictive optimum is a particular, finite distribution, and its loss there is ln 3.

# %%
print(f"{'logits × k':>10} {'contrastive':>12} {'predictive':>11}")
for k in (0.25, 1.0, 4.0, 16.0):
    print(f"{k:10g} {float(ContrastiveLoss()(k * logits)):12.4f} {float(PredictiveLoss()(k * z, q)):11.4f}")
sharp = [float(ContrastiveLoss()(k * logits)) for k in (1.0, 4.0, 16.0)]
assert sharp[0] > sharp[1] > sharp[2] and sharp[2] < 1e-3
assert all(float(PredictiveLoss()(k * z, q)) > math.log(3) for k in (0.25, 1.0, 4.0, 16.0))

# %% [markdown]
# ## 2. Zero-shot from each: the same formula, different vectors
#
# Both models classify through the captions. Write every class name into the template, turn
# each prompt into a class vector, and give each image the class of the highest dot product:
# the contrastive model's score is a cosine, with $w_c$ the prompt's embedding (unit length);
# the predictive model's an expected log-probability, with $q_c$ the prompt's bag of words:
#
# $$s_{nc}^{\mathrm{contrastive}} = i_n \cdot w_c, \quad s_{nc}^{\mathrm{predictive}} = \log p_n \cdot q_c$$
#
# `class_vectors` builds `w_c` or `q_c`, whichever the model needs, and `zero_shot` takes the
# dot products. Four classes, the four captions' names, with the template "a {}":

# %%
class_names = ["red cat", "blue dog", "red dog", "green cat"]
labels = np.arange(N)  # image n shows class n
q_classes = class_word_targets(tokenizer, class_names, ["a {}"], 5, V, dtype=np.float64)  # (4, 10)
assert np.allclose(q_classes, q)  # "a red cat" again: the prompts are the captions
log_p = np.log(p)  # (4, 10) what PredictiveModel.encode_image gives
scores = {"contrastive": images @ texts.T, "predictive": log_p @ q_classes.T}  # (4, 4) images × classes each
assert np.allclose(scores["predictive"], predictive_class_scores(log_p, q_classes))
for name, vectors, x in (("contrastive", texts, images), ("predictive", q_classes, log_p)):
    result = zero_shot(x, labels, vectors)
    print(f"{name}: scores, images (rows) × classes\n{scores[name]}\n  predictions {result['predictions']}")
    assert (result["predictions"] == np.argmax(scores[name], axis=1)).all()

# %% [markdown]
# The contrastive model gets all four; the predictive one calls the blue dog a red dog and
# the green cat a red cat: its features hold no "blue" or "green", so the only colour it can
# score is red — the gap its loss's KL term was showing.
#
# **Prompts change nothing for the predictive model.** The template's words are the same for
# every class, so they add the same amount to all of an image's scores; what is left is the
# sum of the log-probabilities of the class's own words, $S_{nc} = \sum_{w \in c} \log p_{nw}$, times a
# weight `α` that depends only on the caption's length. A prompt ensemble averages the `q`'s,
# so the ranking of the classes is the same for any template, or any set of them — as long as
# every class name has as many words as every other, as here and on CIFAR-10 and the shapes.
# (With "cat" beside "tabby cat" a template's words would weigh differently in the two
# captions, and a template could change the ranking after all.) (The
# contrastive text encoder reads each wording its own way, so there a template can matter;
# the predictive model only counts words. Here "photo" and "of" are not in the four captions'
# vocabulary: they become `<unk>`, which the targets leave out.)

# %%
two = ["a {}", "a photo of a {}"]
q_two = class_word_targets(tokenizer, class_names, two, 8, V, dtype=np.float64)  # (4, 10) mean of two targets
own_words = np.array([[sum(log_p[n, word[w]] for w in c.split()) for c in class_names] for n in range(N)])  # S (4, 4)
alpha = (1 / 3 + 1 / 4) / 2  # "a red cat": each class word 1/3; "a <unk> <unk> a red cat": 1/4 (unk left out)
rest = log_p @ q_two.T - alpha * own_words  # (4, 4) what the template words add
print(f"with {two}: the template's share of each image's scores (one value per row):\n", rest)
assert np.allclose(rest, rest[:, :1])  # the same for every class
assert (np.argmax(log_p @ q_two.T, axis=1) == np.argmax(scores["predictive"], axis=1)).all()

# %% [markdown]
# ## 3. The measured curves on the shapes
#
# Now both objectives on real (if tiny) data: the named configuration `tiny` of lessons 09–12
# (2048 shapes, batches of 64, four epochs, a two-stage CNN), once as CLIP and once with
# `objective="predictive"`, which drops the text encoder and puts the bag-of-words predictor
# on the image encoder. The seed is the same, and `build_model` draws the image encoder's
# weights first for either objective, so both runs start from the *same* image encoder — and
# see the same images in the same order. Only the objective differs. Two trainers built and
# not run show the two starting points; `tiny_run` trains each run once (the contrastive one is
# the plain `tiny` run of lessons 11, 12 and 14, found there when `MINICLIP_LESSON_OUT` is
# shared) and `load_run` reads each back.

# %%
trainers = {}  # the two starting points, never trained
for objective in ("contrastive", "predictive"):
    cfg = named_config("tiny", out_dir=str(scratch_folder(f"13_start_{objective}")), model={"objective": objective})
    trainers[objective] = Trainer(cfg, show_progress=False)
start = {name: t.model.image.parameters() for name, t in trainers.items()}  # before any step
assert list(start["contrastive"]) == list(start["predictive"])
assert all(np.array_equal(start["contrastive"][k].data, start["predictive"][k].data) for k in start["contrastive"])
for name, t in trainers.items():
    params = sum(p.data.size for p in t.model.parameters().values())
    print(f"{name}: {type(t.model).__name__}, {params:,} parameters, the image encoder's the same at the start")
folders = {"contrastive": tiny_run(), "predictive": tiny_run("13_shapes_predictive", model={"objective": "predictive"})}
trained = {name: load_run(folder) for name, folder in folders.items()}  # each: checkpoint, model, normalisation
metrics = {name: run.checkpoint.metrics for name, run in trained.items()}  # one dict per epoch, as logged

# %% [markdown]
# **The learning curves.** `learning_curve` reads a run's checkpoint: the zero-shot top-1 of
# its prompt ensemble after every epoch, against the training images seen by then. The same
# numbers `miniclip compare` prints and draws. Chance is 1/48 ≈ 2.1 %.

# %%
curves = [learning_curve(folders[name], label=name) for name in ("contrastive", "predictive")]
chance = 1 / trainers["contrastive"].dataset.num_classes
print(f"zero-shot top-1 ({curves[0].templates}) and the epoch's mean training loss")
print(f"{'images seen':>11} {'contrastive':>12} {'predictive':>11} {'loss, contrastive':>18} {'predictive':>11}")
for e, seen in enumerate(curves[0].images_seen):
    losses = [metrics[curve.label][e]["train_loss"] for curve in curves]
    print(f"{int(seen):11,} {curves[0].top1[e]:12.1%} {curves[1].top1[e]:11.1%} {losses[0]:18.3f} {losses[1]:11.3f}")
print()
print(format_comparison(curves))
gain = efficiency(curves[0], curves[1])
assert np.array_equal(curves[0].images_seen, curves[1].images_seen)  # same data, same batches
assert all(curve.top1[-1] > 2 * chance for curve in curves)
assert gain.ratio >= 1 and gain.accuracy == min(curve.top1[-1] for curve in curves)
show(
    plot_learning_curves(curves, figure_folder() / "13_learning_curves.png", title="tiny shapes"),
    "13_learning_curves.png",
)

# %% [markdown]
# After one epoch the two are level (about 7 %); from the second on the contrastive run pulls
# ahead while the predictive one flattens, and the contrastive one reached the predictive
# run's final accuracy with about half the images: the direction of the paper's Figure 2,
# at a ratio of about 2 rather than 4 — from one seed of a toy model, and with a warm-up +
# cosine schedule, so a point part-way through a run is not where a shorter run would end
# (`miniclip.evaluation.compare`).
# Read it as what these two runs show, not as a law.
#
# The first losses are each objective's "I know nothing": the contrastive one near ln 64 (a
# caption equally likely to go with any of the 64 images; a little above it, since the random
# cosines at scale 14.3 are not all equal), the predictive one near ln V (every one of the
# vocabulary's tokens equally likely).

# %%
V_shapes = trainers["predictive"].model.vocab_size
for curve, ln in zip(curves, (math.log(64), math.log(V_shapes)), strict=True):
    print(f"{curve.label}: loss of the first step {curve.first_loss:.3f}, beside {ln:.3f}")
assert abs(curves[1].first_loss - math.log(V_shapes)) < 0.5  # a fresh predictor's logits are small

# %% [markdown]
# **Why the predictive loss stays high.** In the table above the predictive run's loss levels
# off near 2.5 while the contrastive one keeps falling. The floor of section 1 says why. A shapes
# caption is a class name in one of five templates ("a {}.", "a photo of a {}.", ...), drawn
# at random: the image cannot know which, so the best it can predict is the template-averaged
# bag of words $\bar{q}_c$ (exactly `class_word_targets` with the training templates), and its
# expected loss is
#
# $$H(\bar{q}_c, p) = H(\bar{q}_c) + \mathrm{KL}(\bar{q}_c \| p) \geq H(\bar{q}_c)$$
#
# On the test images:

# %%
p_run = trained["predictive"]
model, tokenizer, L = p_run.checkpoint.model, p_run.checkpoint.tokenizer, p_run.config.context_length
dataset = trainers["predictive"].dataset  # the run's shapes (the same seed draws the same images)
log_probs = encode_images(model, dataset.test_images, p_run.normalize).astype(np.float64)  # (N, V) log p
q_bar = class_word_targets(tokenizer, dataset.class_names, dataset.train_templates, L, V_shapes, dtype=np.float64)
y = dataset.test_labels
expected = -predictive_class_scores(log_probs, q_bar)[np.arange(len(y)), y]  # (N,) H(q̄_y, p_n)
floor = -(q_bar * np.log(np.where(q_bar > 0, q_bar, 1))).sum(axis=1)[y]  # (N,) H(q̄_y)
top = np.argsort(-q_bar[0])[:8]
print(f"q̄ of '{dataset.class_names[0]}':", ", ".join(f"{tokenizer.tokens[v]} {q_bar[0, v]:.3f}" for v in top))
gap = expected.mean() - floor.mean()
print(f"test images: expected loss {expected.mean():.3f} = floor {floor.mean():.3f} + KL {gap:.3f}")
print(f"last epoch's training loss {metrics['predictive'][-1]['train_loss']:.3f}")
assert (expected >= floor - 1e-6).all()  # Gibbs' inequality, image by image

# %% [markdown]
# Most of the loss is the floor, which no image can lower: even a model that knew every
# image's class would have to spread its probability over the class's three words and the
# templates' words ("a", "of", "photo", "there", ...) in their average shares. Only the KL
# term is left to learn. The template words cost a constant, not progress — they are the same
# for every image, so the predictor's bias can carry them — and that is the point about these
# captions: when a caption is a class name in a template, the only image-dependent part of the
# predictive loss is a cross-entropy over the class's three words, size, colour and shape. **On class-name captions
# the predictive objective is a supervised classifier over the class words** (three labels
# sharing one softmax), and its zero-shot score `log p · q_c` is that classifier's own
# decision. So the template sets (one template, the five of training, the eight never
# trained on) give it exactly the same predictions, as section 2 said they must:

# %%
predicted = {}
for name, templates in {"one": ["a {}."], "train": dataset.train_templates, "unseen": UNSEEN_TEMPLATES}.items():
    q_set = class_word_targets(tokenizer, dataset.class_names, templates, L, V_shapes, dtype=np.float64)
    predicted[name] = np.argmax(log_probs @ q_set.T, axis=1)  # (N,)
accuracies = [f"{(v == y).mean():.1%}" for v in predicted.values()]
print("top-1 with one template, the training five, the unseen eight:", accuracies)
assert all(np.array_equal(v, predicted["train"]) for v in predicted.values())
assert np.allclose(class_vectors(model, tokenizer, dataset.class_names, dataset.train_templates, L), q_bar, atol=1e-6)

# %% [markdown]
# A classifier learns what its training labels make likely, and the shapes' training labels
# leave 8 colour–shape combinations out (lesson 08): "green" never comes with "cross". The
# predictor learns that too — a green image makes "cross" unlikely — and since after four
# epochs the tiny CNN sees colour far better than shape (lesson 10), the colour wins:

# %%
heldout = dataset.heldout_mask(y)  # (N,) the 80 test images of held-out classes
c_run = trained["contrastive"]
contrastive_model = c_run.checkpoint.model
c_images = encode_images(contrastive_model, dataset.test_images, c_run.normalize)  # (N, d)
c_classes = class_vectors(
    contrastive_model, c_run.checkpoint.tokenizer, dataset.class_names, dataset.train_templates, L
)
c_predicted = zero_shot(c_images, y, c_classes)["predictions"]  # (N,)
for name, guess in (("contrastive", c_predicted), ("predictive", predicted["train"])):
    into_heldout = int(np.isin(guess, dataset.heldout_classes).sum())
    print(
        f"{name:<12} held-out classes: {(guess == y)[heldout].mean():6.1%} right; "
        f"seen classes: {(guess == y)[~heldout].mean():6.1%};  {into_heldout} of 480 images put into a held-out class"
    )

# %% [markdown]
# In this run the predictive model never names a held-out class at all, while CLIP's text
# encoder embeds "small green cross", a caption it never read, close enough to the green
# crosses to get many of them right. Both objectives see the same captions; the contrastive one
# only had to keep the batch's captions apart, and did not learn that green crosses cannot exist.
# Here, with captions that *are* labels, the predictive objective loses less to "the exact
# words" than on web captions — the template words are a constant toll — which is plausibly
# one reason the ratio is smaller than the paper's: its captions were written by people, in
# endless ways, and the words of a caption were far harder to guess than three class words.
#
# (Images seen is the paper's axis, not compute: the contrastive run also trains a text
# encoder, so each of its steps costs more.)

# %% [markdown]
# ## 4. On CIFAR-10
#
# The same comparison on CIFAR-10, with the `cpu` configuration for both runs:
#
#     miniclip train --out runs/cifar10-cpu                                   # contrastive (the default)
#     miniclip train --objective predictive --out runs/cifar10-cpu-predictive # the bag-of-words baseline
#     miniclip compare runs/cifar10-cpu runs/cifar10-cpu-predictive --out curves.png
#
# `miniclip compare` prints the table above and the efficiency ratio, and draws the curves
# against images seen on a log axis; `miniclip eval` measures a predictive run too (zero-shot,
# the confusion matrix, the linear probe), and says why it skips the retrieval that needs a
# text encoder. The README holds the measured CIFAR-10 curves of the two objectives.
#
# ## What you should take away
#
# * the contrastive loss is relative — an image need only be closer to its caption than to
#   the batch's others; what all captions share cannot matter, and its loss goes to 0 as the
#   softmax sharpens;
# * the predictive loss is absolute — an image must put probability on its caption's exact
#   words, "a" and the template's words included, so its loss cannot fall below the targets'
#   entropy H(q), and its gradient is (p − q)/N;
# * both classify zero-shot by one dot product per class: a cosine with the prompt's
#   embedding, or log p · q_c with the prompt's bag of words; for the predictive model the
#   template words add a constant (class names of equal length), so prompts and ensembles
#   cannot change its predictions;
# * on the tiny shapes the contrastive objective learned faster per image, about twice, in
#   the paper's direction; on class-name captions the predictive objective is a classifier
#   over the class words, and it learns the gaps in its training labels with them.

# %%
print("lesson 13 passed: both losses by hand = the package's, the floor H(q), both objectives beat chance")

# %% [markdown]
# ## Exercises
#
# Solutions, each checked by asserts: `lessons/solutions/13_contrastive_or_predictive.py`.
#
# 1. *Write the backward before seeing it.* The predictive head of section 1 as one `Module`:
#    features f (N, 3) → $z = f W + b$ → softmax cross-entropy against the fixed targets q, a
#    0-d loss. Derive $\partial L / \partial z$ (use $\sum_v q_{nv} = 1$), then the gradients of f, W and b,
#    write them as its `backward`, and check it at the lesson's W, b and features with
#    `miniclip.teaching.gradcheck`; compare with `PredictiveLoss.backward()` carried through W.
# 2. *Derive, then check.* The caption "a red red cat": what is its target q, and the floor
#    H(q) under the predictive loss? Is it above or below the ln 3 of "a red cat"? Check with
#    `word_count_targets`.
# 3. *Predict, then run.* Training clamps the logit scale at 100, seven times CLIP's start.
#    Before running: at scale 100 is the contrastive loss of the four pairs above or below
#    0.001? And the predictive loss with its logits z scaled by the same factor 7: above or
#    below ln 3, and above or below its value at z?
