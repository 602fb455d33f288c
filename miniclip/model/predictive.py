"""The predictive objective: CLIP's baseline, which guesses the caption's words from the image.

Before settling on the contrastive loss, Radford et al. (2021, §2.3 and Fig. 2) tried to make
the image encoder *predict* its caption. A transformer language model that writes the caption
out word by word learned zero-shot ImageNet slowly; predicting only the caption's bag of words
(after Joulin et al., 2016), word order dropped, was three times as efficient; and swapping
that prediction for the contrastive objective, with the same bag-of-words text side, made it
four times as efficient again. The reason they give: a predictive objective must get the exact
words of the caption right, of which there are many plausible ones for any image, while the
contrastive objective only has to tell which caption of the batch goes with which image.

This module is the bag-of-words prediction baseline, so that the two objectives can be compared
on the same data and encoders: the image feature goes through one linear layer over the
vocabulary, and a softmax cross-entropy is taken against the caption's normalised word counts.

For image ``n`` with feature ``f_n`` (D,) and caption word counts ``c_{n,v}``::

    z_n   = f_n W + b                         logits over the V tokens, (V,)
    p_n   = softmax(z_n)                       the predicted word distribution, (V,)
    q_n,v = c_{n,v} / Σ_u c_{n,u}              the caption's bag of words, sums to 1, (V,)
    L     = −(1/N) Σ_n Σ_v q_{n,v} log p_{n,v}

Each image's term of ``L`` is the cross-entropy ``H(q_n, p_n) = H(q_n) + KL(q_n ‖ p_n)``, so the loss is
at least the mean entropy of the targets, and equals it only when ``p_n = q_n``. A caption of
several distinct words can never be predicted with certainty: the model is asked to spread
its probability over the caption's words in proportion to how often they occur.

The gradient is the familiar softmax one. With ``log p_{n,v} = z_{n,v} − log Σ_u e^{z_{n,u}}``::

    ∂L/∂z_{n,v} = (p_{n,v} · Σ_u q_{n,u} − q_{n,v}) / N  =  (p_{n,v} − q_{n,v}) / N

(the second form when each row of ``q`` sums to 1, as :func:`word_count_targets` makes them;
the backward uses the first, so it stays exact for any targets), and the linear layer's
backward carries it to ``W``, ``b`` and the features.

Which tokens count. The special tokens of :mod:`miniclip.model.tokenizer` (``<pad>``, ``<start>``,
``<end>``) are not words of the caption: every caption has exactly one start and one end, so
counting them would put the same two tokens into every target, a share of the loss that says
nothing about the image. ``<unk>`` is left out as well, by default: it stands for *every* word
outside the vocabulary at once, so predicting it would teach the image encoder nothing about
the image, and at zero-shot time all class names that the vocabulary lacks would share it.
(A caption of unknown words only then has no word left, and raises.) Pass
``ignore=(PAD, START, END)`` to count ``<unk>`` anyway.

Zero-shot classification works as with the contrastive model, through the captions: class
``c``'s prompts are turned into targets ``q_c`` as in training, and image ``n`` scores
``s_{n,c} = Σ_v q_{c,v} log p_{n,v}``, the expected log-probability of a word of class ``c``'s
caption (:func:`predictive_class_scores`, :func:`miniclip.evaluation.zeroshot.class_word_targets`).

The features are the image encoder's output, ``CLIP.image(images)`` (N, d), before the L2
normalisation of the contrastive head: the predictor replaces that head, and its gradient with
respect to the features is what ``image.backward`` takes.

Lesson 13 derives both losses by hand and trains the two objectives side by side.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from miniclip.backend import get_array_module, scatter_add, to_host
from miniclip.layers.embedding import check_token_ids
from miniclip.layers.linear import Linear
from miniclip.layers.softmax import softmax_and_log
from miniclip.model.tokenizer import END, PAD, START, UNK
from miniclip.module import Module

IGNORED = (PAD, UNK, START, END)  # token ids that are not counted as words of a caption (see the module docstring)


def word_count_targets(
    ids: Any, mask: Any, vocab_size: int, ignore: Sequence[int] = IGNORED, *, dtype: Any = np.float32
) -> Any:
    """Each caption's bag of words (N, V): its word counts divided by their sum, the ``ignore`` tokens left out.

    ``ids`` (N, L) and ``mask`` (N, L) are what :meth:`Tokenizer.encode_batch` gives (the mask 1
    on real tokens); both on the same device. The counts are a scatter-add of the kept tokens
    into row ``n``, so a word that occurs twice gets twice the weight::

        "a dog and a cat"   →   q[a] = 2/5, q[dog] = q[and] = q[cat] = 1/5

    A caption with no word left (only special tokens) raises ``ValueError``: its targets would
    be 0/0. So does an id outside ``[0, vocab_size)``. Both checks are read back from the
    device as one pair of booleans, the function's only synchronisation: build the targets
    once for a caption table, as the trainer tokenises it once, and index rows of them per step.
    """
    xp = get_array_module(ids)
    if ids.ndim != 2 or tuple(mask.shape) != tuple(ids.shape):
        raise ValueError(
            f"need token ids (N, L) and a mask of the same shape, got {tuple(ids.shape)} and {tuple(mask.shape)}"
        )
    if not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"token ids must be integers, got dtype {ids.dtype}")
    if vocab_size < 1:
        raise ValueError(f"vocab_size must be >= 1, got {vocab_size}")
    if get_array_module(mask) is not xp:
        raise ValueError("token ids and mask must be on the same device")
    if xp is np:
        check_token_ids(ids, vocab_size)  # host ids: checked before np.add.at would raise an IndexError
    n = ids.shape[0]
    keep = mask != 0  # (N, L) real tokens
    for token in ignore:
        keep = keep & (ids != token)  # (N, L) real tokens that are words
    valid = (ids >= 0) & (ids < vocab_size)  # (N, L); device ids are checked below, after the one read back
    # Row n's counts live at n·V … n·V + V − 1 of one flat (N·V,) array: one scatter-add does every row.
    flat = (xp.arange(n)[:, None] * vocab_size + xp.where(valid, ids, PAD)).reshape(-1)  # (N·L,) all in range
    counts = xp.zeros(n * vocab_size, dtype=dtype)  # (N·V,)
    scatter_add(counts, flat, keep.reshape(-1).astype(dtype))
    counts = counts.reshape(n, vocab_size)  # (N, V)
    total = counts.sum(axis=1, keepdims=True)  # (N, 1) words per caption
    out_of_range, empty = to_host(xp.stack([~valid.all(), (total == 0).any()]))  # the one read back
    if out_of_range:
        check_token_ids(to_host(ids), vocab_size)  # raises, with the range found
    if empty:
        rows = np.flatnonzero(to_host(total[:, 0]) == 0)
        raise ValueError(
            f"captions {rows[:10].tolist()} have no word left once the tokens {list(ignore)} are left out "
            f"(special tokens only): a bag of words needs at least one word"
        )
    return counts / total  # (N, V), each row sums to 1


class BagOfWordsPredictor(Module):
    """``logits = features @ W + b``: one linear layer from the image feature to the vocabulary."""

    def __init__(self, embed_dim: int, vocab_size: int, *, rng: np.random.Generator, dtype: Any = np.float32) -> None:
        self.linear = Linear(embed_dim, vocab_size, rng=rng, dtype=dtype)  # W (D, V), b (V,)

    @property
    def vocab_size(self) -> int:
        """Logits per image: the tokens the predictor spreads its probability over."""
        return int(self.linear.weight.data.shape[1])

    def forward(self, features: Any) -> Any:
        """Word logits (N, V) from image features (N, D)."""
        if features.ndim != 2:
            raise ValueError(f"BagOfWordsPredictor expects image features (N, D), got shape {tuple(features.shape)}")
        return self.linear(features)  # (N, V)

    def backward(self, dlogits: Any) -> Any:
        """Add into ``linear.weight.grad`` and ``linear.bias.grad``; return d/d(features) (N, D)."""
        return self.linear.backward(dlogits)  # (N, D)


class PredictiveLoss(Module):
    """Softmax cross-entropy of word logits (N, V) against bag-of-words targets (N, V), averaged over N."""

    def __init__(self) -> None:
        self.probs: Any = None  # (N, V) softmax of the logits, each row sums to 1
        self.targets: Any = None  # (N, V)

    def forward(self, logits: Any, targets: Any) -> Any:
        """Return the loss as a 0-d array (no device synchronisation)."""
        if logits.ndim != 2 or logits.shape[0] == 0:
            raise ValueError(f"predictive loss needs logits (N, V) with N >= 1, got shape {tuple(logits.shape)}")
        if tuple(targets.shape) != tuple(logits.shape):
            raise ValueError(f"targets must have the logits' shape {tuple(logits.shape)}, got {tuple(targets.shape)}")
        if get_array_module(targets) is not get_array_module(logits):
            raise ValueError("logits and targets must be on the same device")
        self.targets = targets
        self.probs, log_probs = softmax_and_log(logits, axis=1)  # (N, V) each
        return -(targets * log_probs).sum() / logits.shape[0]

    def backward(self, dloss: Any = 1.0) -> Any:
        """d(loss)/d(logits) (N, V): (p · rowsum(q) − q) / N, which is (p − q) / N, times ``dloss``."""
        self._require_forward(self.probs)
        xp = get_array_module(self.probs)
        scale = xp.asarray(dloss, dtype=self.probs.dtype) / self.probs.shape[0]  # keeps float32 float32
        q = self.targets
        return (self.probs * q.sum(axis=1, keepdims=True) - q) * scale  # (N, V)


def predictive_class_scores(log_probs: Any, class_targets: Any) -> Any:
    """Scores (N, K): ``s[n, c] = Σ_v q[c, v] · log p[n, v]``, the expected log-probability of class c's words.

    ``log_probs`` (N, V) are the predictor's log-softmax for N images; ``class_targets`` (K, V)
    the bag of words of each class (:func:`miniclip.evaluation.zeroshot.class_word_targets`). The image
    goes to the class with the highest score.

    The score is linear in ``q``, so scoring every template's caption and averaging the scores
    over the templates is the same as averaging the templates' ``q``'s first and scoring once:
    the prompt ensemble here is a mean of targets, where the contrastive model averages embeddings.
    """
    if log_probs.ndim != 2 or class_targets.ndim != 2 or log_probs.shape[1] != class_targets.shape[1]:
        raise ValueError(
            f"need log-probabilities (N, V) and class targets (K, V) over the same V tokens, "
            f"got {tuple(log_probs.shape)} and {tuple(class_targets.shape)}"
        )
    return log_probs @ class_targets.T  # (N, K)


NO_TEXT_ENCODER = (
    "it was trained with the predictive objective (--objective predictive), which has no text encoder: "
    "it scores words, it does not embed captions"
)


class PredictiveModel(Module):
    """The predictive baseline: an image encoder whose feature predicts the caption's bag of words.

        images (N, C, H, W) ─image encoder→ f (N, d) ─BagOfWordsPredictor→ z (N, V) ─PredictiveLoss(q)→ L

    ``forward`` takes the arguments :class:`~miniclip.model.clip.CLIP` takes, so one training step
    (:func:`miniclip.training.step.train_step`) serves both objectives; here ``targets`` are the
    captions' word distributions (N, V) (:func:`word_count_targets`, built once per caption by
    the trainer), and ``token_ids`` and ``mask`` are not needed: the targets already are the captions.
    """

    objective = "predictive"

    def __init__(self, image_encoder: Module, predictor: BagOfWordsPredictor) -> None:
        self.image = image_encoder
        self.predictor = predictor
        self.loss = PredictiveLoss()

    @property
    def vocab_size(self) -> int:
        """Words the predictor scores: token ids must lie in ``[0, vocab_size)``."""
        return self.predictor.vocab_size

    def encode_image(self, images: Any) -> Any:
        """Each image's predicted log-probability of every word, log p (N, V): what zero-shot scores.

        A class's score is ``log p · q_c`` (:func:`predictive_class_scores`), the same dot
        product the contrastive model takes with its class embeddings; scaling an image's row
        by a positive number (as flip averaging's renormalisation does) leaves its ranking of
        the classes unchanged.
        """
        _, log_probs = softmax_and_log(self.predictor(self.image(images)), axis=1)
        return log_probs  # (N, V)

    def encode_text(self, token_ids: Any, mask: Any = None) -> Any:
        raise ValueError(f"this model cannot embed text: {NO_TEXT_ENCODER}")

    def forward(self, token_ids: Any, images: Any, mask: Any = None, targets: Any = None) -> Any:
        """The predictive loss (0-d) of N images against their captions' word distributions ``targets`` (N, V)."""
        if targets is None:
            raise ValueError("the predictive objective needs targets: each caption's word distribution (N, V)")
        if targets.shape[0] != images.shape[0]:
            raise ValueError(f"{targets.shape[0]} caption targets for {images.shape[0]} images")
        return self.loss(self.predictor(self.image(images)), targets)

    def backward(self, dloss: Any = 1.0, *, image_grad: bool = True) -> Any:
        """Fill every gradient; return d(loss)/d(images), or None with ``image_grad=False`` (images as data)."""
        dfeatures = self.predictor.backward(self.loss.backward(dloss))
        return self.image.backward(dfeatures) if image_grad else self.image.backward(dfeatures, input_grad=False)

    def clamp_logit_scale(self) -> None:
        """Nothing to clamp: the predictive head has no temperature (kept so one training step serves both)."""
