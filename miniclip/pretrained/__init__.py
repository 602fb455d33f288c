"""Released CLIP weights, read without pickle, and the image preprocessing they were trained with.

The rooms of this package, one idea each:

* :mod:`miniclip.pretrained.safetensors` — the safetensors file format by hand: an 8-byte
  header length, a JSON header naming every tensor's dtype, shape and byte range, then the raw
  bytes. Reading it runs no code, which is why miniclip reads released weights only in this
  format and refuses pickle files (``.bin``, ``.pt``, ``.pth``, ``.ckpt``, ``.pkl``).
* :mod:`miniclip.pretrained.preprocess` — CLIP's image preprocessing: RGB, shortest side to
  224 with bicubic resampling, centre crop to 224 × 224, then ``(pixels / 255 − mean) / std``
  with CLIP's mean and std, the same numbers as ``transformers.CLIPImageProcessor``.

Still to come (other modules): ``names`` (the table of released models), ``hf_config`` (a
Hugging Face ``config.json`` as a miniclip configuration), ``load`` (the weights into a
miniclip CLIP) and ``fetch`` (the download).
"""
