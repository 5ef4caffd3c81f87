"""Sharing and repetition: 8 threads using one corrector, one embedder and one T5 at once get
what a serial run gets; repeated inversion, encoding, generation and failing calls leave the
resident set flat."""
from __future__ import annotations

import threading

import numpy as np
import pytest

import vec2text_c
import v2t_reference as ref

N_THREADS = 8
PER_THREAD = 3  # texts each thread inverts
# a leak of 8 KiB per call over LEAK_ROUNDS rounds of each kind would exceed this
LEAK_ROUNDS = 300
LEAK_BOUND_MB = 6.0


@pytest.fixture(scope="module")
def shared(minilm_pair, tmp_path_factory):
    import torch
    from transformers import T5Config as HFConfig, T5ForConditionalGeneration

    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("t5_threads")
    T5ForConditionalGeneration(HFConfig(vocab_size=64, d_model=32, d_kv=8, num_heads=4, d_ff=64, num_layers=2,
                                        decoder_start_token_id=0)).save_pretrained(d)
    c = vec2text_c.load_corrector(*minilm_pair)
    emb = vec2text_c.load_embedder("sentence-transformers/all-MiniLM-L6-v2")
    return c, emb, vec2text_c.T5Model.from_pretrained(d)


def _work(shared, i: int) -> tuple:
    c, emb, t5 = shared
    texts = ref.read_sentences()[i * PER_THREAD:(i + 1) * PER_THREAD]
    E = emb.encode(texts, max_length=32)
    inv = vec2text_c.invert_embeddings(E, c, num_steps=2, sequence_beam_width=2)
    srch = vec2text_c.invert_embeddings(E[:1], c, num_steps=1, search=vec2text_c.Search(candidates=2, edit_rounds=1))
    ids = np.random.default_rng(i).integers(3, 64, size=(3, 7))
    gen = t5.generate(input_ids=ids, attention_mask=np.ones_like(ids), max_length=9, num_beams=3)
    return E, inv, srch, gen


def test_eight_threads_share_one_corrector_embedder_and_t5(shared):
    serial = [_work(shared, i) for i in range(N_THREADS)]
    results: list = [None] * N_THREADS
    errors: list = []
    barrier = threading.Barrier(N_THREADS)

    def run(i):
        try:
            barrier.wait()
            for _ in range(2):
                results[i] = _work(shared, i)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(N_THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for want, got in zip(serial, results):
        np.testing.assert_array_equal(got[0], want[0])
        assert got[1] == want[1] and got[2] == want[2]
        np.testing.assert_array_equal(got[3], want[3])


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    import os

    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def test_repeated_calls_leave_the_resident_set_flat(shared):
    c, emb, t5 = shared
    texts = ref.read_sentences()[:4]
    E = emb.encode(texts, max_length=32)
    bad = E.copy()
    bad[0, 0] = np.nan
    ids = np.arange(3, 10).reshape(1, 7)

    def one_round():
        emb.encode(texts, max_length=32)
        vec2text_c.invert_embeddings(E, c, num_steps=1, sequence_beam_width=2)
        t5.generate(input_ids=ids, attention_mask=np.ones_like(ids), max_length=6, num_beams=2)
        for call in (lambda: vec2text_c.invert_embeddings(bad, c),
                     lambda: vec2text_c.invert_embeddings(E[:, :5], c),
                     lambda: t5.generate(input_ids=ids, max_length=0),
                     lambda: emb.encode([], max_length=32)):
            with pytest.raises((ValueError, TypeError)):
                call()
        token = vec2text_c.CancelToken()
        token.cancel()
        with pytest.raises(vec2text_c.Cancelled):
            vec2text_c.invert_embeddings(E, c, num_steps=1, cancel=token)

    for _ in range(30):  # warm-up: allocator pools, oneDNN primitive caches
        one_round()
    before = _rss_mb()
    for _ in range(LEAK_ROUNDS):
        one_round()
    grown = _rss_mb() - before
    assert grown < LEAK_BOUND_MB, f"resident set grew {grown:.1f} MB over {LEAK_ROUNDS} rounds"
