"""CLIP: any image encoder and any text encoder joined by the normalised contrastive head.

    image encoder  images (N, C, H, W) → (N, d) ─L2 normalise→ I
    text encoder   ids (N, L), mask    → (N, d) ─L2 normalise→ T
    head           logits = e^s · T Iᵀ  → contrastive loss (both directions)

The walkthrough's head took raw dot products; real CLIP normalises both embeddings so the
similarity is a cosine in [−1, 1] and lets a learned temperature τ decide how sharp the
softmax is: the logits are the cosines times the *logit scale* e^s = 1/τ, the inverse
temperature (``CLIP.logit_scale``, :mod:`miniclip.layers.logit_scale`). Everything else is
the walkthrough's. :func:`check_pairs` is shared with the walkthrough's model. All the head
needs of an encoder is its (N, d) output, and of the text encoder its ``vocab_size`` (every
registered text encoder tells it, :mod:`miniclip.encoders.registry`).

Lessons 02–04 derive it: the loss both ways (02), its gradient down the encoders (03), the
normalisation and the temperature (04).
"""

from __future__ import annotations

from typing import Any

from miniclip.layers.contrastive_loss import ContrastiveLoss
from miniclip.layers.l2_normalize import L2Normalize
from miniclip.layers.logit_scale import INIT, LogitScale
from miniclip.layers.similarity import Similarity
from miniclip.module import Module


def check_pairs(token_ids: Any, images: Any) -> None:
    """Raise ``ValueError`` unless there are as many captions as images (one pair each)."""
    if token_ids.shape[0] != images.shape[0]:
        raise ValueError(
            f"batch sizes differ: {token_ids.shape[0]} texts (token_ids {tuple(token_ids.shape)}) "
            f"but {images.shape[0]} images (images {tuple(images.shape)})"
        )


class CLIP(Module):
    """Contrastive language–image model over two encoders with output width ``d`` each."""

    objective = "contrastive"  # as ModelConfig.objective names it; the predictive model's is "predictive"

    def __init__(self, image_encoder: Module, text_encoder: Module, *, logit_scale: float = INIT, dtype: Any) -> None:
        self.image = image_encoder
        self.text = text_encoder
        self.image_norm = L2Normalize()
        self.text_norm = L2Normalize()
        self.similarity = Similarity()
        self.logit_scale = LogitScale(logit_scale, dtype=dtype)  # e^s = 1/τ, the inverse temperature
        self.loss = ContrastiveLoss()
        self.logits: Any = None

    @property
    def vocab_size(self) -> int:
        """The text encoder's ``vocab_size`` (every one tells it): token ids must lie in ``[0, vocab_size)``."""
        return self.text.vocab_size

    def encode_image(self, images: Any) -> Any:
        """Unit-length image embeddings (N, d)."""
        return self.image_norm(self.image(images))

    def encode_text(self, token_ids: Any, mask: Any = None) -> Any:
        """Unit-length caption embeddings (N, d)."""
        return self.text_norm(self.text(token_ids, mask))

    def forward(self, token_ids: Any, images: Any, mask: Any = None, targets: Any = None) -> Any:
        """The contrastive loss (0-d array) of N (caption, image) pairs; ``targets`` default to the identity."""
        check_pairs(token_ids, images)
        t = self.encode_text(token_ids, mask)  # (N, d)
        i = self.encode_image(images)  # (N, d)
        self.logits = self.logit_scale(self.similarity(t, i))  # (N, N)
        return self.loss(self.logits, targets)

    def backward(self, dloss: Any = 1.0, *, image_grad: bool = True) -> Any:
        """Fill every gradient; return d(loss)/d(images), or None with ``image_grad=False`` (images as data)."""
        dcos = self.logit_scale.backward(self.loss.backward(dloss))
        dt, di = self.similarity.backward(dcos)
        self.text.backward(self.text_norm.backward(dt))
        di = self.image_norm.backward(di)
        return self.image.backward(di) if image_grad else self.image.backward(di, input_grad=False)

    def clamp_logit_scale(self) -> None:
        """Keep the logit scale e^s in [1, 100] (τ = 1/e^s in [0.01, 1]): call after every optimiser step."""
        self.logit_scale.clamp()
