"""The walkthrough's numbers, recomputed independently with plain Python loops over lists.

Only the fixed inputs and weights are imported from ``miniclip.teaching.walkthrough``; no layer, no
NumPy matrix product. The forward, both softmaxes, the backward into every weight and bias
and the SGD update are all written out again here, then compared with
``compute_walkthrough()`` to 1e-9. The few numbers written out below (pooled vectors, T, I,
logits, softmax fractions) were worked out with a pencil and are checked against the loops.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from miniclip.cli import main
from miniclip.teaching.walkthrough import (
    CAPTIONS,
    IMAGE_BIAS,
    IMAGE_PROJECTION,
    IMAGE_WEIGHT,
    IMAGES,
    TEXT_BIAS,
    TEXT_PROJECTION,
    TEXT_WEIGHT,
    TOKEN_IDS,
    VOCAB,
    WORD_VECTORS,
    Matrix,
    build_walkthrough,
    compute_walkthrough,
    format_walkthrough,
)

TOL = 1e-9


# ---- plain-Python linear algebra --------------------------------------------------------
def matmul(a: list[list[float]], b: list[list[float]]) -> list[list[float]]:
    return [[sum(a[i][k] * b[k][j] for k in range(len(b))) for j in range(len(b[0]))] for i in range(len(a))]


def transpose(a: list[list[float]]) -> list[list[float]]:
    return [[a[i][j] for i in range(len(a))] for j in range(len(a[0]))]


def add(a: list[list[float]], b: list[list[float]], scale: float = 1.0) -> list[list[float]]:
    """a + scale·b, element-wise."""
    return [[x + scale * y for x, y in zip(ra, rb, strict=True)] for ra, rb in zip(a, b, strict=True)]


def as_lists(rows) -> list[list[float]]:
    return [[float(x) for x in row] for row in rows]


def patches_of(image) -> list[list[float]]:
    """A 2×4 image → its two 2×2 patches, each flattened row by row."""
    return [[float(image[r][c]) for r in range(2) for c in range(c0, c0 + 2)] for c0 in (0, 2)]


# ---- the walkthrough, by hand ------------------------------------------------------------
def encoder_forward(vectors, weight, bias, projection):
    """Linear + ReLU on each of the 2 vectors, mean of the 2, then the projection."""
    pre = [[add([v], [bias])[0] for v in matmul(item, weight)] for item in vectors]  # (N, L, H)
    hidden = [[[max(x, 0.0) for x in v] for v in item] for item in pre]  # (N, L, H)
    pooled = [[(item[0][h] + item[1][h]) / 2 for h in range(len(item[0]))] for item in hidden]  # (N, H)
    return pre, hidden, pooled, matmul(pooled, projection)


def encoder_backward(d_out, vectors, pre, pooled, weight, projection):
    """Gradients of projection, weight, bias and the input vectors, from d(output) (N, 2)."""
    d_projection = matmul(transpose(pooled), d_out)  # (H, 2)
    d_pooled = matmul(d_out, transpose(projection))  # (N, H)
    d_weight = [[0.0] * len(weight[0]) for _ in weight]
    d_bias = [0.0] * len(weight[0])
    d_vectors = []
    for n, item in enumerate(vectors):
        d_item = []
        for position, v in enumerate(item):
            # each of the 2 positions gets half of the pooled gradient, and ReLU lets it through where pre > 0
            d_pre = [d_pooled[n][h] / 2 if pre[n][position][h] > 0 else 0.0 for h in range(len(d_bias))]
            for h, g in enumerate(d_pre):
                d_bias[h] += g
                for k in range(len(v)):
                    d_weight[k][h] += v[k] * g
            d_item.append([sum(weight[k][h] * d_pre[h] for h in range(len(d_pre))) for k in range(len(v))])
        d_vectors.append(d_item)
    return d_projection, d_weight, d_bias, d_vectors


def softmaxes(logits, base):
    n = len(logits)
    power = [[base**x for x in row] for row in logits]
    row_sums = [sum(row) for row in power]
    col_sums = [sum(power[i][j] for i in range(n)) for j in range(n)]
    p_rows = [[power[i][j] / row_sums[i] for j in range(n)] for i in range(n)]
    p_cols = [[power[i][j] / col_sums[j] for j in range(n)] for i in range(n)]
    return power, row_sums, col_sums, p_rows, p_cols


def by_hand(params: dict, base: float, lr: float) -> dict:
    """Every number of the walkthrough, plus the updated parameters, from plain loops."""
    n = len(CAPTIONS)
    words = [[params["text.lookup.table"][v] for v in ids] for ids in TOKEN_IDS]  # (N, L, 3)
    patches = [patches_of(image) for image in IMAGES]  # (N, L, 4)
    t_pre, t_hidden, t_pooled, t = encoder_forward(
        words, params["text.encode.weight"], params["text.encode.bias"], params["text.project.weight"]
    )
    i_pre, i_hidden, i_pooled, i = encoder_forward(
        patches, params["image.encode.weight"], params["image.encode.bias"], params["image.project.weight"]
    )
    logits = matmul(t, transpose(i))
    power, row_sums, col_sums, p_rows, p_cols = softmaxes(logits, base)
    eye = [[1.0 if a == b else 0.0 for b in range(n)] for a in range(n)]
    loss_rows = -sum(math.log(p_rows[k][k], base) for k in range(n)) / n
    loss_cols = -sum(math.log(p_cols[k][k], base) for k in range(n)) / n
    grad_rows, grad_cols = add(p_rows, eye, -1.0), add(p_cols, eye, -1.0)
    dlogits = [[(grad_rows[a][b] + grad_cols[a][b]) / (2 * n) for b in range(n)] for a in range(n)]
    d_t = matmul(dlogits, i)
    d_i = matmul(transpose(dlogits), t)
    dtp, dtw, dtb, dwords = encoder_backward(
        d_t, words, t_pre, t_pooled, params["text.encode.weight"], params["text.project.weight"]
    )
    dip, diw, dib, _ = encoder_backward(
        d_i, patches, i_pre, i_pooled, params["image.encode.weight"], params["image.project.weight"]
    )
    d_table = [[0.0] * 3 for _ in VOCAB]
    for ids, d_item in zip(TOKEN_IDS, dwords, strict=True):
        for v, dv in zip(ids, d_item, strict=True):
            d_table[v] = [a + b for a, b in zip(d_table[v], dv, strict=True)]
    grads = {
        "text.lookup.table": d_table,
        "text.encode.weight": dtw,
        "text.encode.bias": dtb,
        "text.project.weight": dtp,
        "image.encode.weight": diw,
        "image.encode.bias": dib,
        "image.project.weight": dip,
    }
    return {
        "words": words,
        "patches": patches,
        "text_pre": t_pre,
        "text_hidden": t_hidden,
        "image_pre": i_pre,
        "image_hidden": i_hidden,
        "text_pooled": t_pooled,
        "image_pooled": i_pooled,
        "T": t,
        "I": i,
        "logits": logits,
        "power": power,
        "row_sums": row_sums,
        "col_sums": col_sums,
        "p_rows": p_rows,
        "p_cols": p_cols,
        "targets": eye,
        "grad_rows": grad_rows,
        "grad_cols": grad_cols,
        "loss": (loss_rows + loss_cols) / 2,
        "dlogits": dlogits,
        "dT": d_t,
        "dI": d_i,
        **{f"d({name})": g for name, g in grads.items()},
        "new_params": {name: sgd(params[name], grads[name], lr) for name in params},
        "diagonal_share": sum(p_rows[k][k] + p_cols[k][k] for k in range(n)) / (2 * n),
    }


def sgd(w, g, lr):
    if isinstance(w[0], list):
        return [sgd(row, grow, lr) for row, grow in zip(w, g, strict=True)]
    return [x - lr * dx for x, dx in zip(w, g, strict=True)]


def initial_params() -> dict:
    return {
        "text.lookup.table": as_lists(WORD_VECTORS),
        "text.encode.weight": as_lists(TEXT_WEIGHT),
        "text.encode.bias": [float(x) for x in TEXT_BIAS],
        "text.project.weight": as_lists(TEXT_PROJECTION),
        "image.encode.weight": as_lists(IMAGE_WEIGHT),
        "image.encode.bias": [float(x) for x in IMAGE_BIAS],
        "image.project.weight": as_lists(IMAGE_PROJECTION),
    }


@pytest.fixture(scope="module")
def walk3() -> dict:
    return compute_walkthrough(base=3.0, lr=0.1)


# ---- the tests ---------------------------------------------------------------------------
@pytest.mark.parametrize("base", [3.0, math.e], ids=["base3", "base_e"])
def test_every_number_matches_the_loops(base: float) -> None:
    got = compute_walkthrough(base=base, lr=0.1)
    want = by_hand(initial_params(), base, lr=0.1)
    new_params = want.pop("new_params")
    share = want.pop("diagonal_share")
    for key, value in want.items():
        np.testing.assert_allclose(got[key], np.array(value), rtol=0, atol=TOL, err_msg=key)
    for name, value in new_params.items():
        np.testing.assert_allclose(got[f"{name} (after)"], np.array(value), rtol=0, atol=TOL, err_msg=name)
    assert got["diagonal_share_before"] == pytest.approx(share, abs=TOL)

    after = by_hand(new_params, base, lr=0.1)  # the forward again, with the updated weights
    for key in ("logits", "p_rows", "p_cols", "loss"):
        np.testing.assert_allclose(got[f"{key}_after"], np.array(after[key]), rtol=0, atol=TOL, err_msg=key)
    assert got["diagonal_share_after"] == pytest.approx(after["diagonal_share"], abs=TOL)


def test_forward_is_pencil_friendly(walk3: dict) -> None:
    """Integer activations and logits in [-2, 3], no ReLU input exactly at its kink."""
    for key in ("words", "patches", "text_pre", "image_pre", "text_pooled", "image_pooled", "T", "I", "logits"):
        assert np.array_equal(walk3[key], np.round(walk3[key])), key
    assert walk3["logits"].min() >= -2 and walk3["logits"].max() <= 3
    assert np.all(walk3["text_pre"] != 0) and np.all(walk3["image_pre"] != 0)
    assert (walk3["text_pre"] < 0).any() and (walk3["image_pre"] < 0).any()  # ReLU does cut something
    logits = walk3["logits"]
    assert any(logits[k].max() > logits[k, k] for k in range(3))  # the diagonal is not already winning


def test_pooling_averages_two_different_vectors() -> None:
    """Every caption's two words, and every image's two patches, leave their encoder different (loops)."""
    want = by_hand(initial_params(), 3.0, lr=0.1)
    for hidden, pooled in ((want["text_hidden"], want["text_pooled"]), (want["image_hidden"], want["image_pooled"])):
        for (first, second), mean in zip(hidden, pooled, strict=True):
            assert first != second and mean not in (first, second)
        for column in zip(*pooled, strict=True):  # no unit of the pooled vectors is the same for all 3 items
            assert len(set(column)) > 1


def test_the_numbers_a_reader_checks_by_hand() -> None:
    """The values lesson 01 and the README show, worked out with a pencil, against the loops."""
    want = by_hand(initial_params(), 3.0, lr=0.1)
    assert want["text_pooled"] == [[3, 2, 2], [1, 2, 3], [2, 3, 2]]  # e.g. ([0 1 3] + [2 3 3]) / 2 for "small dog"
    assert want["image_pooled"] == [[2, 1, 1, 0], [1, 1, 0, 1], [1, 0, 2, 1]]
    assert want["T"] == [[1, 0], [-2, -1], [0, 1]] and want["I"] == [[1, 0], [0, -2], [-2, 1]]
    assert want["logits"] == [[1, 0, -2], [-2, 2, 3], [0, -2, 1]]
    # "small dog" (row 2) scores image 3 above its own image, and image 3 (column 3) "small dog" above "red car"
    np.testing.assert_allclose(want["p_rows"][0], np.array([27, 9, 1]) / 37, atol=TOL)  # [3 1 1/9] · 9 / 37
    np.testing.assert_allclose(want["p_rows"][1], np.array([1, 81, 243]) / 325, atol=TOL)
    np.testing.assert_allclose([row[2] for row in want["p_cols"]], np.array([1, 243, 27]) / 271, atol=TOL)


def test_no_coincidence_flattens_the_example() -> None:
    """No ties in a row or column, no row or column another one shifted, and the two directions' losses differ."""
    want = by_hand(initial_params(), 3.0, lr=0.1)
    logits = np.array(want["logits"])
    for m in (logits, logits.T):
        assert all(len(set(line)) == 3 for line in m)  # each caption ranks the images strictly, and vice versa
        for a in range(3):
            for b in range(a + 1, 3):
                assert len(set(m[a] - m[b])) > 1  # a shifted copy would have the same softmax
    loss_rows = -sum(math.log(want["p_rows"][k][k], 3) for k in range(3)) / 3
    loss_cols = -sum(math.log(want["p_cols"][k][k], 3) for k in range(3)) / 3
    assert abs(loss_rows - loss_cols) > 0.1


def test_diagonal_share_grows_and_loss_falls(walk3: dict) -> None:
    assert walk3["diagonal_share_after"] > walk3["diagonal_share_before"] + 0.1
    assert walk3["loss_after"] < walk3["loss"]
    after = walk3["logits_after"]  # one step puts every row's and column's largest logit on the diagonal
    assert (after.argmax(axis=1) == np.arange(3)).all() and (after.argmax(axis=0) == np.arange(3)).all()
    np.testing.assert_allclose(walk3["p_rows"].sum(axis=1), 1.0, atol=TOL)
    np.testing.assert_allclose(walk3["p_cols"].sum(axis=0), 1.0, atol=TOL)


def test_unrolled_forward_matches_the_model(walk3: dict) -> None:
    """The walkthrough steps through the layers; the model's own forward gives the same loss."""
    from miniclip.teaching.walkthrough import walkthrough_batch, walkthrough_state
    from miniclip.teaching.walkthrough_model import WalkthroughCLIP, WalkthroughConfig

    model = WalkthroughCLIP(WalkthroughConfig(base=3.0), rng=np.random.default_rng(1), dtype=np.float64)
    model.load_state(walkthrough_state())
    loss = model.forward(*walkthrough_batch())
    assert float(loss) == pytest.approx(float(walk3["loss"]), abs=TOL)
    np.testing.assert_array_equal(model.logits, walk3["logits"])


def test_printout_has_the_13_steps_and_the_update() -> None:
    text = format_walkthrough()
    for step in range(1, 14):
        assert f"Step {step} ·" in text, step
    assert "Step 9 · MatMul: logits = T·Iᵀ" in text
    assert "P_rows (text→image" in text and "P_cols (image→text" in text  # query→what it ranks
    assert "3^x" in text and "e^x" in text
    assert "One SGD update (lr=0.1)" in text
    for name in ("text.encode.weight", "text.encode.bias", "image.encode.bias", "image.project.weight"):
        assert f"d({name})" in text


def test_printout_is_its_list_of_matrices() -> None:
    """The printout is the walkthrough's paragraphs: each matrix printed once, in order, from the computed values."""
    w = build_walkthrough(base=3.0, lr=0.1)
    text = w.text()
    assert text == format_walkthrough()
    listed = [item for paragraph in w.paragraphs for item in paragraph if isinstance(item, Matrix)]
    assert len(listed) == len(w.matrices())  # every key names one matrix
    position = 0
    for m in listed:
        position = text.index(m.text() + "\n", position) + 1  # in this order, each as format_matrix prints it
        assert text.count(m.title + "   (") == 1, m.title
        assert m.side in ("text", "image", "shared")
        assert m.title.startswith(m.heading) if m.part.startswith("Step") else m.heading == f"{m.part} · {m.name}"
    matrices = w.matrices()
    assert matrices["p_rows"].values is w.values["p_rows"]  # the very arrays compute_walkthrough returned
    assert matrices["text_hidden"].heading == "Step 4 · Text encoder: ReLU"
    assert w.notes("grad_cols") == [
        f"loss = (L_rows + L_cols) / 2 = {float(w.values['loss']):.4f}   (cross-entropy, log base 3)"
    ]


def test_readme_excerpt_is_the_real_printout() -> None:
    """Every line of the README's walkthrough excerpt is a line ``miniclip walkthrough`` prints."""
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    excerpt = readme.split("$ miniclip walkthrough", 1)[1].split("```", 1)[0].splitlines()[1:]
    printed = set(format_walkthrough().splitlines())
    shown = [line for line in excerpt if line not in ("", "…")]
    assert len(shown) > 20
    assert [line for line in shown if line not in printed] == []


def test_printout_in_base_e() -> None:
    text = format_walkthrough(base=math.e, lr=0.05)
    assert "Step 13 ·" in text and "e^x" in text and "3^x" not in text
    assert "One SGD update (lr=0.05)" in text


def test_cli_walkthrough(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["walkthrough"]) == 0
    out = capsys.readouterr().out
    assert "Step 1 ·" in out and "Step 13 ·" in out
    assert main(["walkthrough", "--base", "e", "--lr", "0.2"]) == 0
    assert "One SGD update (lr=0.2)" in capsys.readouterr().out
