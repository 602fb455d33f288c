"""Layers with hand-written forward and backward passes."""

from miniclip.layers.contrastive_loss import ContrastiveLoss
from miniclip.layers.embedding import Embedding
from miniclip.layers.linear import Linear, projection
from miniclip.layers.mean_pool import MeanPool
from miniclip.layers.patchify import Patchify
from miniclip.layers.relu import ReLU
from miniclip.layers.similarity import Similarity
from miniclip.layers.softmax import log_softmax, softmax

__all__ = [
    "ContrastiveLoss",
    "Embedding",
    "Linear",
    "MeanPool",
    "Patchify",
    "ReLU",
    "Similarity",
    "log_softmax",
    "projection",
    "softmax",
]
