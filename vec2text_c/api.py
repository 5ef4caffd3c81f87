"""The vec2text-compatible API: same names, arguments and results as `vec2text.api` (0.0.13).

    corrector = vec2text_c.load_pretrained_corrector("gtr-base")      # offline, HF cache
    vec2text_c.invert_embeddings(embeddings, corrector, num_steps=20, sequence_beam_width=4)

Semantics are the reference's, quirks included (see csrc/vec2text/loop.h): num_steps=None is
the inverter alone (greedy, 128 tokens) and needs sequence_beam_width=0; num_steps=0 runs one
correction round; the step-0 hypothesis has at most the corrector's max_seq_length tokens;
hypotheses are re-embedded truncated at max_seq_length; sequence-level beam search keeps the
first b distinct token rows by cosine; the last round returns the best-cosine candidate.

Beyond the reference, all off by default so that results stay identical: `keep_best`,
`stop_at_cosine`, `progress`, `callback`, `batch_size` (examples per decoder batch; by
default as many as fit a 2 GiB decoder state) and `search` (spend more inference to raise the
cosine: more candidates per round, the best hypothesis kept, then local token edits; see Search). Embeddings may be NumPy arrays, torch tensors
or anything with `__array__`; a 1-D vector is one embedding.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from . import _core
from ._cancel import CancelToken, cancel_scope  # noqa: F401  (CancelToken: annotations)
from ._progress import show_progress
from .models import Corrector, load_corrector, load_pretrained_corrector, load_pretrained_inverter

__all__ = [
    "Search",
    "load_corrector",
    "load_pretrained_corrector",
    "load_pretrained_inverter",
    "invert_embeddings",
    "invert_strings",
    "invert_embeddings_and_return_hypotheses",
]

MAX_LENGTH = 128  # generation length of inverter-only outputs and of every correction round


def _check_corrector(corrector) -> Corrector:
    if not isinstance(corrector, Corrector):
        raise TypeError(
            f"corrector: expected a vec2text_c Corrector (from vec2text_c.load_corrector / "
            f"load_pretrained_corrector), got {type(corrector).__name__}"
        )
    return corrector


# No embedder gives values anywhere near this; past it the float32 activations of the
# embedding transform overflow and the decoder sees NaN.
_MAX_ABS = 1e6


def _as_embeddings(embeddings, corrector: Corrector) -> np.ndarray:
    """[B, D] float32 C-contiguous from NumPy / torch / __array__ input; 1-D -> one row."""
    x = embeddings
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch tensors (bfloat16 too)
        x = x.detach().cpu()
        if str(getattr(x, "dtype", "")) == "torch.bfloat16":
            x = x.float()
        x = x.numpy()
    try:
        a = np.asarray(x)
    except Exception as e:  # noqa: BLE001 - anything NumPy cannot read
        raise TypeError(f"embeddings: expected an array of floats [batch, {corrector.dim}], got {type(embeddings).__name__} ({e})") from None
    if a.dtype == object or not np.issubdtype(a.dtype, np.floating):
        raise TypeError(
            f"embeddings: expected a floating-point array [batch, {corrector.dim}], got dtype {a.dtype}"
        )
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2:
        raise ValueError(f"embeddings: expected a 1-D vector or a 2-D array [batch, {corrector.dim}], got shape {list(a.shape)}")
    if a.shape[0] == 0:
        raise ValueError(f"embeddings: expected at least one embedding, got shape {list(a.shape)}")
    if a.shape[1] != corrector.dim:
        raise ValueError(
            f"embeddings: expected dimension {corrector.dim} (the corrector's embedder, "
            f"{corrector.embedder_name!r}), got {a.shape[1]} (shape {list(a.shape)})"
        )
    a = np.ascontiguousarray(a, dtype=np.float32)
    bad = ~np.isfinite(a)
    if bad.any():
        i, j = (int(v) for v in np.argwhere(bad)[0])
        kind = "NaN" if np.isnan(a[i, j]) else "Inf"
        raise ValueError(f"embeddings: expected finite values, found {kind} at [{i}, {j}]")
    big = np.abs(a) > _MAX_ABS
    if big.any():
        i, j = (int(v) for v in np.argwhere(big)[0])
        raise ValueError(f"embeddings: expected the values of an embedding (|x| <= {_MAX_ABS:g}), found {a[i, j]:g} "
                         f"at [{i}, {j}]: the decoder's arithmetic would overflow")
    return a


def _check_steps(num_steps, sequence_beam_width, allow_none=True):
    if num_steps is not None:
        if isinstance(num_steps, bool) or not isinstance(num_steps, numbers.Integral) or num_steps < 0:
            raise ValueError(f"num_steps: expected None or an int >= 0, got {num_steps!r}")
        num_steps = int(num_steps)
    if isinstance(sequence_beam_width, bool) or not isinstance(sequence_beam_width, numbers.Integral) or sequence_beam_width < 0:
        raise ValueError(f"sequence_beam_width: expected an int >= 0, got {sequence_beam_width!r}")
    sequence_beam_width = int(sequence_beam_width)
    if num_steps is None and allow_none and sequence_beam_width != 0:
        raise ValueError(
            "sequence_beam_width: can't set a nonzero beam width without multiple steps (num_steps=None runs the "
            f"inverter alone); got sequence_beam_width={sequence_beam_width}"
        )
    return num_steps, sequence_beam_width


def _check_options(stop_at_cosine, callback, batch_size):
    if stop_at_cosine is not None:
        if isinstance(stop_at_cosine, bool) or not isinstance(stop_at_cosine, numbers.Real) or np.isnan(stop_at_cosine):
            raise ValueError(f"stop_at_cosine: expected None or a number, got {stop_at_cosine!r}")
        stop_at_cosine = float(stop_at_cosine)
    if callback is not None and not callable(callback):
        raise TypeError(f"callback: expected None or a callable (round, texts, cosines), got {type(callback).__name__}")
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1):
        raise ValueError(f"batch_size: expected None or an int >= 1, got {batch_size!r}")
    return stop_at_cosine, 0 if batch_size is None else int(batch_size)


@dataclass(frozen=True)
class Search:
    """Inference-time search that raises the cosine of the result to its target, at the cost of
    more decoding and embedding (beyond vec2text; `invert_embeddings(..., search=Search())` or
    `search=True`).

    candidates: each correction round's beam search returns this many candidates per
        hypothesis (at least sequence_beam_width), all re-embedded and ranked by cosine; the
        round keeps sequence_beam_width hypotheses as vec2text does (the best one with a width
        of 0 or 1). 0: as many as the sequence beam width.
    edit_rounds: after the rounds (after the inverter when num_steps is None), each example's
        best hypothesis is edited one token at a time (substitute, insert, delete) while its
        cosine rises: at most this many accepted edits. Proposals come from the top
        `edit_top_k` tokens of the model's own next-token distribution at each position
        (the corrector, conditioned on the target and the hypothesis, or the inverter).
    Either one also keeps the best hypothesis of any round (keep_best). The result's cosine is
    never below that of plain keep_best."""

    candidates: int = 4
    edit_rounds: int = 8
    edit_top_k: int = 4

    def __post_init__(self):
        for name, lo, hi in (("candidates", 0, 64), ("edit_rounds", 0, 10000), ("edit_top_k", 1, 64)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or not lo <= v <= hi:
                raise ValueError(f"Search.{name}: expected an int in [{lo}, {hi}], got {v!r}")


def _check_search(search) -> Search | None:
    if search is None or search is False:
        return None
    if search is True:
        return Search()
    if isinstance(search, Search):
        return search
    if isinstance(search, dict):
        try:
            return Search(**search)
        except TypeError as e:
            raise ValueError(f"search: {e}; expected the fields of vec2text_c.Search") from None
    raise TypeError(f"search: expected None, a bool, a vec2text_c.Search or a dict of its fields, got {type(search).__name__}")


class _Progress:
    """A tqdm bar in example-rounds: its total, n x (num_steps + 1), is known before the first
    round (the C loop reports the same), so it never jumps."""

    def __init__(self, enabled: bool, n: int, steps: int | None):
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=n * ((steps or 0) + 1), desc="vec2text_c", unit="example-round")

    def __call__(self, done: int, total: int) -> None:
        if self.bar is not None:
            if total != self.bar.total:
                self.bar.total = total
            self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _run(
    embeddings,
    corrector: Corrector,
    num_steps,
    sequence_beam_width,
    *,
    keep_best=False,
    stop_at_cosine=None,
    progress=None,
    callback=None,
    batch_size=None,
    search=None,
    on_round=None,
    timings: dict | None = None,
    cancel=None,
    max_length=None,
):
    with cancel_scope(cancel):
        return _run_in_scope(embeddings, corrector, num_steps, sequence_beam_width, keep_best=keep_best,
                             stop_at_cosine=stop_at_cosine, progress=progress, callback=callback,
                             batch_size=batch_size, search=search, on_round=on_round, timings=timings,
                             max_length=max_length)


def _check_max_length(max_length) -> int:
    """The generation length (None: the reference's); its upper bound, the model's positions, is the C core's check."""
    if max_length is None:
        return MAX_LENGTH
    if isinstance(max_length, bool) or not isinstance(max_length, numbers.Integral) or max_length < 2:
        raise ValueError(f"max_length: expected None or an int >= 2 (tokens generated + the start token), "
                         f"got {max_length!r}")
    return int(max_length)


def _run_in_scope(embeddings, corrector, num_steps, sequence_beam_width, *, keep_best, stop_at_cosine, progress,
                  callback, batch_size, search, on_round, timings, max_length):
    corrector = _check_corrector(corrector)
    if num_steps is not None and not corrector.has_corrector:
        raise ValueError(
            f"num_steps: this model has no corrector (inverter {corrector.inverter_checkpoint.path}); invert with "
            f"num_steps=None (the inverter alone), with search=True to refine its output, got num_steps={num_steps}")
    emb = _as_embeddings(embeddings, corrector)
    stop, chunk = _check_options(stop_at_cosine, callback, batch_size)
    gen_length = _check_max_length(max_length)
    srch = _check_search(search)
    extra = {}
    if srch is not None:
        extra = dict(candidates=srch.candidates, edit_rounds=srch.edit_rounds, edit_top_k=srch.edit_top_k)

    def rounds(rnd, beams, ids, lengths, embs, cos, best, active):
        if on_round is not None:
            on_round(rnd, beams, ids, lengths, embs, cos, best, active)
        if callback is not None:
            rows = np.arange(len(active)) * beams  # each example's best row
            texts = corrector.tokenizer.batch_decode(ids[rows], skip_special_tokens=True)
            cosines = cos[rows] if cos is not None else np.full(len(active), np.nan, dtype=np.float32)
            callback(int(rnd), texts, cosines)

    show = show_progress(progress)
    bar = _Progress(show, len(emb), num_steps)
    try:
        out = _core.invert(
            corrector.inverter,
            corrector.corrector,
            emb,
            corrector.embed_ids,
            num_steps=num_steps,
            sequence_beam_width=sequence_beam_width,
            max_length=gen_length,
            hypothesis_max_length=corrector.max_seq_length,
            keep_best=bool(keep_best),
            stop_at_cosine=stop,
            embed_outputs=callback is not None,
            batch_size=chunk,
            on_round=rounds if (callback is not None or on_round is not None) else None,
            on_progress=bar if show else None,
            timings=timings is not None,
            **extra,
        )
    finally:
        bar.close()
    ids, lengths = out[0], out[1]
    if timings is not None:
        timings.update(out[3])
    return [corrector.tokenizer.decode(row[:n], skip_special_tokens=True) for row, n in zip(ids.tolist(), lengths.tolist())]


def invert_embeddings(
    embeddings,
    corrector: Corrector,
    num_steps: int | None = None,
    sequence_beam_width: int = 0,
    *,
    keep_best: bool = False,
    stop_at_cosine: float | None = None,
    progress: bool | None = None,
    callback: Callable[[int, list, np.ndarray], None] | None = None,
    batch_size: int | None = None,
    search: "bool | Search | dict | None" = None,
    cancel: "CancelToken | None" = None,
    max_length: int | None = None,
) -> list[str]:
    """Texts whose embeddings approximate `embeddings` ([B, D] or [D]), as vec2text does.

    keep_best: return the best-cosine hypothesis seen in any round (step 0 included) instead of
        the last round's. stop_at_cosine: an example stops once its best hypothesis reaches this
        cosine to its target. progress: a tqdm bar (None: when a person is watching, see
        vec2text_c._progress). callback(round, texts, cosines): after the
        inverter's hypothesis (round 0) and each correction round, with every example's current
        best hypothesis and its cosine. batch_size: examples per decoder batch. search: True or
        a Search: more candidates per round, the best hypothesis kept, then local token edits
        accepted while the cosine rises (see Search); None keeps vec2text's results. cancel: a
        vec2text_c.CancelToken; its cancel(), from any thread, stops the call, which raises
        vec2text_c.Cancelled (Ctrl-C reaches only calls on the main thread). max_length: the
        generation length of the inverter-alone output and of every correction round, counting
        the decoder's start token as the reference does (None: vec2text's 128). A model trained
        on short texts gains speed from its own budget + 1 (the shipped MiniLM model: 33), and
        texts that run on repeating a word stop there.
    """
    num_steps, sequence_beam_width = _check_steps(num_steps, sequence_beam_width)
    return _run(
        embeddings,
        corrector,
        num_steps,
        sequence_beam_width,
        keep_best=keep_best,
        stop_at_cosine=stop_at_cosine,
        progress=progress,
        callback=callback,
        batch_size=batch_size,
        search=search,
        cancel=cancel,
        max_length=max_length,
    )


def _check_strings(strings) -> list[str]:
    if isinstance(strings, str):
        return [strings]
    try:
        out = list(strings)
    except TypeError:
        raise TypeError(f"strings: expected a list of str, got {type(strings).__name__}") from None
    if not out:
        raise ValueError("strings: expected at least one string, got an empty list")
    for i, s in enumerate(out):
        if not isinstance(s, str):
            raise TypeError(f"strings: expected a list of str, got {type(s).__name__} at index {i}")
    return out


def invert_strings(
    strings: Sequence[str],
    corrector: Corrector,
    num_steps: int | None = None,
    sequence_beam_width: int = 0,
    **options,
) -> list[str]:
    """Embed `strings` (at most 128 embedder tokens each, as the reference does) and invert them."""
    corrector = _check_corrector(corrector)
    strings = _check_strings(strings)
    with cancel_scope(options.pop("cancel", None)):  # the embedding and the inversion
        embeddings = corrector.embed(strings, MAX_LENGTH)
        return invert_embeddings(embeddings, corrector, num_steps, sequence_beam_width, **options)


def invert_embeddings_and_return_hypotheses(
    embeddings,
    corrector: Corrector,
    num_steps: int | None = None,
    sequence_beam_width: int = 0,
    **options,
):
    """The reference's `invert_embeddings_and_return_hypotheses`, result structure included:
    (strings, embeddings) where strings[0] are the step-0 hypotheses of every example and
    strings[k] (k >= 1) a one-element list with the hypothesis of round k at row
    argmax(best_scores) of that round's hypothesis rows (row 0 without sequence beam search),
    and embeddings the matching re-embeddings ([B, D] first, then [1, D] each) as NumPy arrays.
    Note the reference's quirks: num_steps=None runs one correction round here, and the row
    index is an example index applied to the rows of all beams."""
    num_steps, sequence_beam_width = _check_steps(num_steps, sequence_beam_width, allow_none=False)
    strings: list[list[str]] = []
    hyp_embeddings: list[np.ndarray] = []
    corrector = _check_corrector(corrector)

    def collect(rnd, beams, ids, lengths, embs, cos, best, active):
        if rnd == 0:
            rows = list(range(len(ids)))
        else:
            rows = [int(np.argmax(best)) if best is not None else 0]
        strings.append([corrector.tokenizer.decode(ids[r, : lengths[r]], skip_special_tokens=True) for r in rows])
        hyp_embeddings.append(np.array(embs[rows], dtype=np.float32))

    _run(embeddings, corrector, num_steps or 1, sequence_beam_width, on_round=collect, **options)
    return strings, hyp_embeddings
