"""T5Model.generate (C encoder, C decoder with KV cache, C search) against transformers'
`generate` on tiny random T5 models: v1.0 / v1.1, tied / untied embeddings; greedy and beam
search with 2 and 4 beams, one or all hypotheses returned; ids must be identical."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from transformers import T5Config, T5ForConditionalGeneration

from vec2text_c import T5Model

VOCAB = 120
N_INPUTS = 40
MAX_LENGTH = 16

# name -> (T5Config fields, factor on the lm_head row of eos: untied models end rows early)
CONFIGS = {
    "v1_0_relu_tied": (dict(d_model=32, d_kv=8, num_heads=4, d_ff=64, num_layers=2, num_decoder_layers=2,
                            feed_forward_proj="relu", tie_word_embeddings=True), 1.0),
    "v1_0_relu_untied": (dict(d_model=32, d_kv=8, num_heads=4, d_ff=64, num_layers=1, num_decoder_layers=2,
                              feed_forward_proj="relu", tie_word_embeddings=False), 3.0),
    "v1_1_gated_tied": (dict(d_model=32, d_kv=8, num_heads=4, d_ff=48, num_layers=2, num_decoder_layers=2,
                             feed_forward_proj="gated-gelu", tie_word_embeddings=True), 1.0),
    "v1_1_gated_untied": (dict(d_model=32, d_kv=16, num_heads=2, d_ff=48, num_layers=3, num_decoder_layers=1,
                               feed_forward_proj="gated-gelu", tie_word_embeddings=False), 3.0),
}

SETTINGS = [
    dict(),
    dict(num_beams=2),
    dict(num_beams=2, num_return_sequences=2),
    dict(num_beams=4),
    dict(num_beams=4, num_return_sequences=4),
    dict(num_beams=4, num_return_sequences=4, length_penalty=0.5, early_stopping=True),
    dict(num_beams=2, num_return_sequences=2, length_penalty=2.0),
]


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module", params=list(CONFIGS))
def pair(request, tmp_path_factory):
    fields, eos_factor = CONFIGS[request.param]
    torch.manual_seed(list(CONFIGS).index(request.param))
    ref = T5ForConditionalGeneration(
        T5Config(vocab_size=VOCAB, dropout_rate=0.0, decoder_start_token_id=0, **fields)
    ).eval()
    if eos_factor != 1.0:
        with torch.no_grad():
            ref.lm_head.weight[1] *= eos_factor
    path = tmp_path_factory.mktemp(request.param)
    ref.save_pretrained(path, safe_serialization=True)
    return ref, T5Model.from_pretrained(path)


def encoder_inputs(n=N_INPUTS, seed=3):
    g = np.random.default_rng(seed)
    lengths = g.integers(1, 13, n)
    ids = np.zeros((n, lengths.max()), np.int64)
    mask = np.zeros_like(ids)
    for i, length in enumerate(lengths):
        ids[i, :length] = g.integers(2, VOCAB, length)
        mask[i, :length] = 1
    return ids, mask


def reference(ref, **kw):
    kw = {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
    with torch.no_grad():
        return ref.generate(do_sample=False, **kw).numpy()


def assert_same_ids(got, want):
    assert got.dtype == np.int64
    assert got.shape == want.shape, f"shape {got.shape} != transformers {want.shape}"
    bad = np.argwhere((got != want).any(1)).ravel()
    assert bad.size == 0, f"{bad.size} rows differ, first {bad[0]}: {got[bad[0]]} vs {want[bad[0]]}"


@pytest.mark.parametrize("kw", SETTINGS, ids=lambda kw: "-".join(f"{k}={v}" for k, v in kw.items()) or "greedy")
def test_generate_matches_transformers(pair, kw):
    ref, model = pair
    ids, mask = encoder_inputs()
    want = reference(ref, input_ids=ids, attention_mask=mask, max_length=MAX_LENGTH, **kw)
    got = model.generate(ids, mask, max_length=MAX_LENGTH, **kw)
    assert_same_ids(got, want)


def test_eos_paths_are_exercised(tmp_path):
    """The untied models must end rows early at many lengths, else the comparison above would
    not cover eos handling and padding."""
    fields, eos_factor = CONFIGS["v1_0_relu_untied"]
    torch.manual_seed(list(CONFIGS).index("v1_0_relu_untied"))
    ref = T5ForConditionalGeneration(
        T5Config(vocab_size=VOCAB, dropout_rate=0.0, decoder_start_token_id=0, **fields)
    ).eval()
    with torch.no_grad():
        ref.lm_head.weight[1] *= eos_factor
    ids, mask = encoder_inputs()
    out = reference(ref, input_ids=ids, attention_mask=mask, max_length=MAX_LENGTH, num_beams=4,
                    num_return_sequences=4)
    ended = [int(np.argmax(r == 1)) for r in out if (r == 1).any()]
    assert len(set(ended)) >= 4 and len(ended) < len(out)


def test_inputs_embeds_and_encoder_states_sources(pair):
    ref, model = pair
    ids, mask = encoder_inputs(12, seed=5)
    embeds = ref.get_input_embeddings()(torch.from_numpy(ids)).detach().numpy()
    kw = dict(max_length=MAX_LENGTH, num_beams=3, num_return_sequences=2)
    want = reference(ref, inputs_embeds=embeds, attention_mask=mask, **kw)
    assert_same_ids(model.generate(inputs_embeds=embeds, attention_mask=mask, **kw), want)
    states = model.encode(ids, mask)
    assert_same_ids(model.generate(attention_mask=mask, encoder_hidden_states=states, **kw),
                    model.generate(ids, mask, **kw))


def test_threads_share_one_model(pair):
    ref, model = pair
    ids, mask = encoder_inputs(16, seed=9)
    kw = dict(max_length=MAX_LENGTH, num_beams=2, num_return_sequences=2)
    want = model.generate(ids, mask, **kw)
    results = [None] * 4

    def work(i):
        results[i] = model.generate(ids, mask, **kw)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        np.testing.assert_array_equal(r, want)


@pytest.mark.parametrize("kw, exc, words", [
    (dict(max_length=1), ValueError, "max_length"),
    (dict(max_length=10_000), ValueError, "max_length"),
    (dict(num_beams=0), ValueError, "num_beams"),
    (dict(num_beams=2, num_return_sequences=3), ValueError, "num_return_sequences"),
    (dict(num_return_sequences=2), ValueError, "num_return_sequences"),
    (dict(early_stopping="soon"), ValueError, "early_stopping"),
    (dict(length_penalty=float("inf")), ValueError, "length_penalty"),
    (dict(input_ids=None), ValueError, "input_ids"),
    (dict(input_ids=np.full((2, 3), VOCAB)), ValueError, "input_ids"),
    (dict(input_ids=np.zeros((2, 3), np.float32)), TypeError, "input_ids"),
    (dict(attention_mask=np.ones((3, 3), np.int64)), ValueError, "attention_mask"),
])
def test_bad_arguments(pair, kw, exc, words):
    _, model = pair
    args = dict(input_ids=np.full((2, 3), 5), **{k: v for k, v in kw.items() if k != "input_ids"})
    if "input_ids" in kw:
        args["input_ids"] = kw["input_ids"]
    with pytest.raises(exc, match=words):
        model.generate(**args)


@pytest.mark.parametrize("kw", [dict(), dict(num_beams=4, num_return_sequences=4)], ids=["greedy", "beam4"])
def test_computing_finished_rows_too_gives_the_same_ids(pair, kw, monkeypatch):
    """By default the C decoder stops computing the rows of finished examples;
    VEC2TEXT_C_KEEP_FINISHED=1 computes every row as transformers does. Same ids either way."""
    ref, model = pair
    ids, mask = encoder_inputs()
    want = reference(ref, input_ids=ids, attention_mask=mask, max_length=MAX_LENGTH, **kw)
    monkeypatch.setenv("VEC2TEXT_C_KEEP_FINISHED", "1")
    assert_same_ids(model.generate(ids, mask, max_length=MAX_LENGTH, **kw), want)
    monkeypatch.setenv("VEC2TEXT_C_KEEP_FINISHED", "0")
    assert_same_ids(model.generate(ids, mask, max_length=MAX_LENGTH, **kw), want)


@pytest.mark.parametrize("beams", [2, 4])
def test_reading_shared_prefixes_from_one_row_gives_the_same_ids(pair, beams, monkeypatch):
    """Beams that descend from one ancestor hold copies of its cache positions; by default the
    self-attention reads those from the example's first row (less memory traffic).
    VEC2TEXT_C_OWN_CACHE_ROWS=1 makes every row read its own copy. Same ids either way."""
    ref, model = pair
    ids, mask = encoder_inputs()
    kw = dict(num_beams=beams, num_return_sequences=beams, max_length=MAX_LENGTH)
    want = reference(ref, input_ids=ids, attention_mask=mask, **kw)
    monkeypatch.setenv("VEC2TEXT_C_OWN_CACHE_ROWS", "1")
    assert_same_ids(model.generate(ids, mask, **kw), want)
    monkeypatch.setenv("VEC2TEXT_C_OWN_CACHE_ROWS", "0")
    assert_same_ids(model.generate(ids, mask, **kw), want)
