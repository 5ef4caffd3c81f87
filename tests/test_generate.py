"""The C greedy / beam search against transformers' `generate` (pinned 4.46.3).

The C search (`_core.generate_with_callback`) drives a Python step function that runs the torch
decoder of a tiny random T5 on the full prefix of every row, reordering the prefixes by the
`parents` the search hands back. The reference is `model.generate` on the same model with
`use_cache=False`, so both sides see bit-identical logits and any difference in the returned
ids comes from the search itself (one test also runs the reference with its default KV cache).
"""
from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from transformers import T5Config, T5ForConditionalGeneration

from vec2text_c import _core

N_INPUTS = 32
MAX_LENGTH = 12

# name -> (vocab, layers, feed-forward, tied embeddings, factor on the lm_head row of eos)
MODELS = {
    "v64-relu-tied": (64, 1, "relu", True, 1.0),  # 64 < 128: torch.topk takes the nth_element path
    "v200-gated-untied": (200, 2, "gated-gelu", False, 1.0),  # partial_sort path
    "v96-eos-heavy": (96, 2, "relu", False, 6.0),  # rows end at many different lengths
    "v6-tiny": (6, 1, "relu", False, 1.0),  # 2 * beams > vocab: -1e9 beams tie on the first step
}

# (length_penalty, early_stopping): the full grid where rows really end with eos, a subset elsewhere
SCORING = [(1.0, False), (1.0, True), (0.5, False), (2.0, False), (2.0, True)]
SCORING_SHORT = [(1.0, False), (0.5, True)]


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """The models are tiny: one thread is fastest and avoids spinning on a shared machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@functools.lru_cache(maxsize=None)
def tiny_t5(name: str, cls=T5ForConditionalGeneration):
    vocab, layers, ff, tied, eos_factor = MODELS[name]
    torch.manual_seed(sum(map(ord, name)))
    cfg = T5Config(
        vocab_size=vocab, d_model=32, d_kv=8, d_ff=48, num_layers=layers, num_heads=4, feed_forward_proj=ff,
        tie_word_embeddings=tied, dropout_rate=0.0, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1,
    )
    model = cls(cfg).eval()
    if eos_factor != 1.0:
        with torch.no_grad():
            model.lm_head.weight[1] *= eos_factor
    return model


def encoder_inputs(vocab: int, n: int = N_INPUTS, seed: int = 7):
    """n inputs of lengths 1..12 (right-padded with 0), ids in [2, vocab)."""
    g = np.random.default_rng(seed)
    lengths = g.integers(1, 13, n)
    lengths[0] = 12
    ids = np.zeros((n, lengths.max()), np.int64)
    mask = np.zeros_like(ids)
    for i, length in enumerate(lengths):
        ids[i, :length] = g.integers(2, vocab, length)
        mask[i, :length] = 1
    return torch.from_numpy(ids), torch.from_numpy(mask)


class TorchStep:
    """step_fn for the C search: the torch decoder over each row's full prefix."""

    def __init__(self, model, ids, mask, beams, transform=None):
        self.model, self.beams, self.transform = model, beams, transform
        with torch.no_grad():
            enc = model.get_encoder()(input_ids=ids, attention_mask=mask).last_hidden_state
        self.enc = enc.repeat_interleave(beams, 0)
        self.mask = mask.repeat_interleave(beams, 0)
        self.prefix = None
        self.calls = 0

    def __call__(self, tokens, parents):
        assert tokens.dtype == np.int32 and tokens.shape == (self.enc.shape[0],)
        new = torch.from_numpy(tokens.astype(np.int64))[:, None]
        if self.prefix is None:
            assert parents is None
            self.prefix = new
        else:
            prefix = self.prefix
            if parents is not None:
                assert parents.dtype == np.int32
                rows = np.arange(len(parents))
                assert np.array_equal(parents // self.beams, rows // self.beams), "parent in another example"
                prefix = prefix[torch.from_numpy(parents.astype(np.int64))]
            self.prefix = torch.cat([prefix, new], 1)
        self.calls += 1
        with torch.no_grad():
            out = self.model(encoder_outputs=(self.enc,), attention_mask=self.mask, decoder_input_ids=self.prefix,
                             use_cache=False)
        logits = out.logits[:, -1, :].numpy()
        return self.transform(logits) if self.transform else logits


def reference(model, ids, mask, use_cache=False, **kw):
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=mask, do_sample=False, use_cache=use_cache,
                             output_scores=True, return_dict_in_generate=True, **kw)
    scores = out.sequences_scores.numpy() if kw.get("num_beams", 1) > 1 else None
    return out.sequences.numpy(), scores


def c_search(model, ids, mask, transform=None, **kw):
    step = TorchStep(model, ids, mask, kw.get("num_beams", 1), transform)
    got, scores = _core.generate_with_callback(step, ids.shape[0], model.config.vocab_size, **kw)
    return got, scores, step


def assert_same(got, ref, got_scores=None, ref_scores=None):
    assert got.dtype == np.int64
    assert got.shape == ref.shape, f"shape {got.shape} != transformers {ref.shape}"
    bad = np.argwhere(got != ref)
    assert bad.size == 0, f"first mismatch at {tuple(bad[0])}: row {got[bad[0][0]]} vs {ref[bad[0][0]]}"
    if ref_scores is not None:
        np.testing.assert_allclose(got_scores, ref_scores, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", list(MODELS))
def test_greedy_matches_transformers(name):
    model = tiny_t5(name)
    ids, mask = encoder_inputs(model.config.vocab_size)
    ref, _ = reference(model, ids, mask, max_length=MAX_LENGTH)
    got, scores, step = c_search(model, ids, mask, max_length=MAX_LENGTH)
    assert scores is None
    assert_same(got, ref)
    assert step.calls == ref.shape[1] - 1


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("beams", [2, 4])
@pytest.mark.parametrize("all_returned", [False, True])
def test_beam_matches_transformers(name, beams, all_returned):
    model = tiny_t5(name)
    ids, mask = encoder_inputs(model.config.vocab_size)
    returned = beams if all_returned else 1
    for length_penalty, early_stopping in SCORING if name == "v96-eos-heavy" else SCORING_SHORT:
        kw = dict(max_length=MAX_LENGTH, num_beams=beams, num_return_sequences=returned,
                  length_penalty=length_penalty, early_stopping=early_stopping)
        ref, ref_scores = reference(model, ids, mask, **kw)
        got, scores, _ = c_search(model, ids, mask, **kw)
        assert_same(got, ref, scores, ref_scores)


def test_eos_heavy_model_exercises_padding_and_early_stop():
    """The eos-heavy model must really end rows early and at different lengths (else the
    comparisons above would not cover padding), and batches that all end early come back
    trimmed to their longest row exactly like transformers."""
    model = tiny_t5("v96-eos-heavy")
    ids, mask = encoder_inputs(96)
    ref, _ = reference(model, ids, mask, max_length=MAX_LENGTH, num_beams=4, num_return_sequences=4)
    ended = [int(np.argmax(r == 1)) + 1 for r in ref if (r == 1).any()]
    assert len(set(ended)) >= 4 and len(ended) < len(ref)
    widths = []
    for i in range(8):
        for kw in (dict(), dict(num_beams=2), dict(num_beams=4, num_return_sequences=3, early_stopping=True)):
            r, rs = reference(model, ids[i:i + 1], mask[i:i + 1], max_length=MAX_LENGTH, **kw)
            got, scores, _ = c_search(model, ids[i:i + 1], mask[i:i + 1], max_length=MAX_LENGTH, **kw)
            assert_same(got, r, scores, rs)
            widths.append(r.shape[1])
    assert min(widths) < MAX_LENGTH


def test_matches_transformers_with_its_kv_cache():
    model = tiny_t5("v96-eos-heavy")
    ids, mask = encoder_inputs(96)
    for kw in (dict(), dict(num_beams=4, num_return_sequences=2)):
        ref, ref_scores = reference(model, ids, mask, use_cache=True, max_length=16, **kw)
        got, scores, _ = c_search(model, ids, mask, max_length=16, **kw)
        assert_same(got, ref, scores, ref_scores)


@pytest.mark.parametrize("kw", [
    dict(num_beams=2, early_stopping="never"),
    dict(num_beams=3, num_return_sequences=2, length_penalty=-0.5),
    dict(num_beams=4, num_return_sequences=4, early_stopping="never", length_penalty=0.7),
    dict(max_length=2),
    dict(max_length=2, num_beams=3, num_return_sequences=3),
    dict(eos_token_id=None),
    dict(eos_token_id=None, num_beams=2, num_return_sequences=2),
    dict(num_beams=5, num_return_sequences=5, max_length=7),
])
def test_other_settings_match_transformers(kw):
    model = tiny_t5("v96-eos-heavy")
    ids, mask = encoder_inputs(96)
    kw = {"max_length": MAX_LENGTH, **kw}
    ref, ref_scores = reference(model, ids, mask, **kw)
    got, scores, _ = c_search(model, ids, mask, **kw)
    assert_same(got, ref, scores, ref_scores)


class RoundedT5(T5ForConditionalGeneration):
    """Logits rounded to multiples of 1/4: many exactly equal candidates."""

    def forward(self, *args, **kwargs):
        out = super().forward(*args, **kwargs)
        out.logits = torch.round(out.logits * 4) / 4
        return out


@pytest.mark.parametrize("beams", [2, 3, 4])
def test_exact_ties_come_out_in_torch_order(beams):
    model = tiny_t5("v64-relu-tied", RoundedT5)
    ids, mask = encoder_inputs(64, seed=beams)
    rounded = lambda x: np.round(x * 4) / 4  # noqa: E731
    for length_penalty, early_stopping in [(1.0, False), (0.5, True)]:
        kw = dict(max_length=MAX_LENGTH, num_beams=beams, num_return_sequences=beams,
                  length_penalty=length_penalty, early_stopping=early_stopping)
        ref, ref_scores = reference(model, ids, mask, **kw)
        got, scores, _ = c_search(model, ids, mask, transform=rounded, **kw)
        assert_same(got, ref, scores, ref_scores)
    ref, _ = reference(model, ids, mask, max_length=MAX_LENGTH)
    got, _, _ = c_search(model, ids, mask, transform=rounded, max_length=MAX_LENGTH)
    assert_same(got, ref)


# --- the search's kernels: top-k, argmax, log-softmax -------------------------------------

@pytest.mark.parametrize("n", [1, 2, 3, 5, 17, 100, 127, 128, 129, 256, 1000, 4100, 20000])
@pytest.mark.parametrize("levels", [1, 3, 50, None])
def test_topk_matches_torch_including_ties(rng, n, levels):
    if levels is None:
        x = rng.standard_normal((4, n)).astype(np.float32)
    else:
        x = rng.integers(0, levels, (4, n)).astype(np.float32)
    x[:, :: max(1, n // 7)] = -np.inf
    for k in sorted({1, 2, 3, 4, 8, 16, 65, n // 2, n}):
        if not 1 <= k <= n:
            continue
        tv, ti = torch.topk(torch.from_numpy(x), k, dim=1, largest=True, sorted=True)
        for reference in (False, True):
            values, indices = _core.kernel_topk(x, k, reference=reference)
            np.testing.assert_array_equal(values, tv.numpy())
            np.testing.assert_array_equal(indices, ti.numpy(), err_msg=f"n={n} k={k} reference={reference}")


def test_topk_puts_nan_first_like_torch():
    x = np.array([[1.0, np.nan, 3.0, np.nan, 2.0] * 40], np.float32)
    tv, ti = torch.topk(torch.from_numpy(x), 3)
    for reference in (False, True):
        values, indices = _core.kernel_topk(x, 3, reference=reference)
        np.testing.assert_array_equal(indices, ti.numpy())
        np.testing.assert_array_equal(values, tv.numpy())


@pytest.mark.parametrize("n", [1, 5, 8, 9, 64, 1001])
def test_argmax_matches_torch(rng, n):
    x = rng.integers(0, 4, (6, n)).astype(np.float32)  # many tied maxima: the first one wins
    x[1] = -np.inf
    x[2, n // 2] = np.nan
    x[3, -1] = np.nan
    x[4, 0] = np.nan
    want = torch.argmax(torch.from_numpy(x), dim=1).numpy()
    np.testing.assert_array_equal(_core.kernel_argmax(x), want)
    np.testing.assert_array_equal(_core.kernel_argmax(x, reference=True), want)


@pytest.mark.parametrize("n", [1, 7, 8, 33, 200, 32128])
def test_log_softmax_matches_reference_and_torch(rng, n):
    x = (rng.standard_normal((5, n)) * rng.uniform(0.1, 30, (5, 1))).astype(np.float32)
    x[1, 1::3] = -np.inf
    x[2] += 1000.0
    add = rng.standard_normal(5).astype(np.float32) * 10
    add[0] = -1e9
    fast = _core.kernel_log_softmax(x, add)
    ref = _core.kernel_log_softmax(x, add, reference=True)
    want = (torch.log_softmax(torch.from_numpy(x), dim=1) + torch.from_numpy(add)[:, None]).numpy()
    finite = np.isfinite(want)
    assert np.array_equal(np.isfinite(fast), finite) and np.array_equal(np.isfinite(ref), finite)
    # a few ulps of the terms: |x - max| and log(sum(exp)) <= log(n), then the added score
    mag = np.abs(x - x.max(1, keepdims=True)) + np.log(n) + 1 + np.abs(add)[:, None]
    tol = 4 * np.spacing(mag[finite].astype(np.float32))
    assert np.all(np.abs(fast[finite] - want[finite]) <= tol)
    assert np.all(np.abs(ref[finite] - want[finite]) <= tol)
    assert np.all(np.abs(fast[finite] - ref[finite]) <= tol)


@pytest.mark.parametrize("bad", [np.nan, "all -inf", np.inf])
def test_log_softmax_rejects_rows_without_finite_maximum(bad):
    x = np.zeros((2, 20), np.float32)
    if bad == "all -inf":
        x[1] = -np.inf
    else:
        x[1, 7] = bad
    for reference in (False, True):
        with pytest.raises(ValueError, match="row 1"):
            _core.kernel_log_softmax(x, np.zeros(2, np.float32), reference=reference)


# --- argument validation -------------------------------------------------------------------

def zeros_step(vocab):
    def step(tokens, parents):
        logits = np.zeros((len(tokens), vocab), np.float32)
        logits[:, 3] = 1.0
        return logits
    return step


@pytest.mark.parametrize("kw, exc, words", [
    (dict(max_length=1), ValueError, "max_length"),
    (dict(max_length=0), ValueError, "max_length"),
    (dict(num_beams=0), ValueError, "num_beams"),
    (dict(num_beams=2, num_return_sequences=3), ValueError, "num_return_sequences"),
    (dict(num_return_sequences=2), ValueError, "num_return_sequences"),
    (dict(num_beams=2, num_return_sequences=0), ValueError, "num_return_sequences"),
    (dict(length_penalty=float("nan")), ValueError, "length_penalty"),
    (dict(early_stopping="sometimes"), ValueError, "early_stopping"),
    (dict(early_stopping=1), ValueError, "early_stopping"),
    (dict(eos_token_id=10), ValueError, "eos_token_id"),
    (dict(eos_token_id=-1), ValueError, "eos_token_id"),
    (dict(eos_token_id="1"), TypeError, "eos_token_id"),
    (dict(pad_token_id=10), ValueError, "pad_token_id"),
    (dict(decoder_start_token_id=-3), ValueError, "decoder_start_token_id"),
    (dict(decoder_start_token_id=None), TypeError, "decoder_start_token_id"),
    (dict(batch=0), ValueError, "batch"),
    (dict(vocab=0), ValueError, "vocab"),
    (dict(vocab=1, num_beams=2), ValueError, "vocab"),
])
def test_bad_arguments_name_the_argument(kw, exc, words):
    args = {"batch": 2, "vocab": 10, **kw}
    batch, vocab = args.pop("batch"), args.pop("vocab")
    with pytest.raises(exc, match=words):
        _core.generate_with_callback(zeros_step(10), batch, vocab, **args)


def test_step_fn_must_be_callable():
    with pytest.raises(TypeError, match="step_fn"):
        _core.generate_with_callback(None, 2, 10)


@pytest.mark.parametrize("beams", [1, 3])
def test_step_fn_result_shape_and_dtype_are_checked(beams):
    with pytest.raises(ValueError, match=r"step_fn result.*\[6, 10\].*\[6, 9\]" if beams == 3 else "step_fn result"):
        _core.generate_with_callback(lambda t, p: np.zeros((len(t), 9), np.float32), 2, 10, num_beams=beams)
    with pytest.raises(ValueError, match="step_fn result"):
        _core.generate_with_callback(lambda t, p: np.zeros(len(t) * 10, np.float32), 2, 10, num_beams=beams)
    with pytest.raises(TypeError, match="step_fn result"):
        _core.generate_with_callback(lambda t, p: np.zeros((len(t), 10), np.int64), 2, 10, num_beams=beams)


@pytest.mark.parametrize("beams", [1, 2])
def test_step_fn_exception_surfaces_unchanged(beams):
    class Boom(Exception):
        pass

    calls = []

    def step(tokens, parents):
        calls.append(1)
        if len(calls) == 3:
            raise Boom("third step failed")
        return zeros_step(10)(tokens, parents)

    with pytest.raises(Boom, match="third step failed"):
        _core.generate_with_callback(step, 2, 10, num_beams=beams, eos_token_id=None)
    assert len(calls) == 3


@pytest.mark.parametrize("beams", [1, 2])
def test_nan_logits_raise(beams):
    def step(tokens, parents):
        logits = zeros_step(10)(tokens, parents)
        logits[-1, 5] = np.nan
        return logits

    with pytest.raises(ValueError, match="NaN"):
        _core.generate_with_callback(step, 2, 10, num_beams=beams)


def test_defaults_are_t5s():
    # max_length 20, start 0, eos 1, pad 0: a decoder that always prefers token 3 runs to 20 columns.
    got, scores = _core.generate_with_callback(zeros_step(10), 3, 10)
    assert scores is None
    np.testing.assert_array_equal(got, np.array([[0] + [3] * 19] * 3))


class Retiring:
    """retire_fn for the C search: records each call, and poisons the logits of retired examples
    with NaN from then on, so a search that read them would fail."""

    def __init__(self, step, batch):
        self.step, self.beams, self.calls = step, step.beams, []
        self.done = np.zeros(batch, bool)

    def __call__(self, done):
        assert done.dtype == np.bool_ and done.shape == self.done.shape
        assert (done >= self.done).all(), "an example came back after it was retired"
        assert done.any() and not done.all()
        self.calls.append(done.copy())
        self.done = done.copy()

    def step_fn(self, tokens, parents):
        logits = self.step(tokens, parents)
        logits[np.repeat(self.done, self.beams)] = np.nan
        return logits


@pytest.mark.parametrize("kw", [dict(), dict(num_beams=2), dict(num_beams=4, num_return_sequences=4),
                                dict(num_beams=4, early_stopping=True, length_penalty=0.5)],
                         ids=["greedy", "beam2", "beam4-all", "beam4-early"])
def test_finished_examples_are_retired_and_never_read(kw):
    """The searches tell the decoder which examples are finished (so the C decoder stops computing
    their rows) and never look at those rows again: NaN logits there change nothing."""
    model = tiny_t5("v96-eos-heavy")
    ids, mask = encoder_inputs(96)
    kw = dict(max_length=MAX_LENGTH, **kw)
    ref, ref_scores = reference(model, ids, mask, **kw)
    step = TorchStep(model, ids, mask, kw.get("num_beams", 1))
    r = Retiring(step, ids.shape[0])
    got, scores = _core.generate_with_callback(r.step_fn, ids.shape[0], 96, retire_fn=r, **kw)
    assert_same(got, ref, scores, ref_scores)
    assert len(r.calls) >= 2  # examples end at several steps (checked above for this model)
    with pytest.raises(TypeError, match="retire_fn: expected a callable or None, got int"):
        _core.generate_with_callback(step, 2, 96, retire_fn=3)
