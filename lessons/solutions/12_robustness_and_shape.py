# %% [markdown]
# # Solutions to the exercises of lesson 12 — Robustness and shape
#
# Each exercise of `lessons/12_robustness_and_shape.py`, solved and checked on small numbers.

# %%
import math

import numpy as np

from miniclip.module import Module
from miniclip.probe.robustness import blur_float, blur_radius, gaussian_kernel
from miniclip.probe.topology import persistence_diagrams, wasserstein, wasserstein_matching
from miniclip.teaching.gradcheck import gradcheck

np.set_printoptions(precision=4, suppress=True, linewidth=120)

# %% [markdown]
# ## Exercise 1 — the blur's backward
#
# One 1-D pass is two steps: pad by r with the mirror image, $x_{\mathrm{pad}} = P x$, then a valid
# cross-correlation with g, $y[h] = \sum_i g[i] \, x_{\mathrm{pad}}[h + i]$. Backward through each:
#
# * the correlation sends $dy[h] \, g[i]$ to $x_{\mathrm{pad}}[h + i]$: the gradient of the padded row is
#   the *full* convolution of dy with g (length n + 2r);
# * the padding copied $x[r-1], \dots, x[0]$ to the left and $x[n-1], \dots, x[n-r]$ to the right, so
#   its backward is a scatter-add: the middle n entries go to x as they are, and each border
#   entry is added onto the pixel it was copied from (the strip, turned round).
#
# The 2-D blur is a pass along the rows and then one along the columns, so its backward is the
# column pass's backward, then the row pass's.


# %%
def pass_backward(dy: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Backward of one mirror-padded 1-D pass along the last axis: (..., n) → (..., n)."""
    r, n = (len(g) - 1) // 2, dy.shape[-1]
    d_padded = np.apply_along_axis(lambda row: np.convolve(row, g, mode="full"), -1, dy)  # (..., n + 2r)
    dx = d_padded[..., r : r + n].copy()  # the middle: each pixel itself
    dx[..., :r] += d_padded[..., :r][..., ::-1]  # the left strip was x[r-1], ..., x[0]
    dx[..., n - r :] += d_padded[..., r + n :][..., ::-1]  # the right strip was x[n-1], ..., x[n-r]
    return dx


class Blur(Module):
    """The Gaussian blur of an image (H, W) with mirror padding, with its backward written out."""

    def __init__(self, sigma: float) -> None:
        self.g = gaussian_kernel(sigma).astype(np.float64)  # (2r + 1,)

    def forward(self, x: np.ndarray) -> np.ndarray:  # the lesson's two passes
        r = (len(self.g) - 1) // 2
        rows = np.stack([np.convolve(np.pad(row, r, mode="symmetric"), self.g, mode="valid") for row in x])
        return np.stack([np.convolve(np.pad(col, r, mode="symmetric"), self.g, mode="valid") for col in rows.T]).T

    def backward(self, grad: np.ndarray) -> np.ndarray:
        d_rows = pass_backward(grad.T, self.g).T  # through the column pass (columns as rows)
        return pass_backward(d_rows, self.g)  # then through the row pass


image = np.random.default_rng(0).random((7, 7))  # (7, 7)
blur = Blur(1.0)
assert np.allclose(blur(image), blur_float(image, 1.0))
result = gradcheck(blur, image.copy(), label="mirror-padded blur")
print(result.report())
assert result.ok

# %% [markdown]
# The prediction asked for: is the backward the blur itself, even at the border? Yes. The pixel
# j's weight in output h is the sum of $g[i]$ over the i that reach j directly or through the
# mirror; with a symmetric kernel and the mirror that repeats the edge pixel (d c b a | a b c d),
# the weight of j in h equals the weight of h in j: the blur's matrix is symmetric, and its
# backward (the transposed matrix) is the blur. The mirror that skips the edge pixel
# (`np.pad(mode="reflect")`: d c b | a b c d) breaks the symmetry at the border.

# %%
dy = np.random.default_rng(1).standard_normal((7, 7))
print("largest |backward(dy) − blur(dy)|:", np.abs(blur.backward(dy) - blur_float(dy, 1.0)).max())
assert np.allclose(blur.backward(dy), blur_float(dy, 1.0), atol=1e-14)
n = 7
r = blur_radius(1.0)
g = gaussian_kernel(1.0).astype(np.float64)
reflect = np.stack([np.convolve(np.pad(np.eye(n)[k], r, mode="reflect"), g, mode="valid") for k in range(n)]).T
symmetric = np.stack([np.convolve(np.pad(np.eye(n)[k], r, mode="symmetric"), g, mode="valid") for k in range(n)]).T
print("1-D pass as a matrix: symmetric padding gives A = Aᵀ:", np.allclose(symmetric, symmetric.T))
print("                      reflect padding:               ", np.allclose(reflect, reflect.T))
assert np.allclose(symmetric, symmetric.T) and not np.allclose(reflect, reflect.T)

# %% [markdown]
# ## Exercise 2 — twelve points on a circle
#
# Prediction: the loop is born when the sides enter, at $2 \sin(\pi / 12) = 0.5176$. A triangle
# covers the centre only if the gaps between its corners, in steps round the 12-gon, are each
# below 6 (half of 12) and sum to 12: the most even is (4, 4, 4), whose edges are four steps
# long, $2 \sin(4 \pi / 12) = \sqrt{3} = 1.7321$. (Any other, such as (5, 5, 2), has a longer edge and
# enters later.) So H1 is the one bar (0.5176, 1.7321), and H0 has eleven bars dying at 0.5176.

# %%
angle = np.arange(12) * 2 * np.pi / 12
twelve = np.stack([np.cos(angle), np.sin(angle)], axis=1)  # (12, 2)
h0, h1 = persistence_diagrams(np.linalg.norm(twelve[:, None] - twelve[None], axis=-1))
print("H1:", h1, " H0 deaths:", h0[:, 1])
assert np.allclose(h1, [[2 * math.sin(math.pi / 12), math.sqrt(3)]])
assert np.allclose(h0[:11, 1], 2 * math.sin(math.pi / 12)) and np.isinf(h0[11, 1])

# %% [markdown]
# ## Exercise 3 — move b₁ next to a₁
#
# With $b_1 = (1.2, 3.1)$, pairing it with $a_1 = (1, 3)$ costs $\sqrt{0.2^2 + 0.1^2} = 0.2236$, against
# $2/\sqrt{2} + 1.9/\sqrt{2} = 2.758$ for sending both to the diagonal: they pair now. a₀–b₀ stays
# (0.5), a₂ still goes to the diagonal ($0.5/\sqrt{2} = 0.3536$), so W1 = 0.5 + 0.2236 + 0.3536 = 1.0772.

# %%
A = np.array([[0.0, 4.0], [1.0, 3.0], [2.0, 2.5]])
B = np.array([[0.0, 4.5], [1.2, 3.1]])
distance, matching = wasserstein_matching(A, B)
predicted = 0.5 + math.hypot(0.2, 0.1) + 0.5 / math.sqrt(2)
print(f"W1 = {distance:.4f} (predicted {predicted:.4f}); matching {matching}")
assert abs(distance - predicted) < 1e-12 and abs(wasserstein(A, B) - predicted) < 1e-12
assert {(i, j) for i, j in matching if i >= 0 and j >= 0} == {(0, 0), (1, 1)}
print("lesson 12 solutions: all checks passed")
