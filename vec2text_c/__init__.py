"""vec2text_c: text embedding inversion (vec2text) with a C core on oneDNN."""
from ._loader import preload_onednn as _preload_onednn

_preload_onednn()

from . import _core  # noqa: E402
from .bert import BertModel  # noqa: E402
from .embedders import Embedder, load_embedder  # noqa: E402
from .t5 import T5Config, T5Model  # noqa: E402
from .tokenizers import WordPieceTokenizer  # noqa: E402
from .t5_tokenizer import T5Tokenizer  # noqa: E402
from . import gtr as _gtr  # noqa: E402,F401  (registers the GTR embedder recipe)
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

__all__ = [
    "BertModel",
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
