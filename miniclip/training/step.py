"""One training step: the function ``miniclip train`` calls for every batch and ``miniclip bench`` times.

    zero the gradients → forward → backward → clip the global gradient norm → AdamW → clamp the temperature

Lesson 09 takes one step by hand and checks it against :meth:`~miniclip.training.loop.Trainer.step`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from miniclip import backend
from miniclip.distributed.data_parallel import all_reduce_gradients
from miniclip.model.clip import CLIP
from miniclip.model.predictive import PredictiveModel
from miniclip.optim import AdamW, clip_grad_norm


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint, if any, is kept."""


def train_step(
    model: CLIP | PredictiveModel,
    optimizer: AdamW,
    token_ids: Any,
    images: Any,
    mask: Any,
    targets: Any,
    *,
    grad_clip: float,
    world: Any = None,
) -> Any:
    """One optimisation step of ``model`` on a prepared batch; returns the loss (0-d, still on the device).

    Its two halves: :func:`compute_gradients` (zero the gradients → forward → backward) and
    :func:`apply_gradients` (clip → AdamW → clamp the temperature). :class:`Trainer` and
    ``miniclip bench`` both call this very function, so what the benchmark times is what training
    runs; the memory estimate (:mod:`miniclip.training.memory`) measures the halves one by one.

    On many processes (``world``, a model made data-parallel, this rank's slice of the batch) the
    gradients are summed over the ranks between the halves, and the loss returned is this rank's
    share of the global loss (the shares add up to it).
    """
    loss = compute_gradients(model, optimizer, token_ids, images, mask, targets)
    if world is not None and world.size > 1:
        all_reduce_gradients(optimizer, world)
    apply_gradients(model, optimizer, grad_clip=grad_clip)
    return loss


def compute_gradients(
    model: CLIP | PredictiveModel, optimizer: AdamW, token_ids: Any, images: Any, mask: Any, targets: Any
) -> Any:
    """Zero the gradients, then forward (both encoders and the contrastive head; or, for the predictive
    objective, the image encoder and the word predictor, ``targets`` the captions' word distributions)
    and backward; returns the loss.

    On the CPU a loss that is not finite stops the step before any weight moves
    (:class:`TrainingDivergedError`); on the GPU that check would wait for the device, so the
    trainer looks at the losses every few steps instead.
    """
    optimizer.zero_grad()  # its flat gradient buffers: one fill per group
    loss = model(token_ids, images, mask, targets)
    if backend.get_array_module(loss) is np and not math.isfinite(float(loss)):
        raise TrainingDivergedError(f"the loss became {float(loss)}")
    model.backward(image_grad=False)  # the images are data: no gradient for them
    return loss


def apply_gradients(model: CLIP | PredictiveModel, optimizer: AdamW, *, grad_clip: float) -> None:
    """Clip the global gradient norm (when ``grad_clip`` > 0), take the AdamW step, clamp the temperature."""
    if grad_clip > 0:
        clip_grad_norm(optimizer.grad_buffers(), grad_clip)  # the flat buffers, whole
    optimizer.step()
    model.clamp_logit_scale()
