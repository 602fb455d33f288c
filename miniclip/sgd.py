"""Plain stochastic gradient descent: ``w ← w − lr · dL/dw`` for every parameter."""

from __future__ import annotations

from miniclip.module import Parameter


class SGD:
    """Update each parameter in place against its gradient."""

    def __init__(self, params: dict[str, Parameter], lr: float) -> None:
        if lr <= 0:
            raise ValueError(f"learning rate must be positive, got {lr}")
        self.params = params
        self.lr = lr

    def step(self) -> None:
        for p in self.params.values():
            p.data -= self.lr * p.grad

    def zero_grad(self) -> None:
        for p in self.params.values():
            p.grad[...] = 0
