"""2-D convolution on channels-last images, as im2col + one matrix product (GEMM).

Each output pixel is a dot product between a k×k window of all input channels and one
filter per output channel. ``im2col`` lays the windows out as rows, so with the filters
flattened into a matrix the whole layer is a linear layer applied to every window::

    cols = im2col(x)                      x (N, H, W, C)  →  cols (N·Ho·Wo, k·k·C)
    Wm   = weight as a (k·k·C, O) matrix  row (ki, kj, c), column o  =  weight[o, c, ki, kj]
    y    = cols @ Wm + b                  (N·Ho·Wo, O)  →  reshaped to (N, Ho, Wo, O)

    Ho = ⌊(H + 2·padding − k) / stride⌋ + 1,   Wo likewise

Why channels-last, (N, H, W, C)? The product ``cols @ Wm`` reads, for every pixel, its C
channel values one after the other. Stored (N, H, W, C) those numbers already sit side by
side in memory, so im2col copies whole runs of them and the GEMM's output (N·Ho·Wo, O) *is*
the next layer's input with no transpose; stored (N, C, H, W) every layer would have to flip
its input and output around each product. ``weight`` keeps PyTorch's layout
(out_channels, in_channels, k, k), so weights and checkpoints copy across unchanged; the
small (k·k·C, O) matrix is rebuilt from it at each call.

The backward is the linear layer's::

    dWm   = colsᵀ @ dy                    (k·k·C, N·Ho·Wo) @ (N·Ho·Wo, O)   → reordered to weight's shape
    db    = Σ dy over the N·Ho·Wo rows    (O,)
    dcols = dy @ Wmᵀ                      (N·Ho·Wo, k·k·C)

and ``dx = col2im(dcols)``: the adjoint of im2col adds the gradients of overlapping windows
back onto the shared pixels. That is the textbook route (``backward_by="col2im"``).

For stride 1 there is a shorter one (``backward_by="flipped"``, what ``"auto"`` picks): the
gradient of a convolution is itself a convolution — of ``dy`` with the kernel turned by 180°
and its in/out channels swapped, padded by k − 1 − padding. With y[i, j] = Σ_ab x[i+a, j+b]·W[a, b]
(padded coordinates; channels left out), each x[u, v] meets W[a, b] through y[u−a, v−b], so::

    dx[u, v] = Σ_ab dy[u − a, v − b] · W[a, b]  =  Σ_a'b' dy[u − (k−1) + a', v − (k−1) + b'] · W[k−1−a', k−1−b']

— a plain correlation of dy with the flipped kernel. It costs one im2col of dy and one GEMM,
and never builds the k·k-times-larger ``dcols`` nor scatters it back with col2im, which for
the 3×3 layers of the CNN is about half of their backward's time. (For stride > 1, dy would
first need zeros between its pixels, so col2im stays.) Both routes are tested equal.

What to keep for the backward is a choice between memory and time. ``cols`` is k·k times
larger than the input: kept by every layer for a large batch, it would be most of a step's
memory (for the ``gpu`` configuration at batch 512, 8.7 GiB). Rebuilt in the backward instead,
it costs one more im2col — a copy of k·k times the input, bound by memory bandwidth: for the
``cpu`` configuration about 70 ms of a 500 ms step on a 2-core machine. So the layer keeps its
input x always, and in training also the forward's ``cols`` while they take at most
:data:`KEEP_BYTES` for the device: on the CPU, where memory is plentiful and bandwidth scarce,
up to 256 MB a layer (in buffers of its own, reused from step to step); on a GPU, where memory
is the scarce one, never.
A layer that does not keep them walks the batch a few images at a time, forward and backward
(:func:`~miniclip.layers.im2col.image_chunks`), building each chunk's ``cols`` in a workspace
shared by all layers: the forward multiplies it by the weights, the backward builds it again for
``dWm``. The chunks' ``dWm`` add up to the batch's, since ``colsᵀ @ dy`` is a sum over rows. The
input gradient is built in chunks either way.

A first layer, whose input is the images themselves, needs no input gradient:
``backward(dy, input_grad=False)`` skips ``dx`` (a matrix product and, for the stem, a buffer
as large as the images' windows) and returns None.

Initial weights are He/Kaiming-uniform: U(±√(6 / fan_in)) with fan_in = C·k·k, which keeps the
variance of activations roughly constant through a stack of convolutions followed by ReLU.

Lesson 07 derives it by hand, both backward routes included.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from miniclip.backend import get_array_module, on_gpu
from miniclip.layers.im2col import Workspace, chunk_size, col2im, conv_output_size, im2col, image_chunks, workspace
from miniclip.module import Module, Parameter

BACKWARD_BY = ("auto", "col2im", "flipped")

# The most bytes of forward ``cols`` a layer keeps for its backward in training, by device (see above).
KEEP_BYTES = {"cpu": 256 * 2**20, "gpu": 0}


class Conv2d(Module):
    """``y = conv(x, weight) + bias`` on (N, H, W, C) images; ``weight`` is (out_channels, in_channels, k, k)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int,
        stride: int = 1,
        padding: int = 0,
        bias: bool = True,
        *,
        rng: np.random.Generator,
        dtype: Any = np.float32,
        backward_by: str = "auto",
    ) -> None:
        if min(in_channels, out_channels, kernel, stride) < 1 or padding < 0:
            raise ValueError(
                f"Conv2d needs positive channels, kernel and stride and padding >= 0; got in_channels={in_channels}, "
                f"out_channels={out_channels}, kernel={kernel}, stride={stride}, padding={padding}"
            )
        if backward_by not in BACKWARD_BY:
            raise ValueError(f"backward_by must be one of {BACKWARD_BY}, got {backward_by!r}")
        flipped_works = stride == 1 and padding <= kernel - 1
        if backward_by == "flipped" and not flipped_works:
            raise ValueError(
                f"the flipped-kernel backward needs stride 1 and padding <= kernel - 1; got stride {stride}, "
                f"padding {padding}, kernel {kernel}"
            )
        self.kernel, self.stride, self.padding = kernel, stride, padding
        self.flipped = backward_by == "flipped" or (backward_by == "auto" and flipped_works)
        fan_in = in_channels * kernel * kernel
        bound = np.sqrt(6.0 / fan_in)  # He/Kaiming uniform
        self.weight = Parameter.from_host(
            rng.uniform(-bound, bound, (out_channels, in_channels, kernel, kernel)), dtype
        )
        self.bias = Parameter.from_host(np.zeros(out_channels), dtype) if bias else None
        self._x: Any = None  # the input, kept for the backward
        self._cols: Any = None  # the forward's cols, when kept for the backward (else None: built again there)
        self._kept: Workspace | None = None  # this layer's own buffers for kept cols, reused from step to step

    def output_size(self, h: int, w: int) -> tuple[int, int]:
        """The (Ho, Wo) this layer produces from an H×W input."""
        k, s, p = self.kernel, self.stride, self.padding
        return conv_output_size(h, k, s, p), conv_output_size(w, k, s, p)

    def image_bytes(self, h: int, w: int, itemsize: int) -> tuple[int, int]:
        """The work arrays' bytes per image on an H×W input, (forward, backward): what a chunk is cut by.

        Forward: the image's cols. Backward: the larger of its cols, dy's cols (the flipped route)
        and its padded input (col2im's sum, for a strided layer: larger than the cols of a 1×1 one).
        """
        out_channels, in_channels, k, _ = self.weight.data.shape
        ho, wo = self.output_size(h, w)
        p = self.padding
        forward = ho * wo * k * k * in_channels
        backward = max(ho * wo * k * k * max(in_channels, out_channels), (h + 2 * p) * (w + 2 * p) * in_channels)
        return forward * itemsize, backward * itemsize

    def kept_bytes(self, batch: int, keep: int) -> int:
        """The bytes of this layer's own buffers (its padded input and cols) when a training forward of
        ``batch`` images shaped like the last input keeps its cols under a :data:`KEEP_BYTES` of ``keep``; else 0.
        """
        if self._x is None:
            return 0
        _, h, w, c = self._x.shape
        p, item = self.padding, self._x.itemsize
        cols = batch * self.image_bytes(h, w, item)[0]
        return cols + (batch * (h + 2 * p) * (w + 2 * p) * c * item if p else 0) if cols <= keep else 0

    def workspace_bytes(self, batch: int, budget: int, keep: int = 0) -> dict[str, int]:
        """The bytes of each shared workspace buffer in a training step of ``batch`` images shaped like the last input.

        With chunks cut by ``budget`` (:func:`~miniclip.layers.im2col.chunk_size`): a layer that
        does not keep its cols (``keep``, as in :meth:`kept_bytes`) fills ``x padded`` and ``x cols``
        forward and backward; every layer's backward fills ``dy padded`` and ``dy cols``, with dy's
        padded image and cols (stride 1) or col2im's padded sum and ``dcols`` (a strided layer).
        Empty before the first forward.
        """
        if self._x is None:
            return {}
        _, h, w, c = self._x.shape
        out_channels, _, k, _ = self.weight.data.shape
        p, item = self.padding, self._x.itemsize
        ho, wo = self.output_size(h, w)
        forward, backward = (chunk_size(batch, size, budget) for size in self.image_bytes(h, w, item))
        rebuilt = 0 if self.kept_bytes(batch, keep) else max(forward, backward)  # images whose cols go in x's slots
        sizes = {
            "x padded": rebuilt * ((h + 2 * p) * (w + 2 * p) * c if p else 0),
            "x cols": rebuilt * ho * wo * k * k * c,
        }
        if self.flipped:
            q = k - 1 - p
            sizes["dy padded"] = backward * ((ho + 2 * q) * (wo + 2 * q) * out_channels if q else 0)
            sizes["dy cols"] = backward * h * w * k * k * out_channels
        else:
            sizes["dy padded"] = backward * (h + 2 * p) * (w + 2 * p) * c
            sizes["dy cols"] = backward * ho * wo * k * k * c
        return {name: size * item for name, size in sizes.items()}

    def _weight_matrix(self) -> Any:
        """The weight (O, C, k, k) as the (k·k·C, O) matrix whose rows line up with the columns of im2col."""
        out_channels = self.weight.data.shape[0]
        return self.weight.data.transpose(2, 3, 1, 0).reshape(-1, out_channels)  # (k·k·C, O)

    def forward(self, x: Any) -> Any:
        out_channels, in_channels, k, _ = self.weight.data.shape
        if x.ndim != 4 or x.shape[3] != in_channels:
            raise ValueError(
                f"Conv2d expects channels-last (N, H, W, {in_channels}) inputs, got shape {tuple(x.shape)}"
            )
        n, h, w, _ = x.shape
        if k > h + 2 * self.padding or k > w + 2 * self.padding:
            raise ValueError(
                f"kernel {k} is larger than the padded input {h + 2 * self.padding}x{w + 2 * self.padding} "
                f"(input {tuple(x.shape)}, padding {self.padding})"
            )
        ho, wo = self.output_size(h, w)
        xp, wm = get_array_module(x), self._weight_matrix()  # wm (k·k·C, O)
        y = xp.empty((n * ho * wo, out_channels), dtype=x.dtype)  # (N·Ho·Wo, O)
        self._x, self._cols = x, None
        if self.keeps_cols(n, h, w, x):  # the whole batch's cols, in this layer's own buffers
            if self._kept is None or self._kept.xp is not xp or self._kept.dtype != x.dtype:
                self._kept = Workspace(xp, x.dtype)
            self._cols = im2col(x, k, self.stride, self.padding, self._kept)  # (N·Ho·Wo, k·k·C)
            xp.matmul(self._cols, wm, out=y)
        else:
            self._conv_in_chunks(x, wm, y)
        if self.bias is not None:
            y += self.bias.data
        return y.reshape(n, ho, wo, out_channels)  # (N, Ho, Wo, O): already the next layer's layout

    def keeps_cols(self, n: int, h: int, w: int, like: Any) -> bool:
        """Whether a training forward of ``n`` H×W images keeps its cols (:data:`KEEP_BYTES` of ``like``'s device)."""
        budget = KEEP_BYTES["gpu" if on_gpu(like) else "cpu"]
        return self.training and n * self.image_bytes(h, w, like.itemsize)[0] <= budget

    def _conv_in_chunks(self, x: Any, wm: Any, y: Any) -> None:
        """``y = cols @ wm`` a chunk of images at a time, each chunk's cols in the shared workspace."""
        xp, work, k = get_array_module(x), workspace(x), self.kernel
        n, h, w, _ = x.shape
        ho, wo = self.output_size(h, w)
        for images in image_chunks(n, self.image_bytes(h, w, x.itemsize)[0], x):
            rows = slice(images.start * ho * wo, images.stop * ho * wo)  # this chunk's output pixels
            cols = im2col(x[images], k, self.stride, self.padding, work)  # (n_c·Ho·Wo, k·k·C)
            xp.matmul(cols, wm, out=y[rows])

    def backward(self, dy: Any, input_grad: bool = True) -> Any:
        self._require_forward(self._x)
        x, k, s, p = self._x, self.kernel, self.stride, self.padding
        out_channels, in_channels, _, _ = self.weight.data.shape
        n, h, w, _ = x.shape
        ho, wo = dy.shape[1], dy.shape[2]
        xp, work = get_array_module(dy), workspace(dy)
        dy_rows = dy.reshape(-1, out_channels)  # (N·Ho·Wo, O), rows as in cols
        if self._cols is not None:  # kept by the forward: dWm in one product
            dwm = self._cols.T @ dy_rows  # (k·k·C, O)
        else:  # built again below, chunk by chunk
            dwm = xp.zeros((k * k * in_channels, out_channels), dtype=dy.dtype)  # (k·k·C, O)
        dx = xp.empty(x.shape, dtype=dy.dtype) if input_grad else None  # (N, H, W, C)
        if self.flipped:  # stride 1: dx = dy correlated with the kernel turned by 180°, channels swapped
            flipped = self.weight.data[:, :, ::-1, ::-1].transpose(2, 3, 0, 1).reshape(-1, in_channels)  # (k·k·O, C)
        else:
            wm = self._weight_matrix()  # (k·k·C, O)
        for images in image_chunks(n, self.image_bytes(h, w, dy.itemsize)[1], dy):
            rows = slice(images.start * ho * wo, images.stop * ho * wo)
            if self._cols is None:
                cols = im2col(x[images], k, s, p, work)  # the forward's cols again: (n_c·Ho·Wo, k·k·C)
                dwm += cols.T @ dy_rows[rows]  # dWm = Σ over chunks of colsᵀ @ dy
            if dx is None:
                continue
            if self.flipped:
                dy_cols = im2col(dy[images], k, 1, k - 1 - p, work, "dy")  # (n_c·H·W, k·k·O)
                xp.matmul(dy_cols, flipped, out=dx[images].reshape(-1, in_channels))  # (n_c·H·W, C)
            else:
                dcols_shape = (rows.stop - rows.start, k * k * in_channels)
                dcols = xp.matmul(dy_rows[rows], wm.T, out=work.get("dy cols", dcols_shape))  # (n_c·Ho·Wo, k·k·C)
                dx[images] = col2im(dcols, (images.stop - images.start, h, w, in_channels), k, s, p, work)
        self.weight.grad += dwm.reshape(k, k, in_channels, out_channels).transpose(3, 2, 0, 1)  # (O, C, k, k)
        if self.bias is not None:
            self.bias.grad += dy_rows.sum(axis=0)  # (O,)
        return dx
