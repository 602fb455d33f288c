"""Layers with hand-written forward and backward passes, one per file.

The walkthrough's: Linear (and the bias-free projection), ReLU, Patchify, Embedding,
MeanPool, Similarity, softmax, ContrastiveLoss. CLIP's head: L2Normalize, LogitScale.
Transformers: LayerNorm, GELU, Dropout, PositionalEmbedding, MultiHeadSelfAttention, MLP,
TransformerBlock, EndTokenPool. Convolutions: Conv2d (im2col), BatchNorm2d, MaxPool2d,
AvgPool2d, GlobalAvgPool. OpenAI's CLIP adds QuickGELU, ClassToken and ClassTokenPool (and the
causal mask of MultiHeadSelfAttention).

Lessons 01–07 take them up in this order; lesson 16 the pieces of OpenAI's CLIP.
"""

from miniclip.layers.attention import MultiHeadSelfAttention
from miniclip.layers.batch_norm import BatchNorm2d
from miniclip.layers.class_token import ClassToken, ClassTokenPool
from miniclip.layers.contrastive_loss import ContrastiveLoss
from miniclip.layers.conv2d import Conv2d
from miniclip.layers.dropout import Dropout
from miniclip.layers.embedding import Embedding
from miniclip.layers.end_token_pool import EndTokenPool
from miniclip.layers.gelu import GELU
from miniclip.layers.l2_normalize import L2Normalize
from miniclip.layers.layer_norm import LayerNorm
from miniclip.layers.linear import Linear, projection
from miniclip.layers.logit_scale import LogitScale
from miniclip.layers.mean_pool import MeanPool
from miniclip.layers.mlp import MLP
from miniclip.layers.patchify import Patchify
from miniclip.layers.pooling import AvgPool2d, GlobalAvgPool, MaxPool2d
from miniclip.layers.positional_embedding import PositionalEmbedding
from miniclip.layers.quick_gelu import QuickGELU
from miniclip.layers.relu import ReLU
from miniclip.layers.similarity import Similarity
from miniclip.layers.softmax import log_softmax, softmax
from miniclip.layers.transformer_block import TransformerBlock

__all__ = [
    "MLP",
    "AvgPool2d",
    "BatchNorm2d",
    "ClassToken",
    "ClassTokenPool",
    "ContrastiveLoss",
    "Conv2d",
    "Dropout",
    "Embedding",
    "EndTokenPool",
    "GELU",
    "GlobalAvgPool",
    "L2Normalize",
    "LayerNorm",
    "Linear",
    "LogitScale",
    "MaxPool2d",
    "MeanPool",
    "MultiHeadSelfAttention",
    "Patchify",
    "PositionalEmbedding",
    "QuickGELU",
    "ReLU",
    "Similarity",
    "TransformerBlock",
    "log_softmax",
    "projection",
    "softmax",
]
