"""The model: what a trained CLIP is, from words and pixels to one shared space.

    clip.py        the CLIP head: both encoders, L2 normalisation, the learned logit scale,
                   the contrastive loss (lessons 02–04)
    predictive.py  the CLIP paper's baseline: the image encoder predicts the caption's bag of
                   words (lesson 13)
    config.py      ModelConfig, and building either model from it (lesson 07)
    tokenizer.py   words to token ids and back (lesson 05)
    targets.py     which pairs in a batch match: identity or label-aware (lesson 08)

The encoders themselves are :mod:`miniclip.encoders`, built from :mod:`miniclip.layers`.
"""
