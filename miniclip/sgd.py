"""Moved to :mod:`miniclip.optim.sgd`; this shim keeps ``from miniclip.sgd import SGD`` working."""

from miniclip.optim.sgd import SGD  # noqa: F401
