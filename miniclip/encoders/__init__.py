"""Encoders: turn a batch of images (or captions) into one vector per item.

Image side: the walkthrough's patch MLP (:mod:`.patch_mlp`), a residual CNN (:mod:`.cnn`) and
a Vision Transformer (:mod:`.vit`). Text side: the walkthrough's bag of words
(:mod:`.bag_of_words`) and a transformer (:mod:`.text_transformer`).
:mod:`miniclip.model.config` builds any pair by name; the walkthrough's model
(:mod:`miniclip.teaching.walkthrough_model`) is the patch MLP and the bag of words at their smallest.
"""

from miniclip.encoders.bag_of_words import BagOfWords
from miniclip.encoders.cnn import CNNEncoder, ResidualBlock
from miniclip.encoders.patch_mlp import PatchMLP
from miniclip.encoders.text_transformer import TextTransformer
from miniclip.encoders.vit import ViT

__all__ = ["BagOfWords", "CNNEncoder", "PatchMLP", "ResidualBlock", "TextTransformer", "ViT"]
