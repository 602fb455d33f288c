"""The same CLIP in PyTorch: the measuring stick of ``miniclip bench`` (never needed to use miniclip).

:func:`torch_clip` writes miniclip's model layer for layer as a ``torch.nn.Module`` whose
parameters carry miniclip's names (``image.blocks.0.conv1.weight``, ``text.positions.positions``,
``logit_scale.log_scale``, ...; only an embedding's ``table`` is PyTorch's ``weight``), and
:func:`copy_weights` copies a miniclip model into it, so both start from the same numbers and
their first losses agree. Conventions that differ on the way across:

* a miniclip ``Linear`` stores W as (D_in, D_out), PyTorch as (D_out, D_in): transposed;
* convolution kernels, embedding tables, positions, LayerNorm and BatchNorm gains and shifts,
  BatchNorm's running statistics and the logit scale copy unchanged (shapes are checked).

Each encoder's PyTorch twin is written beside the encoder, in its module under
``miniclip/encoders/`` (the ``torch_twin`` of its :class:`~miniclip.encoders.registry.EncoderSpec`),
from the pieces in :mod:`miniclip.encoders.torch_parts`; this module adds the head. Every
built-in encoder has one; only dropout cannot be compared (each library draws its own random
masks), see :func:`unsupported`. :func:`torch_image_encoder` gives one encoder's twin alone (``miniclip
bench --clip`` times OpenAI's image tower by itself). PyTorch is imported inside the functions, so
this module imports anywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from miniclip.backend import to_host
from miniclip.encoders import registry
from miniclip.layers.logit_scale import INIT, MAX
from miniclip.model.clip import CLIP
from miniclip.model.config import ModelConfig
from miniclip.module import Module
from miniclip.optim import decays


def torch_version() -> str | None:
    """PyTorch's version, or None when it does not import."""
    try:
        import torch
    except ImportError:
        return None
    return str(torch.__version__)


def unsupported(mc: ModelConfig) -> str | None:
    """Why the PyTorch copy of ``mc`` could not give the same loss, or None when it can."""
    specs = [registry.get("image", mc.image_encoder), registry.get("text", mc.text_encoder)]
    for spec in specs:
        if spec.torch_twin is None:
            return f"the {spec.side} encoder {spec.name!r} has no PyTorch twin"
    if mc.dropout and any("dropout" in spec.reads for spec in specs):
        return f"dropout {mc.dropout}: miniclip and PyTorch draw different random masks, so the losses cannot agree"
    return None


# -- the model ------------------------------------------------------------------------------------


def torch_clip(mc: ModelConfig) -> Any:
    """miniclip's CLIP for ``mc`` as a ``torch.nn.Module`` with miniclip's parameter names (weights random).

    The encoders are their specs' twins; an encoder without one is a ``ValueError`` naming it.
    """
    import torch

    nn, F = torch.nn, torch.nn.functional
    image_spec, text_spec = registry.get("image", mc.image_encoder), registry.get("text", mc.text_encoder)
    for spec in (image_spec, text_spec):
        if spec.torch_twin is None:
            raise ValueError(f"the {spec.side} encoder {spec.name!r} has no PyTorch twin")

    class TorchCLIP(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.image = image_spec.torch_twin(mc)  # images (N, C, H, W) → (N, d)
            self.text = text_spec.torch_twin(mc)  # ids (N, L), mask (N, L) → (N, d)
            self.logit_scale = nn.Module()  # miniclip's LogitScale: one parameter, ``log_scale`` (s; the scale is e^s)
            self.logit_scale.log_scale = nn.Parameter(torch.tensor(INIT))

        def forward(self, ids: Any, images: Any, mask: Any, targets: Any) -> Any:
            t = F.normalize(self.text(ids, mask), dim=-1)  # (N, d)
            i = F.normalize(self.image(images), dim=-1)  # (N, d)
            logits = self.logit_scale.log_scale.exp() * t @ i.T  # (N, N)
            return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets.T)) / 2

    return TorchCLIP()


def torch_name(name: str) -> str:
    """The PyTorch name of a miniclip parameter or buffer: the same, except an embedding's ``table`` → ``weight``."""
    return name[: -len("table")] + "weight" if name == "table" or name.endswith(".table") else name


def torch_image_encoder(encoder: Module, mc: ModelConfig) -> Any:
    """The PyTorch twin of ``mc``'s image encoder with ``encoder``'s weights, in evaluation mode, on the CPU."""
    spec = registry.get("image", mc.image_encoder)
    if spec.torch_twin is None:
        raise ValueError(f"the image encoder {spec.name!r} has no PyTorch twin")
    twin = spec.torch_twin(mc)
    copy_weights(encoder, twin)
    return twin.eval()


def copy_weights(model: Module, reference: Any) -> dict[str, str]:
    """Copy every parameter and buffer of ``model`` (a CLIP, or one encoder) into ``reference``; return the name map.

    The map is miniclip → PyTorch name.

    Raises ``ValueError`` naming what does not match, before anything is copied, unless every
    miniclip array has exactly one PyTorch counterpart of the right shape and PyTorch has no other
    (BatchNorm's ``num_batches_tracked`` counter aside: miniclip's running averages use a fixed momentum).
    """
    import torch

    ours = {name: p.data for name, p in model.parameters().items()} | model.buffers()
    theirs = {k: v for k, v in reference.state_dict().items() if not k.endswith("num_batches_tracked")}
    names = {name: torch_name(name) for name in ours}
    missing = sorted(n for n in names.values() if n not in theirs)
    unexpected = sorted(set(theirs) - set(names.values()))
    if missing or unexpected:
        raise ValueError(f"PyTorch model does not match miniclip's: missing {missing}, unexpected {unexpected}")
    values = {}
    for name, data in ours.items():
        host = to_host(data)
        value = host.T if name.endswith("weight") and host.ndim == 2 else host  # Linear: (D_in, D_out) → (D_out, D_in)
        target = theirs[names[name]]
        if tuple(value.shape) != tuple(target.shape):
            raise ValueError(
                f"{name}: miniclip {tuple(host.shape)} does not fit PyTorch's {names[name]} {tuple(target.shape)}"
            )
        values[names[name]] = torch.tensor(np.array(value), dtype=target.dtype)  # 0-d stays 0-d
    with torch.no_grad():
        for name, value in values.items():
            theirs[name].copy_(value)
    return names


def torch_step(
    model: CLIP, mc: ModelConfig, batch: dict[str, np.ndarray], *, lr: float, weight_decay: float, grad_clip: float
) -> tuple[Callable[[], Any], Any, str]:
    """A PyTorch training step on ``batch`` with ``model``'s weights; also the model, and its device.

    The step is :func:`miniclip.training.step.train_step` in PyTorch: zero the gradients, forward,
    backward, clip the global gradient norm, AdamW (decay on the parameters miniclip decays),
    clamp the temperature. It runs on CUDA when miniclip runs on the GPU and PyTorch sees one.
    """
    import torch

    from miniclip import backend

    device = "cuda" if backend.get_device() == "gpu" and torch.cuda.is_available() else "cpu"
    reference = torch_clip(mc)
    names = copy_weights(model, reference)
    reference = reference.to(device)
    named = dict(reference.named_parameters())
    decayed = {names[name] for name, p in model.parameters().items() if decays(name, p)}
    groups = [
        {"params": [p for name, p in named.items() if name in decayed], "weight_decay": weight_decay},
        {"params": [p for name, p in named.items() if name not in decayed], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=lr)
    ids, images, mask, targets = (torch.from_numpy(batch[k]).to(device) for k in ("ids", "images", "mask", "targets"))
    params = list(named.values())

    def step() -> Any:
        optimizer.zero_grad()
        loss = reference(ids, images, mask, targets)
        loss.backward()
        if grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, grad_clip)
        optimizer.step()
        with torch.no_grad():
            reference.logit_scale.log_scale.clamp_(0.0, MAX)
        return loss

    return step, reference, device
