"""Using a trained CLIP: prompt ensembles, zero-shot accuracy and its confusion matrix, recall@k
(plain and class-aware, chunked), the figures, and classify/search. Tiny untrained models and
hand-made embeddings: every expected number is known without training."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from miniclip.data import ImageTextDataset, normalize
from miniclip.evaluation.classify_and_search import classify_images, search_images, unknown_words
from miniclip.evaluation.retrieval import recall_at_k
from miniclip.evaluation.zeroshot import (
    accuracy_table,
    class_embeddings,
    encode_images,
    encode_texts,
    evaluate_zero_shot,
    zero_shot,
)
from miniclip.model.config import build_clip
from miniclip.model.tokenizer import Tokenizer
from miniclip.plots import _accuracy, plot_confusion, plot_curves, plot_image_grid, plot_similarity
from miniclip.teaching.gradient_cases.clip import tiny_config

NAMES = ["cat", "dog", "red car", "ship"]
TEMPLATES = ["a photo of a {}.", "a blurry photo of the {}.", "art of a {}."]
L = 10  # context length
SIZE = 4  # image side of the tiny model


def _unit(rng: np.random.Generator, *shape: int) -> np.ndarray:
    x = rng.standard_normal(shape)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


@pytest.fixture
def clip():
    """A tiny untrained CLIP (3-channel 4×4 images) and a tokenizer that knows the test words."""
    tokenizer = Tokenizer.build([t.format(n) for t in TEMPLATES for n in NAMES] + ["a dog on a ship"])
    return build_clip(_tiny(tokenizer), rng=np.random.default_rng(0)), tokenizer


def _tiny(tokenizer: Tokenizer):
    return tiny_config(channels=3, vocab_size=tokenizer.vocab_size, context_length=L, dropout=0.1)


def _images(seed: int, n: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 3, SIZE, SIZE), dtype=np.uint8)


# --- encoding and the prompt ensemble --------------------------------------------------------------------------------
def test_encode_images_batches_in_eval_mode_and_restores_the_mode(clip):
    model, _ = clip
    images = _images(1, 7)
    model.train()
    whole = encode_images(model, images, normalize)
    assert model.training and model.image.training  # restored
    batched = encode_images(model, images, normalize, batch_size=3)  # dropout off: same numbers
    assert whole.shape == (7, 4) and whole.dtype == np.float32
    np.testing.assert_allclose(batched, whole, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(whole, axis=1), 1, atol=1e-5)
    model.eval()
    encode_images(model, images, normalize)
    assert not model.training  # eval stays eval


def test_flip_average_is_the_renormalised_mean_of_an_image_and_its_mirror(clip):
    model, _ = clip
    images = _images(2, 5)
    plain = encode_images(model, images, normalize)
    mirrored = encode_images(model, np.ascontiguousarray(images[..., ::-1]), normalize)
    both = encode_images(model, images, normalize, batch_size=2, flip_average=True)
    expected = (plain + mirrored) / np.linalg.norm(plain + mirrored, axis=1, keepdims=True)
    np.testing.assert_allclose(both, expected, atol=1e-6)
    assert np.abs(both - plain).max() > 1e-3  # the mirror changed something: the test can fail
    symmetric = np.concatenate([images[..., :2], images[..., :2][..., ::-1]], axis=-1)  # each row a palindrome
    np.testing.assert_allclose(
        encode_images(model, symmetric, normalize, flip_average=True),
        encode_images(model, symmetric, normalize),
        atol=1e-6,
    )


class _SmallVocabulary:
    """A stand-in model whose token table has 5 rows and that must never be asked to encode."""

    training = False
    vocab_size = 5

    def train(self, mode: bool = True) -> _SmallVocabulary:
        return self

    def eval(self) -> _SmallVocabulary:
        return self

    def encode_text(self, token_ids, mask=None):
        raise AssertionError("ids outside the token table reached the model")


def test_encode_texts_checks_the_ids_against_the_model_on_the_host(clip):
    """On the GPU the embedding does not look at its ids (that would wait for the device), so this must."""
    _, tokenizer = clip
    assert tokenizer.vocab_size > 5
    with pytest.raises(ValueError, match=r"token ids must lie in \[0, 4\] for a table of 5 rows"):
        encode_texts(_SmallVocabulary(), tokenizer, ["a photo of a ship."], L)


def test_one_template_ensemble_is_that_templates_embedding(clip):
    model, tokenizer = clip
    ensemble = class_embeddings(model, tokenizer, NAMES, ["a photo of a {}."], L)
    direct = encode_texts(model, tokenizer, [f"a photo of a {n}." for n in NAMES], L)
    np.testing.assert_allclose(ensemble, direct, atol=1e-6)


def test_ensemble_is_the_renormalised_mean_and_unit_length(clip):
    model, tokenizer = clip
    ensemble = class_embeddings(model, tokenizer, NAMES, TEMPLATES, L)
    assert ensemble.shape == (len(NAMES), 4)
    np.testing.assert_allclose(np.linalg.norm(ensemble, axis=1), 1, atol=1e-6)
    for c, name in enumerate(NAMES):
        each = encode_texts(model, tokenizer, [t.format(name) for t in TEMPLATES], L).astype(np.float64)  # (T, d)
        mean = each.mean(axis=0)
        np.testing.assert_allclose(ensemble[c], mean / np.linalg.norm(mean), atol=1e-5)
    single = class_embeddings(model, tokenizer, NAMES, TEMPLATES[:1], L)
    assert not np.allclose(single, ensemble, atol=1e-3)  # the other templates changed something


# --- zero-shot accuracy ----------------------------------------------------------------------------------------------
def test_zero_shot_on_the_class_embeddings_themselves_is_perfect():
    rng = np.random.default_rng(2)
    classes = _unit(rng, 6, 5).astype(np.float32)
    labels = np.array([0, 1, 2, 3, 4, 5, 5, 2, 0], dtype=np.int64)
    r = zero_shot(classes[labels], labels, classes)
    assert r["top1"] == 1.0 and r["top5"] == 1.0
    np.testing.assert_array_equal(r["confusion"], np.diag(np.bincount(labels, minlength=6)))
    assert r["confusion"].dtype == np.int64
    np.testing.assert_array_equal(r["predictions"], labels)
    assert r["per_class"] == [1.0] * 6


def test_zero_shot_agrees_with_a_brute_force_count():
    rng = np.random.default_rng(3)
    k, n = 8, 200
    classes, images = _unit(rng, k, 6), _unit(rng, n, 6)
    labels = rng.integers(0, k, size=n)
    labels[labels == 7] = 6  # class 7 has no images: its accuracy is nan
    r = zero_shot(images, labels, classes, k=(1, 3, 5))
    s = images @ classes.T
    order = np.argsort(-s, axis=1, kind="stable")
    for j in (1, 3, 5):
        assert r[f"top{j}"] == pytest.approx(np.mean([labels[i] in order[i, :j] for i in range(n)]))
    assert r["top1"] <= r["top3"] <= r["top5"]
    np.testing.assert_array_equal(r["predictions"], s.argmax(axis=1))
    assert r["top1"] == pytest.approx(np.mean(r["predictions"] == labels))
    assert r["confusion"].sum() == n
    np.testing.assert_array_equal(r["confusion"].sum(axis=1), np.bincount(labels, minlength=k))
    rows = r["confusion"].sum(axis=1)
    for c in range(k - 1):
        assert r["per_class"][c] == pytest.approx(r["confusion"][c, c] / rows[c])
    assert np.isnan(r["per_class"][7])
    assert r["top1"] == pytest.approx(sum(r["confusion"][c, c] for c in range(k)) / n)


def test_zero_shot_ties_break_like_argmax():
    classes = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])  # classes 0 and 1 are the same vector
    images = np.array([[1.0, 0.0], [1.0, 0.0]])
    r = zero_shot(images, np.array([0, 1]), classes, k=(1, 2))
    np.testing.assert_array_equal(r["predictions"], [0, 0])
    assert r["top1"] == 0.5 and r["top2"] == 1.0  # class 1 ranks second, behind its twin


def test_zero_shot_rejects_bad_labels_and_shapes():
    classes, images = np.eye(3), np.eye(3)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        zero_shot(images, np.array([0, 1, 3]), classes)
    with pytest.raises(ValueError, match="3 integers"):
        zero_shot(images, np.array([0, 1]), classes)
    with pytest.raises(ValueError, match="same d"):
        zero_shot(images, np.array([0, 1, 2]), np.eye(3, 4))


def test_evaluate_zero_shot_reports_every_template_set_and_held_out_classes(clip):
    model, tokenizer = clip
    train_labels = np.array([0, 1, 2, 0, 1, 2], dtype=np.int64)
    test_labels = np.array([0, 1, 2, 3, 3, 0, 3], dtype=np.int64)
    data = ImageTextDataset(
        name="tiny",
        class_names=NAMES,
        train_images=_images(4, 6),
        train_labels=train_labels,
        test_images=_images(5, 7),
        test_labels=test_labels,
        train_templates=TEMPLATES,
        heldout_classes=[3],
    )
    sets = {"one template": TEMPLATES[:1], "ensemble": TEMPLATES}
    results = evaluate_zero_shot(model, tokenizer, data, normalize, L, sets)
    assert list(results) == list(sets)
    for r in results.values():
        assert r["confusion"].shape == (4, 4) and r["n"] == 7
        assert r["heldout"]["n"] == 3 and r["seen"]["n"] == 4
        for key in ("top1", "top5"):  # the two parts make up the whole
            assert 3 * r["heldout"][key] + 4 * r["seen"][key] == pytest.approx(7 * r[key])
        held = test_labels == 3
        assert r["heldout"]["top1"] == pytest.approx(np.mean(r["predictions"][held] == 3))
    table = accuracy_table(results)
    assert set(table["ensemble"]) == {"top1", "top5", "heldout_top1", "heldout_top5", "seen_top1", "seen_top5"}
    assert table["ensemble"]["top1"] == results["ensemble"]["top1"]

    # Embeddings encoded beforehand are used as they are, and give the same results; a wrong count is refused.
    embeddings = encode_images(model, data.test_images, normalize, flip_average=True)  # (7, d)
    given = evaluate_zero_shot(model, tokenizer, data, normalize, L, sets, image_embeddings=embeddings)
    flipped = evaluate_zero_shot(model, tokenizer, data, normalize, L, sets, flip_average=True)
    for name in sets:
        np.testing.assert_array_equal(given[name]["ranks"], flipped[name]["ranks"])
        assert given[name]["top1"] == flipped[name]["top1"]
    with pytest.raises(ValueError, match="6 rows for 7 test images"):
        evaluate_zero_shot(model, tokenizer, data, normalize, L, sets, image_embeddings=embeddings[:6])


# --- retrieval --------------------------------------------------------------------------------------------------------
def _brute_recall(queries, items, labels, k):
    s = queries @ items.T
    order = np.argsort(-s, axis=1, kind="stable")[:, :k]
    if labels is None:
        return np.mean([i in order[i] for i in range(len(queries))])
    return np.mean([labels[i] in labels[order[i]] for i in range(len(queries))])


def test_recall_of_identical_embeddings_is_one_and_of_reversed_pairs_is_low():
    rng = np.random.default_rng(6)
    images = _unit(rng, 20, 8)
    r = recall_at_k(images, images.copy())
    assert all(v == 1.0 for d in r.values() for v in d.values())
    assert set(r["text_to_image"]) == {"R@1", "R@5", "R@10"}
    reversed_ = recall_at_k(images, images[::-1].copy())  # caption i describes image N-1-i
    assert reversed_["text_to_image"]["R@1"] == 0.0 and reversed_["image_to_text"]["R@1"] == 0.0
    assert reversed_["text_to_image"]["R@10"] < 1.0


def test_chunked_recall_equals_unchunked_and_brute_force():
    rng = np.random.default_rng(7)
    n = 30
    images = _unit(rng, n, 5).astype(np.float32)
    texts = (images + 0.8 * _unit(rng, n, 5)).astype(np.float32)
    texts /= np.linalg.norm(texts, axis=1, keepdims=True)
    labels = rng.integers(0, 4, size=n)
    whole = recall_at_k(images, texts, ks=(1, 3, 10), labels=labels, chunk=10_000)
    for chunk in (1, 7):
        assert recall_at_k(images, texts, ks=(1, 3, 10), labels=labels, chunk=chunk) == whole
    for k in (1, 3, 10):
        assert whole["text_to_image"][f"R@{k}"] == pytest.approx(_brute_recall(texts, images, None, k))
        assert whole["image_to_text"][f"R@{k}"] == pytest.approx(_brute_recall(images, texts, None, k))
        assert whole["text_to_image_class"][f"R@{k}"] == pytest.approx(_brute_recall(texts, images, labels, k))
        assert whole["image_to_text_class"][f"R@{k}"] == pytest.approx(_brute_recall(images, texts, labels, k))
        assert whole["text_to_image_class"][f"R@{k}"] >= whole["text_to_image"][f"R@{k}"]
        assert whole["image_to_text_class"][f"R@{k}"] >= whole["image_to_text"][f"R@{k}"]


def test_class_aware_recall_forgives_identical_captions():
    rng = np.random.default_rng(8)
    labels = np.repeat(np.arange(3), 4)  # 12 images, 4 per class
    class_vectors = _unit(rng, 3, 6)
    texts = class_vectors[labels]  # every caption of a class is the same sentence
    images = class_vectors[labels] + 0.1 * _unit(rng, 12, 6)
    images /= np.linalg.norm(images, axis=1, keepdims=True)
    r = recall_at_k(images, texts, ks=(1,), labels=labels)
    assert r["text_to_image_class"]["R@1"] == 1.0 and r["image_to_text_class"]["R@1"] == 1.0
    assert r["image_to_text"]["R@1"] == pytest.approx(3 / 12)  # ties: only the first caption of a class wins
    assert r["text_to_image"]["R@1"] < 1.0


def test_recall_directions_are_named_like_the_loss_directions():
    """text_to_image: each caption ranks the images, a row of T·Iᵀ (the loss's text→image softmax, p_rows)."""
    from miniclip.layers import ContrastiveLoss

    def at(*degrees: float) -> np.ndarray:  # unit vectors in the plane
        a = np.radians(degrees)
        return np.stack([np.cos(a), np.sin(a)], axis=1)  # (3, 2)

    texts, images = at(0, 40, 90), at(-20, 30, 60)  # caption 2 is closer to image 2, image 2 to caption 1
    head = ContrastiveLoss()
    head(texts @ images.T)  # (3, 3) logits, one row per caption
    rows_right = float(np.mean(head.p_rows.argmax(axis=1) == np.arange(3)))  # each caption's best image
    cols_right = float(np.mean(head.p_cols.argmax(axis=0) == np.arange(3)))  # each image's best caption
    assert rows_right == 1.0 and cols_right == pytest.approx(2 / 3)  # the two directions differ here
    r = recall_at_k(images, texts, ks=(1,))
    assert r["text_to_image"]["R@1"] == rows_right
    assert r["image_to_text"]["R@1"] == pytest.approx(cols_right)


def test_recall_rejects_unpaired_embeddings():
    with pytest.raises(ValueError, match="paired"):
        recall_at_k(np.eye(4), np.eye(3, 4))
    with pytest.raises(ValueError, match="4 integers"):
        recall_at_k(np.eye(4), np.eye(4), labels=np.array([0, 1]))


# --- figures ----------------------------------------------------------------------------------------------------------
def _is_lonely_png(path, folder):
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 1000
    assert [p.name for p in folder.iterdir()] == [path.name]  # no temporary file left behind


def test_each_plot_writes_one_png_and_nothing_else(tmp_path):
    rng = np.random.default_rng(9)
    metrics = [
        {"epoch": 1, "train_loss": 2.3, "zero_shot": {"one": 0.2, "ensemble": {"top1": 0.25, "heldout_top1": 0.1}}},
        {"epoch": 2, "train_loss": 2.0, "test_loss": 2.1},
        {"epoch": 3, "train_loss": 1.7, "zero_shot": {"one": 0.3, "ensemble": {"top1": 0.35, "heldout_top1": 0.2}}},
    ]
    images = _images(10, 5)
    embs = _unit(rng, 5, 4)
    calls = {
        "curves": lambda p: plot_curves(metrics, p),
        "confusion": lambda p: plot_confusion(rng.integers(0, 30, size=(4, 4)), NAMES, p),
        "similarity": lambda p: plot_similarity(embs, _unit(rng, 3, 4), images, ["a cat", "a dog", "a ship"], p),
        "grid": lambda p: plot_image_grid(images[:, :1], [f"#{i}: 0.{i}" for i in range(5)], p, ncols=3),  # grey
    }
    for name, draw in calls.items():
        folder = tmp_path / name
        folder.mkdir()
        path = draw(folder / f"{name}.png")
        assert path == folder / f"{name}.png"
        _is_lonely_png(path, folder)
    assert _accuracy(0.3) == 0.3 and _accuracy(0.3, "heldout_top1") is None  # a bare number is a top-1
    assert _accuracy({"top1": 0.2, "heldout_top1": 0.1}, "heldout_top1") == 0.1


def test_plots_reject_mismatched_inputs(tmp_path):
    with pytest.raises(ValueError, match=r"\(3, 3\)"):
        plot_confusion(np.eye(4, dtype=np.int64), ["a", "b", "c"], tmp_path / "c.png")
    with pytest.raises(ValueError, match="one embedding per image"):
        plot_similarity(np.eye(2), np.eye(2), _images(0, 3), ["x", "y"], tmp_path / "s.png")
    with pytest.raises(ValueError, match="train_loss"):
        plot_curves([{"epoch": 1}], tmp_path / "l.png")
    assert list(tmp_path.iterdir()) == []


# --- classify and search ----------------------------------------------------------------------------------------------
def test_classify_images_gives_sorted_probabilities_that_sum_to_one(clip, tmp_path):
    model, tokenizer = clip
    rng = np.random.default_rng(11)
    Image.fromarray(rng.integers(0, 256, size=(12, 9, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(rng.integers(0, 256, size=(5, 7), dtype=np.uint8), mode="L").save(tmp_path / "b.png")  # grey
    paths = [tmp_path / "a.png", str(tmp_path / "b.png")]
    out = classify_images(model, tokenizer, paths, NAMES, TEMPLATES, SIZE, normalize, L)
    assert len(out) == 2
    for ranking in out:
        probs = [p for _, p in ranking]
        assert sorted(label for label, _ in ranking) == sorted(NAMES)
        assert sum(probs) == pytest.approx(1.0, abs=1e-5)
        assert probs == sorted(probs, reverse=True) and all(p > 0 for p in probs)


def test_classify_images_names_a_missing_or_unreadable_file(clip, tmp_path):
    model, tokenizer = clip
    Image.fromarray(np.zeros((4, 4, 3), dtype=np.uint8)).save(tmp_path / "ok.png")
    (tmp_path / "junk.png").write_bytes(b"this is not a picture")
    args = (NAMES, TEMPLATES, SIZE, normalize, L)
    with pytest.raises(FileNotFoundError, match="missing.jpg"):
        classify_images(model, tokenizer, [tmp_path / "ok.png", tmp_path / "missing.jpg"], *args)
    with pytest.raises(ValueError, match="junk.png"):
        classify_images(model, tokenizer, [tmp_path / "junk.png"], *args)
    with pytest.raises(ValueError, match="distinct"):
        classify_images(model, tokenizer, [tmp_path / "ok.png"], ["cat", "cat"], *args[1:])


def test_search_returns_the_best_images_in_falling_order(clip):
    model, tokenizer = clip
    images = _images(12, 9)
    indices, scores = search_images(model, tokenizer, "a dog on a ship", images, normalize, L, top=4)
    assert indices.shape == (4,) and scores.shape == (4,) and len(set(indices.tolist())) == 4
    assert np.all(np.diff(scores) <= 0)
    everything = encode_images(model, images, normalize) @ encode_texts(model, tokenizer, ["a dog on a ship"], L)[0]
    np.testing.assert_allclose(scores, np.sort(everything)[::-1][:4], atol=1e-6)
    np.testing.assert_allclose(everything[indices], scores, atol=1e-6)
    embs = encode_images(model, images, normalize)
    again, _ = search_images(model, tokenizer, "a dog on a ship", images, normalize, L, top=50, image_embeddings=embs)
    assert again.shape == (9,) and again[:4].tolist() == indices.tolist()
    with pytest.raises(ValueError, match="at least one word"):
        search_images(model, tokenizer, "  !", images, normalize, L)
    assert unknown_words(tokenizer, "a zebra on a ship") == ["zebra"]


# --- GPU ------------------------------------------------------------------------------------------------------------
@pytest.mark.gpu
def test_zero_shot_recall_and_search_on_the_gpu_match_the_cpu(clip):
    from miniclip import backend

    rng = np.random.default_rng(13)
    classes, images = _unit(rng, 5, 6).astype(np.float32), _unit(rng, 40, 6).astype(np.float32)
    texts = _unit(rng, 40, 6).astype(np.float32)
    labels = rng.integers(0, 5, size=40)
    cpu = zero_shot(images, labels, classes)
    cpu_recall = recall_at_k(images, texts, labels=labels, chunk=16)
    model, tokenizer = clip
    pictures = _images(14, 9)
    cpu_search = search_images(model, tokenizer, "a dog on a ship", pictures, normalize, L, top=3)
    with backend.using("gpu"):
        gpu = zero_shot(backend.to_device(images), labels, backend.to_device(classes))
        gpu_recall = recall_at_k(backend.to_device(images), backend.to_device(texts), labels=labels, chunk=16)
        gpu_model = build_clip(_tiny(tokenizer), rng=np.random.default_rng(0))
        gpu_search = search_images(gpu_model, tokenizer, "a dog on a ship", pictures, normalize, L, top=3)
    assert isinstance(gpu["confusion"], np.ndarray) and isinstance(gpu_search[0], np.ndarray)
    np.testing.assert_array_equal(gpu["confusion"], cpu["confusion"])
    assert gpu["top1"] == cpu["top1"] and gpu["top5"] == cpu["top5"]
    assert gpu_recall == cpu_recall
    np.testing.assert_allclose(gpu_search[1], cpu_search[1], atol=1e-4)
