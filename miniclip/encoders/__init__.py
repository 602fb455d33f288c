"""Encoders: turn a batch of images (or captions) into one vector per item.

Image side: the walkthrough's patch MLP (:mod:`miniclip.walkthrough_model`), a residual
CNN (:mod:`.cnn`) and a Vision Transformer (:mod:`.vit`). Text side: the walkthrough's bag of
words and a transformer (:mod:`.text_transformer`). :mod:`miniclip.model_config` builds
any pair by name.
"""

from miniclip.encoders.cnn import CNNEncoder, ResidualBlock
from miniclip.encoders.text_transformer import TextTransformer
from miniclip.encoders.vit import ViT

__all__ = ["CNNEncoder", "ResidualBlock", "TextTransformer", "ViT"]
