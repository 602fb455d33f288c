"""Resuming a run: the configuration it was started with, and what the user typed beside ``--resume``.

``miniclip train --resume`` continues the run in the output folder with the configuration saved
in its checkpoint. A flag typed as well must say the same as the saved run, or the run is
refused naming the flag and both values: :func:`typed_settings` turns what was typed into
field → (flag, value) (``--config NAME`` types every field of that configuration), and
:func:`check_same_run` holds each against the saved configuration — the one rule, which a
:class:`~miniclip.training.loop.Trainer` resumed in code follows too (:func:`settings_of`: every
field of its configuration). Three may differ: ``out_dir`` and ``data_dir`` (where the run and its
data are, not what the run is), and ``epochs``, to train longer or stop earlier; lesson 09 shows a
resumed run equal to one never interrupted. A run fine-tuned from released weights records where
they came from (``init_from``): ``--init-from`` typed again must name the same folder or Hub name.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from miniclip.training.checkpoint import load_checkpoint
from miniclip.training.configs import FINETUNE, TrainConfig, named_config


def flag_of(name: str) -> str:
    """The command-line flag that sets a configuration field: ``batch_size`` → ``--batch-size``."""
    return "--no-augment" if name == "augment" else "--" + name.replace("_", "-")


def typed_settings(config: str | None, given: dict[str, Any], model: dict[str, Any]) -> dict[str, tuple[str, Any]]:
    """What the user typed, field → (the flag as typed, its value), ``model.<field>`` for the model's fields.

    ``given`` holds the training fields typed (a flag left out is not there), ``model`` the model
    fields (encoders, objective). ``--config NAME`` types every field of that configuration, its
    split sizes only for the dataset it names (:func:`~miniclip.training.configs.named_config`).
    """
    typed: dict[str, tuple[str, Any]] = {}
    if config:
        preset = named_config(config, **({"data": given["data"]} if "data" in given else {})).to_dict()
        typed |= {f"model.{k}": (f"--config {config}", v) for k, v in preset.pop("model").items()}
        typed |= {  # where things are is not what the run is; no configuration names weights to start from
            k: (f"--config {config}", v) for k, v in preset.items() if k not in ("out_dir", "data_dir", "init_from")
        }
    typed |= {name: (flag_of(name), value) for name, value in given.items()}
    typed |= {f"model.{name}": (flag_of(name), value) for name, value in model.items()}
    return typed


def check_same_run(
    out: Path, saved: TrainConfig, model_config: Any, done: int, settings: dict[str, tuple[str, Any]]
) -> list[str]:
    """Hold ``settings`` (field → (flag, value)) against the saved run; the notes to print, or a ``ValueError``.

    The one rule of what may differ on resume, for the command line and for a
    :class:`~miniclip.training.loop.Trainer` built in code alike: ``out_dir`` and ``data_dir``
    (where, not what); ``data`` written another way for the same folder; and ``epochs``, more
    than the ``done`` already trained (the learning-rate schedule is then recomputed, as the
    returned note says). ``model.<field>`` is held against the checkpoint's ``model_config``.
    """
    notes: list[str] = []
    for name, (flag, value) in settings.items():
        if name in ("out_dir", "data_dir"):
            continue
        was = (
            _model_field(model_config, name.removeprefix("model."))
            if name.startswith("model.")
            else getattr(saved, name)
        )
        if name in ("data", "init_from") and _same_path(value, was):
            continue  # the same folder, typed another way
        if _plain_value(value) == _plain_value(was):
            continue
        if name == "epochs":
            if value <= done:
                raise ValueError(
                    f"cannot resume {out} with {flag} {value}: the run has already trained {done} epoch(s) "
                    f"of the {was} it was started with"
                )
            notes.append(
                f"{flag} {value}: the run was started with {was} epochs and has trained {done}; the warm-up and "
                f"cosine learning-rate schedule is recomputed for {value} epochs, so from the next step the rate "
                f"follows the {'longer' if value > was else 'shorter'} schedule (the result differs from a run "
                f"started with {flag} {value})"
            )
            continue
        if flag.startswith("--"):
            advice = f"--resume takes the saved configuration: leave {flag.split()[0]} out, or start a new run "
            advice += "with another --out"
        else:  # a Trainer built in code
            advice = "resume with the configuration the run was started with, or start a new run in another out_dir"
        raise ValueError(f"cannot resume {out}: {_difference(name, flag, value, was)}; {advice}")
    return notes


SIZES = ("vocab_size", "context_length", "image_size", "channels")  # set from the data and tokenizer, not the config


def settings_of(cfg: TrainConfig) -> dict[str, tuple[str, Any]]:
    """Every field of a configuration built in code, as :func:`check_same_run` reads them (``model.<field>`` too).

    A run fine-tuned from released weights (``init_from``) takes its context length from them, so
    that field is not held against the saved run.
    """
    fields = {k: v for k, v in cfg.to_dict().items() if k != "model"}
    if cfg.init_from is not None:
        del fields["context_length"]
    model = {k: v for k, v in cfg.model.items() if k not in SIZES}  # a new run sets these from its data
    return {k: (f"the configuration's {k}", v) for k, v in fields.items()} | {
        f"model.{k}": (f"the configuration's model.{k}", v) for k, v in model.items()
    }


def check_classes(out: Path, data: str, saved: list[str] | None, now: list[str]) -> None:
    """Refuse to resume on a dataset whose classes differ from the checkpoint's, naming them.

    ``saved`` is ``None`` for a checkpoint written before the class names were stored: not checked.
    """
    if saved is None or list(saved) == list(now):
        return
    added = [c for c in now if c not in saved]
    missing = [c for c in saved if c not in now]
    parts = []
    if added:
        parts.append(f"added {', '.join(map(repr, added))}")
    if missing:
        parts.append(f"missing {', '.join(map(repr, missing))}")
    if not parts:
        shown = ", ".join(map(repr, now)), ", ".join(map(repr, saved))
        parts.append(f"the same names in another order ({shown[0]}, was {shown[1]})")
    raise ValueError(
        f"cannot resume {out}: the classes of {data} have changed since the checkpoint was written "
        f"({'; '.join(parts)}); the model was trained on {len(saved)} classes: restore the folder as it was, "
        f"or start a new run with another --out"
    )


def resume_config(out_dir: str | Path, typed: dict[str, tuple[str, Any]]) -> tuple[TrainConfig, list[str]]:
    """The configuration to resume the run in ``out_dir`` with: the one it was started with.

    ``typed`` holds what the user gave on the command line (:func:`typed_settings`); each must
    say what the saved run says (:func:`check_same_run`), else ``ValueError`` names the flag,
    both values and what to do. Returns the saved configuration with ``out_dir``, and
    ``data_dir`` and ``epochs`` where typed, and the notes to print.
    """
    out = Path(out_dir)
    ckpt = load_checkpoint(out)
    saved = TrainConfig.from_dict(ckpt.train_config["config"])
    if saved.init_from is not None:
        typed = _as_fine_tuning(typed)
    notes = check_same_run(out, saved, ckpt.model_config, ckpt.progress["epoch"], typed)
    changes: dict[str, Any] = {"out_dir": str(out)}
    for name in ("epochs", "data_dir"):
        if name in typed:
            changes[name] = typed[name][1]
    cfg = dataclasses.replace(saved, **changes)
    cfg.validate()
    return cfg, notes


def _as_fine_tuning(typed: dict[str, tuple[str, Any]]) -> dict[str, tuple[str, Any]]:
    """What ``--config NAME`` types for a run fine-tuned from released weights, as it did when that run started.

    :func:`~miniclip.training.configs.named_config` with ``init_from`` drops the configuration's model
    and its context length (the pretrained model's apply) and sets ``lr`` and ``flip_average`` as
    ``FINETUNE`` says.
    """
    kept: dict[str, tuple[str, Any]] = {}
    for name, (flag, value) in typed.items():
        if flag.startswith("--config"):
            if name.startswith("model.") or name == "context_length":
                continue
            value = FINETUNE.get(name, value)
        kept[name] = (flag, value)
    return kept


def _same_path(value: Any, was: Any) -> bool:
    """Whether two different strings name one path (a folder typed relative and absolute)."""
    if not isinstance(value, str) or not isinstance(was, str) or value == was:
        return False
    return Path(value).resolve() == Path(was).resolve()


def _model_field(model_config: Any, name: str) -> Any:
    """A ModelConfig field, or a registered encoder's own field (``ModelConfig.option``)."""
    return getattr(model_config, name) if hasattr(model_config, name) else model_config.option(name)


def _plain_value(value: Any) -> Any:
    """Tuples as lists (a ModelConfig holds tuples where a configuration's JSON has lists)."""
    return [_plain_value(v) for v in value] if isinstance(value, (list, tuple)) else value


def _difference(name: str, flag: str, value: Any, was: Any) -> str:
    """What was typed against what the run was started with, one clause: ``--lr gives lr 0.1, but the run …``."""
    if name == "init_from":  # where the weights came from: a folder or Hub name, or none (from scratch)
        typed = "is None (training from scratch)" if value is None else f"names the weights {value!r}"
        started = "trained from scratch" if was is None else f"fine-tuned from {was!r}"
        return f"{flag} {typed}, but the run was {started}"
    shown, was = ("off", "on" if was else "off") if name == "augment" else (repr(value), repr(was))
    return f"{flag} gives {_field_label(name)} {shown}, but the run was started with {was}"


def _field_label(name: str) -> str:
    return name.removeprefix("model.").replace("_", " ")
