"""vec2text_c: text embedding inversion (vec2text) with a C core on oneDNN.

    import vec2text_c
    corrector = vec2text_c.load_pretrained_corrector()       # the shipped all-MiniLM-L6-v2 model
    texts = vec2text_c.invert_strings(["some secret text"], corrector, search=True)

The functions of `vec2text.api` (invert_embeddings, invert_strings, load_corrector,
load_pretrained_corrector, ...) with the same arguments and results, on a C core; embedders
(load_embedder), the T5 and BERT models beneath them, and the submodules `align` (aligners
between embedding spaces), `metrics` (BLEU, token F1, cosine as vec2text computes them) and
`train` (training inverters and correctors; the [train] extra), loaded on first use.
"""
from ._loader import preload_onednn as _preload_onednn

_preload_onednn()

try:
    from . import _core  # noqa: E402
except ImportError as _e:  # the source tree without a built extension shadows an installed package
    import os as _os

    _here = _os.path.dirname(_os.path.abspath(__file__))
    raise ImportError(
        f"vec2text_c's C core is not built in {_here} ({_e}). This happens when Python runs from the "
        "repository root, whose vec2text_c folder shadows the installed package: run from another directory, "
        "or build in place with `pip install -e .` (or `python setup.py build_ext --inplace`)") from None
from .bert import BertModel  # noqa: E402
from .embedders import Embedder, load_embedder  # noqa: E402
from .t5 import T5Config, T5Model  # noqa: E402
from .tokenizers import WordPieceTokenizer  # noqa: E402
from .t5_tokenizer import T5Tokenizer  # noqa: E402
from . import gtr as _gtr  # noqa: E402,F401  (registers the GTR embedder recipe)
from ._cancel import CancelToken, Cancelled  # noqa: E402
from .models import Corrector, MissingModelFilesError  # noqa: E402
from .api import (  # noqa: E402
    Search,
    invert_embeddings,
    invert_embeddings_and_return_hypotheses,
    invert_strings,
    load_corrector,
    load_pretrained_corrector,
    load_pretrained_inverter,
)

__version__ = "0.1.0"

_SUBMODULES = ("align", "audit", "metrics", "train", "api", "hub", "weights", "cli")


def __getattr__(name: str):
    """vec2text_c.align / .metrics / .train (and the other submodules) on first use."""
    if name in _SUBMODULES:
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'vec2text_c' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_SUBMODULES))

__all__ = [
    "BertModel",
    "CancelToken",
    "Cancelled",
    "Corrector",
    "Embedder",
    "MissingModelFilesError",
    "Search",
    "T5Config",
    "T5Model",
    "T5Tokenizer",
    "WordPieceTokenizer",
    "__version__",
    "invert_embeddings",
    "invert_embeddings_and_return_hypotheses",
    "invert_strings",
    "load_corrector",
    "load_embedder",
    "load_pretrained_corrector",
    "load_pretrained_inverter",
]
