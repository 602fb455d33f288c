"""The word-level tokenizer: vocabulary, encoding, padding, truncation, JSON files."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from miniclip.layers.end_token_pool import end_positions
from miniclip.model.tokenizer import END, PAD, SPECIALS, START, UNK, Tokenizer, words

CORPUS = [
    "A dog runs on the grass.",
    "The dog, a brown one, sleeps!",
    "a cat sleeps on the mat",
    "Two birds (blue) fly over the sea",
]


def test_words_lower_case_and_drop_punctuation() -> None:
    assert words("A dog's ball, (RED)!  2 times...") == ["a", "dog", "s", "ball", "red", "2", "times"]
    assert words("snake_case café") == ["snake", "case", "café"]  # underscores split; any script's letters
    assert words("  ...!? ") == []


def test_special_tokens_come_first() -> None:
    tok = Tokenizer.build(CORPUS)
    assert tok.tokens[:4] == list(SPECIALS)
    assert (PAD, UNK, START, END) == (0, 1, 2, 3)
    assert tok.ids["<pad>"] == 0


def test_vocabulary_order_is_frequency_then_alphabetical() -> None:
    tok = Tokenizer.build(["b a c c", "c b d", "a e"])
    # counts: c 3; a 2, b 2; d 1, e 1 → ties broken alphabetically
    assert tok.tokens[4:] == ["c", "a", "b", "d", "e"]
    assert Tokenizer.build(["c b d", "a e", "b a c c"]).tokens == tok.tokens  # order of captions does not matter


def test_min_count_and_max_size() -> None:
    captions = ["b a c c", "c b d", "a e"]
    assert Tokenizer.build(captions, min_count=2).tokens[4:] == ["c", "a", "b"]
    capped = Tokenizer.build(captions, max_size=6)
    assert capped.vocab_size == 6 and capped.tokens[4:] == ["c", "a"]
    with pytest.raises(ValueError, match="min_count"):
        Tokenizer.build(captions, min_count=0)
    with pytest.raises(ValueError, match="max_size"):
        Tokenizer.build(captions, max_size=3)
    with pytest.raises(ValueError, match="list"):
        Tokenizer.build("a single string")


def test_encode_decode_round_trip() -> None:
    tok = Tokenizer.build(CORPUS)
    ids = tok.encode("The dog sleeps on the grass!")
    assert ids[0] == START and ids[-1] == END and len(ids) == 8
    assert tok.decode(ids) == "the dog sleeps on the grass"
    for caption in CORPUS:
        assert tok.decode(tok.encode(caption)) == " ".join(words(caption))


def test_unknown_words_map_to_unk() -> None:
    tok = Tokenizer.build(CORPUS)
    ids = tok.encode("a zebra runs <end> quickly")  # "<end>" in text is just the word "end", unknown here
    assert "end" not in tok.ids
    assert ids == [START, tok.ids["a"], UNK, tok.ids["runs"], UNK, UNK, END]
    assert tok.decode(ids) == "a <unk> runs <unk> <unk>"
    assert tok.encode("") == [START, END]


def test_encode_batch_pads_and_masks() -> None:
    tok = Tokenizer.build(CORPUS)
    ids, mask = tok.encode_batch(["a dog runs", "", "the cat sleeps on the mat"], context_length=9)
    assert ids.shape == (3, 9) and ids.dtype == np.int64
    assert mask.shape == (3, 9) and mask.dtype == np.float32
    np.testing.assert_array_equal(ids[0], [START, tok.ids["a"], tok.ids["dog"], tok.ids["runs"], END, 0, 0, 0, 0])
    np.testing.assert_array_equal(ids[1], [START, END] + [PAD] * 7)
    np.testing.assert_array_equal(mask.sum(axis=1), [5, 2, 8])
    np.testing.assert_array_equal(mask, (np.arange(9) < mask.sum(axis=1, keepdims=True)).astype(np.float32))
    assert np.all(ids[mask == 0] == PAD) and np.all(ids[mask == 1] != PAD)
    # the text transformer's end-token pool finds each <end> from the mask alone
    np.testing.assert_array_equal(end_positions(mask), [4, 1, 7])
    np.testing.assert_array_equal(ids[np.arange(3), end_positions(mask)], END)


def test_truncation_keeps_start_and_end() -> None:
    tok = Tokenizer.build(CORPUS)
    caption = "two birds fly over the sea"  # 6 words → 8 tokens
    ids, mask = tok.encode_batch([caption], context_length=5)
    assert ids[0].tolist() == [START, tok.ids["two"], tok.ids["birds"], tok.ids["fly"], END]
    assert mask.min() == 1.0 and end_positions(mask).tolist() == [4]
    assert tok.decode(ids[0]) == "two birds fly"
    ids, _ = tok.encode_batch([caption], context_length=2)
    assert ids.tolist() == [[START, END]]
    ids, _ = tok.encode_batch([caption], context_length=8)  # fits exactly
    assert ids[0].tolist() == tok.encode(caption)


def test_bad_context_length_and_inputs() -> None:
    tok = Tokenizer.build(CORPUS)
    for bad in (1, 0, -3):
        with pytest.raises(ValueError, match="context_length"):
            tok.encode_batch(["a dog"], context_length=bad)
    with pytest.raises(ValueError, match="list of captions"):
        tok.encode_batch("a dog", context_length=4)
    with pytest.raises(ValueError, match="must be a str"):
        tok.encode_batch(["a dog", None], context_length=4)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tok.decode([2, tok.vocab_size, 3])


def test_empty_batch() -> None:
    ids, mask = Tokenizer.build(CORPUS).encode_batch([], context_length=4)
    assert ids.shape == (0, 4) and mask.shape == (0, 4)


def test_json_round_trip(tmp_path) -> None:
    tok = Tokenizer.build(CORPUS + ["un café noir"])
    path = tmp_path / "vocab.json"
    tok.save(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["format"] == "miniclip-tokenizer" and data["version"] == 1
    loaded = Tokenizer.load(path)
    assert loaded.tokens == tok.tokens and loaded.vocab_size == tok.vocab_size
    batch = ["the café dog", "a zebra"]
    for a, b in zip(tok.encode_batch(batch, 6), loaded.encode_batch(batch, 6), strict=True):
        np.testing.assert_array_equal(a, b)
    assert os.listdir(tmp_path) == ["vocab.json"]  # no temporary file left behind
    tok.save(str(path))  # overwrite in place, path as str
    assert Tokenizer.load(str(path)).tokens == tok.tokens


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json at all {", "not valid JSON"),
        (b"\xff\xfe\x00binary", "not valid JSON"),
        ("[1, 2, 3]", "not a miniclip tokenizer"),
        ('{"format": "something-else", "version": 1, "tokens": []}', "not a miniclip tokenizer"),
        ('{"format": "miniclip-tokenizer", "version": 99, "tokens": []}', "version 99"),
        ('{"format": "miniclip-tokenizer", "version": 1, "tokens": "abc"}', "list of strings"),
        ('{"format": "miniclip-tokenizer", "version": 1, "tokens": ["a", "b"]}', "special tokens"),
        (json.dumps({"format": "miniclip-tokenizer", "version": 1, "tokens": [*SPECIALS, "a", "a"]}), "repeats"),
        (json.dumps({"format": "miniclip-tokenizer", "version": 1, "tokens": [*SPECIALS, 5]}), "str"),
    ],
)
def test_load_rejects_bad_files(tmp_path, content: str | bytes, message: str) -> None:
    path = tmp_path / "bad.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        Tokenizer.load(path)


def test_load_missing_file_raises_file_not_found(tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        Tokenizer.load(tmp_path / "nope.json")
