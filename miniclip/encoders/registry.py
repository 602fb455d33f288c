"""The encoder registry: every image and text encoder, described once, by name.

Each encoder module ends by registering one :class:`EncoderSpec`: its name, its side ("image"
or "text"), its class, how to build it from a :class:`~miniclip.model.config.ModelConfig`,
what it costs, how to check its sizes, and (optionally) the same encoder in PyTorch. Everything
that chooses an encoder by name reads it from here::

    builder          model/config.py           build_image_encoder, build_text_encoder, validate
    cost             measure/cost.py           image_encoder_cost, text_encoder_cost → bench's FLOPs
    PyTorch twin     measure/torch_twin.py     torch_clip, unsupported → bench's comparison
    gradient checks  teaching/gradient_cases   one CLIP check per (image, text) pairing
    command line     miniclip/cli              the --image-encoder / --text-encoder choices: names()

:func:`get` refuses an unknown name by name, listing the registered ones (nothing falls back to a
default encoder), and :func:`names` lists a side in registration order: the order the encoders
package imports its modules, which is the order of the lessons.

Adding an encoder: write its module (the :class:`~miniclip.module.Module`, its cost rows, its spec,
``register(spec)`` at the bottom) and import that module in ``miniclip/encoders/__init__.py``.
Its PyTorch twin, if it has one, is a function in the same module (PyTorch imported inside it);
``tests/test_encoder_registry.py`` adds a toy encoder in a single file and sees it built, costed
and gradient-checked.

Configuration fields. A checkpoint stores its :class:`ModelConfig` as one flat dict, and every
checkpoint written before the registry must still load, so the built-in encoders keep the flat
fields ModelConfig has always had (``patch_size``, ``cnn_channels``, ``text_heads``, ...); their
specs name the ones they read in ``reads``. A new encoder does not edit ModelConfig: it declares
its *own* fields with their defaults in ``fields`` (name them after the encoder, ``toy_bias``,
so that no two encoders claim one name). ModelConfig keeps their values in its ``encoder_options``
dict, reads them with ``cfg.option("toy_bias")`` (the default when unset), and writes them flat
beside its own fields in ``to_dict``; ``from_dict`` accepts the chosen encoders' fields and
refuses any other unknown key, as before. The spec's ``validate`` checks what its fields must
satisfy, and what it needs of the sizes it reads (ModelConfig itself checks the form of its own
fields: whole numbers, at least 1, and so on).

What the CLIP head reads of an encoder: its output, (N, ``embed_dim``); and of a text encoder,
``vocab_size`` (an attribute or property): token ids must lie in ``[0, vocab_size)``. An image
encoder that is trained also takes ``backward(d, input_grad=False)``: training asks for no
gradient of the images (they are data), and the encoder may skip it and return None.

Importing it imports the encoders package first (so the built-in encoders are registered): NumPy
and miniclip's layers, nothing heavier. The specs carry functions, and whatever a function needs
beyond that (PyTorch, for a twin) is imported when it is called.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from miniclip.encoders.counting import LayerCost
    from miniclip.model.config import ModelConfig
    from miniclip.module import Module

SIDES = ("image", "text")


def _nothing_to_check(cfg: ModelConfig) -> None:
    return None


@dataclass(frozen=True)
class EncoderSpec:
    """Everything miniclip needs to know about one encoder, registered once under ``(side, name)``."""

    name: str  # what configurations and the command line call it: "cnn", "transformer", ...
    side: str  # "image": images (N, C, H, W) → (N, embed_dim); "text": ids (N, L), mask → (N, embed_dim)
    cls: type  # the Module subclass that build returns
    build: Callable[..., Module]  # build(cfg, *, rng, dtype): the encoder, weights drawn from the host rng
    cost: Callable[[ModelConfig, str], list[LayerCost]]  # cost(cfg, prefix): one row per layer, named prefix + path
    fields: Mapping[str, Any] = field(default_factory=dict)  # its own configuration fields → defaults (see above)
    reads: tuple[str, ...] = ()  # ModelConfig's own fields that it reads (torch_twin.unsupported asks for dropout)
    validate: Callable[[ModelConfig], None] = _nothing_to_check  # raise ValueError naming a bad size
    torch_twin: Callable[[ModelConfig], Any] | None = None  # the same encoder as a torch.nn.Module, same names
    tiny: Mapping[str, Any] = field(default_factory=dict)  # values of its own fields small enough to gradient-check

    def __post_init__(self) -> None:
        if self.side not in SIDES:
            raise ValueError(f"encoder {self.name!r}: side must be one of {SIDES}, got {self.side!r}")
        unknown = sorted(set(self.tiny) - set(self.fields))
        if unknown:
            raise ValueError(f"encoder {self.name!r}: tiny sets {unknown}, which are not among its fields")


_SPECS: dict[str, dict[str, EncoderSpec]] = {side: {} for side in SIDES}  # side → name → spec, in registration order


def _side(side: str) -> dict[str, EncoderSpec]:
    if side not in _SPECS:
        raise ValueError(f"unknown encoder side {side!r}; choose from {SIDES}")
    return _SPECS[side]


def register(spec: EncoderSpec) -> EncoderSpec:
    """Add ``spec`` under ``(spec.side, spec.name)``; a name already registered on that side is a ``ValueError``."""
    specs = _side(spec.side)
    if spec.name in specs:
        raise ValueError(
            f"{spec.side} encoder {spec.name!r} is already registered ({specs[spec.name].cls.__name__}): "
            f"choose another name"
        )
    specs[spec.name] = spec
    return spec


def unregister(side: str, name: str) -> EncoderSpec:
    """Remove and return a registered encoder (tests that register one of their own put things back with it)."""
    spec = get(side, name)
    del _SPECS[side][name]
    return spec


def get(side: str, name: str) -> EncoderSpec:
    """The spec of the ``side`` encoder called ``name``; ``ValueError`` naming it and the known ones otherwise."""
    specs = _side(side)
    if name not in specs:
        raise ValueError(f"unknown {side} encoder {name!r}; choose from {tuple(specs)}")
    return specs[name]


def names(side: str) -> tuple[str, ...]:
    """The registered ``side`` encoders' names, in registration order."""
    return tuple(_side(side))
