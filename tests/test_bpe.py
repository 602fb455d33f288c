"""CLIP's byte-pair tokenizer: the same ids as open_clip (OpenAI's code) on 10,000+ strings, files, BPE training.

The reference is open_clip's ``tokenizer.py`` (OpenAI's tokenizer, copied), loaded by path so that
``import open_clip`` (which pulls in much more) need not work. The reference tests skip, saying
why, where open_clip, ftfy or torch is missing; the other tests run everywhere.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from miniclip.data.captions import CLIP_CIFAR10_TEMPLATES, SHAPES_TEMPLATES, TRAIN_TEMPLATES, UNSEEN_TEMPLATES
from miniclip.model.bpe import (
    END,
    FTFY,
    NUM_MERGES,
    START,
    WITHOUT_FTFY,
    BPETokenizer,
    bytes_to_unicode,
    clean,
    pre_tokenize,
)
from miniclip.model.bpe_training import learn_merges, merge_pair, piece_symbols

CIFAR10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

# ---------------------------------------------------------------- the strings compared with the reference


def _words(text: str) -> list[str]:
    """The space-separated words of ``text`` (a long list is easier to read as one string)."""
    return text.split()


COMMON = _words(
    "a the of and in on with photo picture image dog cat bird frog horse ship truck deer airplane car red blue green "
    "small big old new man woman child runs sits near over under street house tree sky water two three many"
)
RARE = _words("axolotl quokka xylophone zeugma pangolin ocelot sesquipedalian floccinaucinihilipilification bokeh")
ACCENTED = _words(
    "café naïve résumé façade Ærøskøbing straße İstanbul Łódź São Ñandú crème brûlée Zürich Dvořák smörgåsbord "
    "ĲSSEL ﬁnance ﬂower cafe\u0301 Ångström œuvre ÉCOLE ſtraſſe"
)
SCRIPTS = _words(
    "καλημέρα κόσμε Ελλάδα ΑΘΗΝΑ ΟΔΟΣ γάτα σκύλος Σίσυφος кошка собака Москва ПРИВЕТ мир ёлка Україна їжак "
    "猫 狗 一只猫的照片 東京 北京市 漢字 ひらがな カタカナ 한국어 고양이 ｆｕｌｌｗｉｄｔｈ مرحبا بالعالم قطة مَرْحَبًا "
    "العربية नमस्ते दुनिया बिल्ली कुत्ता हिन्दी क्षत्रिय שלום עולם สวัสดีครับ ქართული Հայերեն"
)
EMOJI = _words(  # \u200d joins emoji into one picture (ZWJ sequence), \ufe0f asks for the emoji form
    "🐱 🐶 😀 👍 👍🏽 ✌🏻 👨\u200d👩\u200d👧\u200d👦 🏳\ufe0f\u200d🌈 🇫🇷 🇯🇵 ❤\ufe0f 🧑🏿\u200d🚀 🤷\u200d♀\ufe0f "
    "1\ufe0f\u20e3 #\ufe0f\u20e3 🐈\u200d⬛ 👩🏼\u200d🦰 ☕ ™ © ®"
)
HTML = _words(
    "&amp; &lt; &gt; &quot; &#39; &#x27; &amp;amp; &amp;amp;amp; &amp;lt;b&amp;gt; &lt;br/&gt; &nbsp; &copy; "
    "&eacute; &#233; &#x1F431; &bogus; &#; &#9999999999; &amp &lt3 &#0; &#128512;"
)
CONTRACTIONS = _words(
    "don't I'M it'S WE'LL they're you've he'd o'clock 'n' 'tis ''s 'S'T ’s don’t 'ſ ʼs can'T Y'ALL "
    "rock'n'roll 'RE 'VE 'D 'M 'Ll 'LL' l'homme"
)
MOJIBAKE = ["cafÃ©", "â€œquotedâ€\x9d", "Ã¼ber", "seÃ±or", "Ã\xa0 la carte", "donâ€™t", "Ã¢â‚¬Å“"]
PUNCTUATION = list(".,;:!?-—–…()[]{}<>/\\|@#$%^&*_+=~`\"'«»¿¡§¶•")
SPACES = [" ", "  ", "\t", "\n", "\r\n", "\x0b", "\x0c", "\xa0", "\u3000", "\u2028", "\u2009", "\x1c", "\x85", " \t\n "]
BLOCKS = [  # (first, last) code points to draw random characters from; no surrogates
    (0x20, 0x7E),
    (0x00, 0x1F),
    (0xA0, 0x24F),
    (0x300, 0x36F),
    (0x370, 0x3FF),
    (0x400, 0x4FF),
    (0x590, 0x5FF),
    (0x600, 0x6FF),
    (0x900, 0x97F),
    (0x2000, 0x206F),
    (0x2190, 0x22FF),
    (0x3040, 0x30FF),
    (0x4E00, 0x9FFF),
    (0xAC00, 0xD7A3),
    (0xE000, 0xE0FF),
    (0xFE00, 0xFE0F),
    (0xFF00, 0xFFFF),
    (0x10000, 0x1007F),
    (0x1D400, 0x1D7FF),
    (0x1F300, 0x1FAFF),
]


def _pick(rng: np.random.Generator, items: list[str]) -> str:
    return items[int(rng.integers(len(items)))]


def _number(rng: np.random.Generator) -> str:
    kind = int(rng.integers(10))
    n = int(rng.integers(0, 10 ** int(rng.integers(1, 12))))
    return [
        str(n),
        f"-{n}",
        f"{n}.{int(rng.integers(1000))}",
        f"-{rng.random() * 100:.3f}",
        f"{n:,}",
        f"{rng.random():.2e}",
        f"{int(rng.integers(100))}%",
        f"${n % 1000}.99",
        f"{int(rng.integers(24)):02d}:{int(rng.integers(60)):02d}",
        _pick(rng, ["½", "²", "⅔", "Ⅻ", "٣٤٥", "०१२", "𝟙𝟚", "¹⁰", "3rd", "1st", "2nd", "x2", "v1.0.3", "1/2"]),
    ][kind]


def _word(rng: np.random.Generator) -> str:
    pool = [COMMON, COMMON, COMMON, RARE, ACCENTED, SCRIPTS, CONTRACTIONS][int(rng.integers(7))]
    word = _pick(rng, pool)
    case = int(rng.integers(6))
    return word.upper() if case == 0 else word.title() if case == 1 else word


def _sentence(rng: np.random.Generator, length: int) -> str:
    words = []
    for _ in range(length):
        r = rng.random()
        words.append(_number(rng) if r < 0.1 else _pick(rng, PUNCTUATION) if r < 0.2 else _word(rng))
    return " ".join(words) + _pick(rng, [".", "!", "?", "", "...", "!?"])


def _random_chars(rng: np.random.Generator, length: int) -> str:
    first, last = BLOCKS[int(rng.integers(len(BLOCKS)))]
    return "".join(chr(int(c)) for c in rng.integers(first, last + 1, size=length))


def parity_strings(seed: int = 0) -> list[str]:
    """12,000-odd test strings, the same every run: captions, scripts, emoji, entities, numbers, noise."""
    rng = np.random.default_rng(seed)
    templates = CLIP_CIFAR10_TEMPLATES + TRAIN_TEMPLATES + UNSEEN_TEMPLATES + SHAPES_TEMPLATES
    captions = [t.replace("{}", name) for t in templates for name in CIFAR10]
    out = captions + [c.upper() for c in captions] + [c.title() for c in captions]
    out += ["", " ", "\t\n", "   \n\n\t ", ".", "'", "''", "&", "&amp;", "\x00", "\u200d", "\ufeff", "a" * 300]
    pools = [COMMON, RARE, ACCENTED, SCRIPTS, EMOJI, HTML, CONTRACTIONS, MOJIBAKE, PUNCTUATION]
    everything = [w for pool in pools for w in pool]
    for _ in range(1500):
        out.append(_sentence(rng, int(rng.integers(1, 15))))  # sentences with punctuation
        out.append(" ".join(_number(rng) for _ in range(int(rng.integers(1, 5)))))  # numbers
        out.append(" ".join(_pick(rng, SCRIPTS + ACCENTED) for _ in range(int(rng.integers(1, 6)))))  # scripts
        out.append(f"{_word(rng)}{_pick(rng, CONTRACTIONS)} {_word(rng)}")  # apostrophes glued to words
        out.append(_pick(rng, SPACES).join(_pick(rng, EMOJI + COMMON) for _ in range(int(rng.integers(1, 5)))))
        out.append(f"{_word(rng)} {_pick(rng, HTML)}{_word(rng)} {_pick(rng, HTML)}")  # HTML entities
        out.append(_random_chars(rng, int(rng.integers(1, 20))))  # random code points from one block
        mixed = [_pick(rng, everything) for _ in range(int(rng.integers(2, 8)))]
        out.append("".join(f"{_pick(rng, SPACES + [''])}{m}" for m in mixed))  # mixed, odd whitespace
    for _ in range(200):
        out.append(_sentence(rng, int(rng.integers(60, 200))))  # longer than 77 tokens
        out.append(_pick(rng, MOJIBAKE) + " " + _sentence(rng, 3))  # broken text ftfy repairs
    specials = ("startoftext", "endoftext", "start_of_text", "end_of_text")  # spelt specials differ (see below)
    return [s for s in out if not any(name in s.lower() for name in specials)]


# ---------------------------------------------------------------- the reference and our tokenizers


@pytest.fixture(scope="module")
def reference() -> ModuleType:
    """open_clip's tokenizer.py, loaded by path (``import open_clip`` itself may fail)."""
    pytest.importorskip("ftfy", reason="the reference tokenizer needs ftfy (pip install ftfy)")
    pytest.importorskip("torch", reason="the reference tokenizer returns torch tensors (pip install torch)")
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("open_clip is not installed (pip install --no-deps open_clip_torch): no reference tokenizer")
    path = Path(next(iter(spec.submodule_search_locations))) / "tokenizer.py"
    module_spec = importlib.util.spec_from_file_location("open_clip_reference_tokenizer", path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def openai_file(reference: ModuleType) -> Path:
    """OpenAI's merges file, as open_clip ships it."""
    return Path(reference.default_bpe())


@pytest.fixture(scope="module")
def clip(openai_file: Path) -> BPETokenizer:
    return BPETokenizer.from_openai_vocab(openai_file)


@pytest.fixture(scope="module")
def strings() -> list[str]:
    return parity_strings()


@pytest.fixture(scope="module")
def our_ids(clip: BPETokenizer, strings: list[str]) -> np.ndarray:
    return clip.encode_batch(strings, 77)[0]


@pytest.fixture(scope="module")
def hf_folder(reference: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """vocab.json and merges.txt laid out as Hugging Face's CLIP folders are, from the reference's tables."""
    ref = reference.SimpleTokenizer()
    rename = {"<start_of_text>": START, "<end_of_text>": END}  # open_clip's names for OpenAI's special tokens
    vocab = {rename.get(token, token): i for token, i in ref.encoder.items()}
    merges = sorted(ref.bpe_ranks, key=ref.bpe_ranks.__getitem__)
    folder = tmp_path_factory.mktemp("hf_clip")
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    lines = ["#version: 0.2", *(f"{a} {b}" for a, b in merges)]
    (folder / "merges.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


CORPUS = [
    "the cat sat on the mat",
    "a photo of a cat.",
    "a photo of the dog",
    "a blurry photo of a frog",
    "a photo of a small cat on a mat",
]


@pytest.fixture(scope="module")
def learned() -> BPETokenizer:
    """A small tokenizer learned from CORPUS: no download, no reference needed."""
    return BPETokenizer.from_merges(learn_merges(CORPUS, 200))


# ---------------------------------------------------------------- parity with OpenAI's tokenizer


@pytest.mark.torch
def test_same_ids_as_open_clip_on_ten_thousand_strings(
    reference: ModuleType, strings: list[str], our_ids: np.ndarray
) -> None:
    assert len(strings) >= 10_000
    theirs = reference.SimpleTokenizer()(strings, context_length=77).numpy()  # one batched call
    assert our_ids.shape == theirs.shape == (len(strings), 77) and our_ids.dtype == np.int64
    bad = np.flatnonzero((our_ids != theirs).any(axis=1))
    examples = [(strings[i], our_ids[i][:12].tolist(), theirs[i][:12].tolist()) for i in bad[:3]]
    assert bad.size == 0, f"{bad.size} of {len(strings)} strings differ from open_clip, e.g. {examples}"


@pytest.mark.torch
def test_the_strings_cover_what_they_should(strings: list[str], our_ids: np.ndarray, clip: BPETokenizer) -> None:
    lengths = (our_ids != 0).sum(axis=1)
    assert (our_ids[:, 76] == clip.end_id).sum() > 100  # many were truncated
    assert (lengths == 2).sum() >= 5  # empty after cleaning: start and end only
    assert "" in strings and any("&amp;amp;" in s for s in strings) and any("\u200d" in s for s in strings)


@pytest.mark.torch
def test_hf_folder_gives_the_same_tokenizer(
    hf_folder: Path, clip: BPETokenizer, strings: list[str], our_ids: np.ndarray
) -> None:
    hf = BPETokenizer.from_hf_folder(hf_folder)
    assert hf.tokens == clip.tokens and hf.merges == clip.merges and len(hf.merges) == NUM_MERGES
    assert np.array_equal(hf.encode_batch(strings[:3000], 77)[0], our_ids[:3000])


@pytest.mark.torch
def test_same_ids_as_transformers(hf_folder: Path, clip: BPETokenizer) -> None:
    transformers = pytest.importorskip("transformers", reason="compares with transformers.CLIPTokenizer")
    if not FTFY:  # the slow CLIPTokenizer then falls back to a BERT basic tokenizer
        pytest.skip(WITHOUT_FTFY)
    hf = transformers.CLIPTokenizer.from_pretrained(str(hf_folder))
    rng = np.random.default_rng(1)  # plain strings: no HTML entities, no text ftfy would change
    plain = [f"{t.replace('{}', name)}" for t in CLIP_CIFAR10_TEMPLATES for name in CIFAR10]
    plain += [
        " ".join(_pick(rng, COMMON + RARE + PUNCTUATION[:8]) for _ in range(int(rng.integers(1, 90))))
        for _ in range(200)
    ]
    plain += ["Don't  STOP, it's 3.14 -- 2024!", "a cat<|endoftext|>a dog", "", "  spaced   out  "]
    theirs = hf(plain, truncation=True, max_length=77)["input_ids"]
    ours, mask = clip.encode_batch(plain, 77)
    for n, text in enumerate(plain):
        assert ours[n, : int(mask[n].sum())].tolist() == theirs[n], text


def test_spelt_special_tokens_are_special_tokens(clip: BPETokenizer) -> None:
    # As in OpenAI's tokenizer (and Hugging Face's): the text "<|endoftext|>" is the end token itself.
    # open_clip renamed its special tokens <start_of_text>/<end_of_text>, so there it is plain text.
    assert clip.encode("a cat <|endoftext|>") == [*clip.encode("a cat"), clip.end_id]


# ---------------------------------------------------------------- behaviour with OpenAI's vocabulary


def test_openai_vocabulary(clip: BPETokenizer) -> None:
    assert clip.vocab_size == 49408 and (clip.start_id, clip.end_id) == (49406, 49407)
    assert clip.tokens[0] == "!" and clip.tokens[256] == "!</w>" and clip.tokens[-2:] == [START, END]
    assert clip.encode("cat") == [2368] and len(clip.encode("a photo of a cat.")) == 6
    assert len(clip.encode("axolotl")) > 1  # a rare word: several frequent pieces
    assert clip.decode(clip.encode("axolotl")) == "axolotl"


def test_round_trip_of_clean_text(clip: BPETokenizer) -> None:
    for text in ["a photo of a cat", "café au lait à paris", "кошка и собака", "一只猫 的 照片", "axolotl 🐱 bokeh"]:
        assert clip.decode(clip.encode(text)) == text
        assert clip.decode(clip.encode_batch([text])[0][0]) == text  # start, end and padding dropped


def test_truncation_keeps_the_end_token_last(clip: BPETokenizer) -> None:
    ids, mask = clip.encode_batch(["cat " * 100, "cat"], context_length=10)
    assert ids[0].tolist() == [clip.start_id, *[2368] * 8, clip.end_id]
    assert mask[0].tolist() == [1.0] * 10
    assert ids[1].tolist() == [clip.start_id, 2368, clip.end_id, *[0] * 7]
    assert mask[1].tolist() == [1.0] * 3 + [0.0] * 7


# ---------------------------------------------------------------- the pieces


def test_bytes_to_unicode_is_a_visible_one_to_one_table() -> None:
    table = bytes_to_unicode()
    assert sorted(table) == list(range(256)) and len(set(table.values())) == 256
    assert table[ord("a")] == "a" and table[ord(" ")] == "Ġ" and table[ord("\n")] == "Ċ"
    assert all(c.isprintable() and not c.isspace() for c in table.values())
    assert list(table)[:3] == [ord("!"), ord('"'), ord("#")]  # printable bytes first: the vocabulary's order


def test_cleaning_and_pre_tokenizing() -> None:
    assert clean("  A&amp;amp;B \t\n C  ") == "a&b c"
    assert pre_tokenize("It'S 2024, naïve CAFÉ!!") == ["it", "'s", "2", "0", "2", "4", ",", "naïve", "café", "!!"]
    assert pre_tokenize("") == []
    with pytest.raises(ValueError, match="must be a str"):
        clean(b"bytes")  # type: ignore[arg-type]
    assert isinstance(FTFY, bool) and "ftfy" in WITHOUT_FTFY


# ---------------------------------------------------------------- batches, decoding, JSON (no reference needed)


def test_batch_shapes_mask_and_padding(learned: BPETokenizer) -> None:
    ids, mask = learned.encode_batch(["a photo of a cat", "", "cat"], context_length=12)
    assert ids.shape == mask.shape == (3, 12) and ids.dtype == np.int64 and mask.dtype == np.float32
    for row, m in zip(ids, mask, strict=True):
        end = row.tolist().index(learned.end_id)
        assert row[0] == learned.start_id and (row[end + 1 :] == 0).all()
        assert m.tolist() == [1.0] * (end + 1) + [0.0] * (11 - end)
    assert ids[1, :2].tolist() == [learned.start_id, learned.end_id]


def test_encode_batch_refuses_bad_arguments(learned: BPETokenizer) -> None:
    with pytest.raises(ValueError, match="not one string"):
        learned.encode_batch("a photo of a cat")
    with pytest.raises(ValueError, match="context_length"):
        learned.encode_batch(["cat"], context_length=1)
    with pytest.raises(ValueError, match="must be a str"):
        learned.encode(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="outside the vocabulary"):
        learned.decode([learned.vocab_size])


def test_to_dict_round_trip_is_strict_json(learned: BPETokenizer, tmp_path: Path) -> None:
    data = json.loads(json.dumps(learned.to_dict(), allow_nan=False))
    again = BPETokenizer.from_dict(data)
    assert again.tokens == learned.tokens and again.merges == learned.merges
    assert np.array_equal(again.encode_batch(CORPUS)[0], learned.encode_batch(CORPUS)[0])
    learned.save(tmp_path / "bpe.json")
    assert BPETokenizer.load(tmp_path / "bpe.json").tokens == learned.tokens
    with pytest.raises(ValueError, match="not a miniclip BPE tokenizer"):
        BPETokenizer.from_dict({"format": "miniclip-tokenizer", "version": 1, "tokens": []})
    with pytest.raises(ValueError, match="version 2"):
        BPETokenizer.from_dict({**data, "version": 2})
    with pytest.raises(ValueError, match="merge 0: a merge must be two symbols"):
        BPETokenizer.from_dict({**data, "merges": ["a b c"]})
    with pytest.raises(ValueError, match="merge 1 must be a pair"):
        BPETokenizer.from_merges([("a", "b"), 3])  # type: ignore[list-item]
    with pytest.raises(ValueError, match=r"no <\|endoftext\|> token"):
        BPETokenizer.from_dict({**data, "tokens": data["tokens"][:-1]})


# ---------------------------------------------------------------- bad files


def _gzip(path: Path, lines: list[str]) -> Path:
    path.write_bytes(gzip.compress("\n".join(lines).encode("utf-8")))
    return path


def test_bad_openai_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"missing\.txt\.gz: no such file"):
        BPETokenizer.from_openai_vocab(tmp_path / "missing.txt.gz")
    (tmp_path / "plain.txt.gz").write_text("#version: 0.2\na b\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"plain\.txt\.gz is not a gzip"):
        BPETokenizer.from_openai_vocab(tmp_path / "plain.txt.gz")
    with pytest.raises(ValueError, match=r"short\.txt\.gz holds 1 merge lines"):
        BPETokenizer.from_openai_vocab(_gzip(tmp_path / "short.txt.gz", ["#version: 0.2", "a b"]))
    lines = ["#version: 0.2", *["a b"] * NUM_MERGES]
    lines[5] = "a b c"
    with pytest.raises(ValueError, match=r"bad\.txt\.gz, line 6: a merge must be two symbols"):
        BPETokenizer.from_openai_vocab(_gzip(tmp_path / "bad.txt.gz", lines))


def test_bad_hf_folders_are_refused(tmp_path: Path, learned: BPETokenizer) -> None:
    vocab = {t: i for i, t in enumerate(learned.tokens)}
    merges = ["#version: 0.2", *(f"{a} {b}" for a, b in learned.merges)]
    (tmp_path / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    with pytest.raises(ValueError, match=r"merges\.txt: no such file"):
        BPETokenizer.from_hf_folder(tmp_path)
    (tmp_path / "merges.txt").write_text("\n".join(merges) + "\n", encoding="utf-8")
    assert BPETokenizer.from_hf_folder(tmp_path).tokens == learned.tokens  # the good folder reads back
    (tmp_path / "merges.txt").write_text("\n".join([*merges, "x"]) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=rf"merges\.txt, line {len(merges) + 1}: a merge must be two symbols"):
        BPETokenizer.from_hf_folder(tmp_path)
    (tmp_path / "vocab.json").write_text(json.dumps({k: v for k, v in vocab.items() if k != START}), encoding="utf-8")
    with pytest.raises(ValueError, match=r"vocab\.json has no <\|startoftext\|> token"):
        BPETokenizer.from_hf_folder(tmp_path)
    (tmp_path / "vocab.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match=r"vocab\.json is not valid JSON"):
        BPETokenizer.from_hf_folder(tmp_path)


# ---------------------------------------------------------------- BPE training


def test_first_merge_is_the_most_frequent_pair() -> None:
    # By hand: "the cat sat on the mat" has (a, t</w>) in cat, sat, mat: 3 times; (t, h) and (h, e</w>) twice
    # (two "the"); every other pair once. So (a, t</w>) first, then of the pairs seen twice the smallest.
    merges = learn_merges(["the cat sat on the mat"], 10)
    assert merges[:2] == [("a", "t</w>"), ("h", "e</w>")]  # the tie (h, e</w>) vs (t, h): "h" < "t"
    assert merges[2] == ("t", "he</w>")  # (t, h) became (t, he</w>): "the" ×2 is the only pair left twice
    assert len(merges) == 3  # then no pair occurs twice: training stops early
    assert piece_symbols("cat") == ("c", "a", "t</w>") and merge_pair(("a", "a", "a"), ("a", "a")) == ("aa", "a")


def test_frequent_word_becomes_one_token_and_rare_word_stays_in_pieces(learned: BPETokenizer) -> None:
    assert len(learned.encode("photo")) == 1 and len(learned.encode("cat")) == 1
    assert len(learned.encode("blurry")) > 1  # seen once: never merged whole
    assert len(learned.tokens) == 512 + len(learned.merges) + 2


def test_learned_tokenizer_round_trips_its_captions(learned: BPETokenizer) -> None:
    for caption in CORPUS:
        assert learned.decode(learned.encode(caption)) == " ".join(pre_tokenize(caption))
    assert all(0 <= i < learned.vocab_size for c in CORPUS for i in learned.encode(c))


def test_training_is_deterministic_and_checks_arguments() -> None:
    assert learn_merges(CORPUS, 50) == learn_merges(list(CORPUS), 50)
    assert learn_merges(CORPUS, 0) == [] and learn_merges([], 10) == []
    with pytest.raises(ValueError, match="not one string"):
        learn_merges("a photo of a cat", 5)
    with pytest.raises(ValueError, match="num_merges"):
        learn_merges(CORPUS, -1)
