"""Optimisers and what surrounds them: SGD, AdamW, gradient clipping, the learning-rate schedule.

AdamW keeps the parameters, gradients and moments in a few flat buffers (:mod:`miniclip.optim.flat`).
Lessons 01 and 03 take SGD steps, lesson 06b works AdamW and the schedule by hand, lesson 09 clips.
"""

from miniclip.optim.adamw import AdamW, decays
from miniclip.optim.clip_grad import clip_grad_norm
from miniclip.optim.flat import FlatParameters
from miniclip.optim.schedule import warmup_cosine
from miniclip.optim.sgd import SGD

__all__ = ["SGD", "AdamW", "FlatParameters", "clip_grad_norm", "decays", "warmup_cosine"]
