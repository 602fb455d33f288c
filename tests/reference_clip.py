"""Random-weight Hugging Face CLIP models saved as users download them: the offline stand-in for released weights.

``save_reference_clip`` builds ``transformers.CLIPModel`` with random weights at a given size and
writes it with ``save_pretrained`` (``config.json`` + ``model.safetensors``), beside the
tokenizer's ``vocab.json`` and ``merges.txt``: exactly the layout ``miniclip pretrained fetch``
downloads. Imported by the tests that need ``transformers`` and PyTorch (they skip without them).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from miniclip.data.captions import CLIP_CIFAR10_TEMPLATES
from miniclip.model.bpe import BPETokenizer
from miniclip.model.bpe_training import learn_merges

# A small CLIP: every kind of tensor of the real one, few enough weights to check every gradient.
SMALL = {
    "text": {"hidden_size": 16, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2},
    "vision": {"hidden_size": 16, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4}
    | {"image_size": 64, "patch_size": 16},
    "projection_dim": 12,
}
VIT_B_32 = {"text": {}, "vision": {}, "projection_dim": 512}  # transformers' defaults are ViT-B/32's sizes


def learned_tokenizer(merges: int = 300) -> BPETokenizer:
    """A small byte-pair vocabulary learned on CIFAR-10's captions (:mod:`miniclip.model.bpe_training`)."""
    classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    captions = [t.format(c) for c in classes for t in CLIP_CIFAR10_TEMPLATES]
    return BPETokenizer.from_merges(learn_merges(captions, merges))


def write_tokenizer_files(tokenizer: BPETokenizer, folder: Path) -> None:
    """``vocab.json`` and ``merges.txt`` as Hugging Face writes them."""
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokenizer.tokens)}), encoding="utf-8")
    merges = "\n".join(f"{a} {b}" for a, b in tokenizer.merges)
    (folder / "merges.txt").write_text("#version: 0.2\n" + merges + "\n", encoding="utf-8")


def save_reference_clip(folder: Path, sizes: dict[str, Any], tokenizer: BPETokenizer, seed: int = 0) -> Any:
    """A random-weight ``CLIPModel`` of ``sizes`` with ``tokenizer``'s vocabulary, saved into ``folder``; returned."""
    import torch
    from transformers import CLIPConfig, CLIPModel

    end, start = tokenizer.end_id, tokenizer.start_id
    text = sizes["text"] | {"vocab_size": tokenizer.vocab_size, "eos_token_id": end, "bos_token_id": start}
    config = CLIPConfig(
        text_config=text | {"pad_token_id": 0}, vision_config=sizes["vision"], projection_dim=sizes["projection_dim"]
    )
    torch.manual_seed(seed)
    model = CLIPModel(config).eval()
    with torch.no_grad():  # no weight left at a default 0 or 1, where some mistakes would cancel
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p))
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    write_tokenizer_files(tokenizer, folder)
    return model
