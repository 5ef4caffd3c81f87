"""vec2text_c: text embedding inversion (vec2text) with a C core on oneDNN."""
from ._loader import preload_onednn as _preload_onednn

_preload_onednn()

from . import _core  # noqa: E402
from .t5 import T5Config, T5Model  # noqa: E402

__version__ = "0.1.0"

__all__ = ["T5Config", "T5Model", "__version__"]
