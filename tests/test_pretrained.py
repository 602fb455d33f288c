"""Released CLIP weights on miniclip's layers, matched number for number against ``transformers.CLIPModel``.

No weights can be downloaded here, so the stand-in is what users download, built offline: a
random-weight ``CLIPModel`` saved with ``save_pretrained`` beside a tokenizer's ``vocab.json`` and
``merges.txt`` (:mod:`reference_clip`). miniclip reads the folder with its own safetensors
reader and name table, and must give the same image embeddings, text embeddings and logits —
within 1e-5 relative in float32, 1e-10 in float64 — and, at the small size, the same gradient of
the contrastive loss for every parameter. The folder checks (missing, extra and mis-shaped
tensors; pickles) need neither library.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from miniclip.backend import to_host
from miniclip.model.bpe import openai_vocab_file
from miniclip.pretrained.load import load_pretrained, pretrained_folder
from miniclip.pretrained.names import miniclip_to_hf, name_table
from miniclip.pretrained.safetensors import read_safetensors, write_safetensors

torch = pytest.importorskip("torch", reason="the reference CLIPModel is PyTorch")
transformers = pytest.importorskip("transformers", reason="the reference is transformers.CLIPModel")

from reference_clip import SMALL, VIT_B_32, learned_tokenizer, save_reference_clip  # noqa: E402

pytestmark = pytest.mark.torch


def _inputs(tokenizer, image_size, n=3, seed=0):
    captions = ["a photo of a cat.", "a blurry photo of the big truck.", "a frog"][:n]
    ids, mask = tokenizer.encode_batch(captions, 77)
    pixels = np.random.default_rng(seed).normal(size=(n, 3, image_size, image_size))
    return ids, mask, pixels


def _reference(model, ids, mask, pixels, dtype):
    with torch.no_grad():
        out = model(
            input_ids=torch.from_numpy(ids),
            attention_mask=torch.from_numpy(mask.astype(np.int64)),
            pixel_values=torch.from_numpy(pixels.astype(dtype)),
        )
    unit = lambda e: (e / e.norm(dim=-1, keepdim=True)).numpy()  # noqa: E731
    return unit(out.text_embeds), unit(out.image_embeds), out.logits_per_text.numpy()


def _ours(pretrained, ids, mask, pixels, dtype):
    model = pretrained.model
    t = to_host(model.encode_text(ids, mask.astype(dtype)))
    i = to_host(model.encode_image(pixels.astype(dtype)))
    return t, i, to_host(model.logit_scale.scale) * t @ i.T


@pytest.fixture(scope="module")
def small_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("small_clip")
    model = save_reference_clip(folder, SMALL, learned_tokenizer())
    return folder, model


def test_the_name_table_covers_every_parameter_once(small_folder):
    folder, _ = small_folder
    pretrained = load_pretrained(folder)
    table = name_table(pretrained.config)
    ours = [row.miniclip for row in table]
    assert sorted(ours) == sorted(pretrained.model.parameters())  # every parameter, once
    theirs = [h for row in table for h in row.hf]
    assert sorted(theirs) == sorted(read_safetensors(folder / "model.safetensors"))  # every tensor, once


@pytest.mark.parametrize("dtype, rtol", [(np.float32, 1e-5), (np.float64, 1e-10)])
def test_small_clip_matches_transformers(small_folder, dtype, rtol):
    folder, model = small_folder
    pretrained = load_pretrained(folder, dtype=dtype)
    reference = model.double() if dtype == np.float64 else model.float()
    ids, mask, pixels = _inputs(pretrained.tokenizer, pretrained.config.image_size)
    for ours, theirs, what in zip(
        _ours(pretrained, ids, mask, pixels, dtype),
        _reference(reference, ids, mask, pixels, dtype),
        ("text embeddings", "image embeddings", "logits"),
        strict=True,
    ):
        scale = np.abs(theirs).max()
        print(f"{np.dtype(dtype).name} {what}: {np.abs(ours - theirs).max() / scale:.1e}")  # the README's figures (-s)
        assert np.abs(ours - theirs).max() <= rtol * scale, f"{what}: {np.abs(ours - theirs).max() / scale:.2e}"
    model.float()


def test_contrastive_loss_gradients_match_autograd_for_every_parameter(small_folder):
    folder, model = small_folder
    pretrained = load_pretrained(folder, dtype=np.float64)
    reference = model.double()
    ids, mask, pixels = _inputs(pretrained.tokenizer, pretrained.config.image_size)
    ours = pretrained.model
    ours.train()
    ours.zero_grad()
    loss = ours(ids, pixels, mask)
    ours.backward()
    reference.zero_grad()
    out = reference(
        input_ids=torch.from_numpy(ids),
        attention_mask=torch.from_numpy(mask.astype(np.int64)),
        pixel_values=torch.from_numpy(pixels),
        return_loss=True,
    )
    out.loss.backward()
    assert float(loss) == pytest.approx(out.loss.item(), rel=1e-10)
    theirs = {name: p.grad.numpy() for name, p in reference.named_parameters()}
    shapes = {name: tuple(g.shape) for name, g in theirs.items()}
    grads = miniclip_to_hf({name: to_host(p.grad) for name, p in ours.parameters().items()}, pretrained.config, shapes)
    assert sorted(grads) == sorted(theirs)
    for name, g in grads.items():  # (the key bias's gradient is 0 in theory, ~1e-18 in both: hence the floor)
        assert np.abs(g - theirs[name]).max() <= 1e-8 * np.abs(theirs[name]).max() + 1e-15, name
    model.float()


@pytest.mark.skipif(openai_vocab_file() is None, reason="OpenAI's vocabulary ships with open_clip_torch")
def test_full_size_vit_b_32_matches_transformers(tmp_path):
    """The full ViT-B/32 configuration (151 M random weights, a 605 MB file), OpenAI's 49,408-token vocabulary."""
    from miniclip.model.bpe import BPETokenizer

    tokenizer = BPETokenizer.from_openai_vocab(openai_vocab_file())
    model = save_reference_clip(tmp_path, VIT_B_32, tokenizer)
    pretrained = load_pretrained(tmp_path)
    assert pretrained.config.image_width == 768 and pretrained.config.text_depth == 12
    ids, mask, pixels = _inputs(pretrained.tokenizer, 224, n=2)
    for ours, theirs, what in zip(
        _ours(pretrained, ids, mask, pixels, np.float32),
        _reference(model, ids, mask, pixels, np.float32),
        ("text embeddings", "image embeddings", "logits"),
        strict=True,
    ):
        scale = np.abs(theirs).max()
        print(f"ViT-B/32 {what}: {np.abs(ours - theirs).max() / scale:.1e}")  # the README's figures (pytest -s)
        assert np.abs(ours - theirs).max() <= 1e-5 * scale, f"{what}: {np.abs(ours - theirs).max() / scale:.2e}"


# -- the folder's checks: before anything is loaded, by name ------------------------------------


def _copy(small_folder, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(small_folder[0], folder)
    return folder


def test_a_missing_an_unknown_and_a_misshapen_tensor_are_refused_by_name(small_folder, tmp_path):
    folder = _copy(small_folder, tmp_path)
    tensors = read_safetensors(folder / "model.safetensors")
    missing = dict(tensors)
    del missing["vision_model.pre_layrnorm.bias"]
    write_safetensors(folder / "model.safetensors", missing)
    with pytest.raises(ValueError, match="missing 1 tensors: vision_model.pre_layrnorm.bias"):
        load_pretrained(folder)
    write_safetensors(folder / "model.safetensors", tensors | {"text_model.extra.weight": np.zeros(3, np.float32)})
    with pytest.raises(ValueError, match="no place for: text_model.extra.weight"):
        load_pretrained(folder)
    wrong = tensors | {"text_projection.weight": np.zeros((5, 16), np.float32)}
    write_safetensors(folder / "model.safetensors", wrong)
    with pytest.raises(ValueError, match=r"text_projection.weight \(5, 16\) gives text.project.weight the shape"):
        load_pretrained(folder)


def test_float16_and_bfloat16_files_load_as_float32(small_folder, tmp_path):
    from safetensors.torch import save_file

    folder = _copy(small_folder, tmp_path)
    tensors = read_safetensors(folder / "model.safetensors")
    reference = load_pretrained(folder)
    for dtype in (torch.float16, torch.bfloat16):
        save_file({k: torch.from_numpy(v).to(dtype) for k, v in tensors.items()}, str(folder / "model.safetensors"))
        pretrained = load_pretrained(folder)
        for name, p in pretrained.model.parameters().items():
            assert p.data.dtype == np.float32
            np.testing.assert_allclose(to_host(p.data), to_host(reference.model.parameters()[name].data), atol=0.02)


def test_a_pickle_is_never_opened(small_folder, tmp_path):
    folder = _copy(small_folder, tmp_path)
    (folder / "model.safetensors").unlink()
    (folder / "pytorch_model.bin").write_bytes(b"not to be unpickled")
    with pytest.raises(ValueError, match="safetensors"):
        pretrained_folder(folder)
    with pytest.raises(ValueError, match="safetensors"):
        pretrained_folder(folder / "pytorch_model.bin")


def test_a_folder_without_its_files_or_an_unfetched_name_says_what_to_do(small_folder, tmp_path, monkeypatch):
    folder = _copy(small_folder, tmp_path)
    (folder / "merges.txt").unlink()
    with pytest.raises(ValueError, match="lacks merges.txt"):
        pretrained_folder(folder)
    monkeypatch.setenv("MINICLIP_PRETRAINED", str(tmp_path / "cache"))
    with pytest.raises(ValueError, match="miniclip pretrained fetch openai/clip-vit-base-patch32"):
        pretrained_folder("openai/clip-vit-base-patch32")
    fetched = tmp_path / "cache" / "openai--clip-vit-base-patch32"
    shutil.copytree(small_folder[0], fetched)
    assert pretrained_folder("openai/clip-vit-base-patch32") == fetched


def test_a_config_miniclip_cannot_compute_exactly_is_refused(small_folder, tmp_path):
    folder = _copy(small_folder, tmp_path)
    config = json.loads((folder / "config.json").read_text())
    config["vision_config"]["hidden_act"] = "gelu"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="hidden_act 'gelu' is not one miniclip computes exactly"):
        load_pretrained(folder)


def test_json_read_from_a_model_folder_is_strict(small_folder, tmp_path):
    """NaN, or a name given twice (plain json keeps the last), in config.json or vocab.json: refused by file."""
    folder = _copy(small_folder, tmp_path)
    config = (folder / "config.json").read_text()
    (folder / "config.json").write_text(config.replace('"projection_dim": 12', '"projection_dim": NaN'))
    with pytest.raises(ValueError, match=r"config.json: not a readable JSON file \(NaN is not a JSON number\)"):
        load_pretrained(folder)
    (folder / "config.json").write_text(config)
    vocab = (folder / "vocab.json").read_text()
    (folder / "vocab.json").write_text(vocab[:-1] + ', "!": 5}')
    with pytest.raises(ValueError, match=r"vocab.json is not valid JSON \(the name '!' appears twice"):
        load_pretrained(folder)
