"""miniclip: CLIP rebuilt from scratch in NumPy, every forward and backward pass by hand.

Start with ``miniclip walkthrough`` (the 3-pair example, every number printed) and the
lessons in ``lessons/``. The backend (NumPy or CuPy) is chosen in :mod:`miniclip.backend`.
"""

from miniclip.backend import get_array_module, get_device, set_device, to_device, to_host
from miniclip.module import Module, Parameter

__version__ = "0.1.0"

__all__ = ["Module", "Parameter", "get_array_module", "get_device", "set_device", "to_device", "to_host"]
