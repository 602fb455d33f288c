"""Released CLIP weights, read without pickle, and the image preprocessing they were trained with.

The rooms of this package, one idea each:

* :mod:`miniclip.pretrained.safetensors` — the safetensors file format by hand: an 8-byte
  header length, a JSON header naming every tensor's dtype, shape and byte range, then the raw
  bytes. Reading it runs no code, which is why miniclip reads released weights only in this
  format and refuses pickle files (``.bin``, ``.pt``, ``.pth``, ``.ckpt``, ``.pkl``).
* :mod:`miniclip.pretrained.preprocess` — CLIP's image preprocessing: RGB, shortest side to
  224 with bicubic resampling, centre crop to 224 × 224, then ``(pixels / 255 − mean) / std``
  with CLIP's mean and std, the same numbers as ``transformers.CLIPImageProcessor``.

* :mod:`miniclip.pretrained.hf_config` — a Hugging Face ``config.json`` read as a miniclip
  :class:`~miniclip.model.config.ModelConfig` (OpenAI's architecture, :mod:`miniclip.model.openai`).
* :mod:`miniclip.pretrained.names` — the name table: every tensor of the released file and the
  miniclip parameter it becomes (transposed, flattened or fused), both ways.
* :mod:`miniclip.pretrained.load` — a model folder into a miniclip CLIP, every tensor checked by name.
* :mod:`miniclip.pretrained.fetch` — the download (``miniclip pretrained fetch``), the one place
  miniclip touches the network for weights, and only when asked.

Lesson 16 (``lessons/16_the_real_clip.py``) walks through them.
"""
