"""Encoders: turn a batch of images (or captions) into one vector per item.

Image side: the walkthrough's patch MLP (:mod:`.patch_mlp`), a residual CNN (:mod:`.cnn`) and
a Vision Transformer (:mod:`.vit`) (lesson 07). Text side: the walkthrough's bag of words
(:mod:`.bag_of_words`) and a transformer (:mod:`.text_transformer`) (lessons 05–06a).
Each module registers its encoder at its bottom in :mod:`.registry`, by name, with its cost and
its PyTorch twin; :mod:`miniclip.model.config` builds any registered pair by name. The
walkthrough's model (:mod:`miniclip.teaching.walkthrough_model`) is the patch MLP and the bag of
words at their smallest.
"""

# The encoders register themselves as they are imported, so this order is the order that
# registry.names() lists them in (the command line's choices, the gradient checks' pairings).
# isort: off
from miniclip.encoders.patch_mlp import PatchMLP
from miniclip.encoders.cnn import CNNEncoder, ResidualBlock
from miniclip.encoders.vit import ViT
from miniclip.encoders.bag_of_words import BagOfWords
from miniclip.encoders.text_transformer import TextTransformer

# isort: on
from miniclip.encoders import registry

__all__ = ["BagOfWords", "CNNEncoder", "PatchMLP", "ResidualBlock", "TextTransformer", "ViT", "registry"]
