"""Cancellation of long calls from another thread (CancelToken), and at interpreter exit.

Each cancellation is triggered from inside the call's own round callback or after it, so the
tests are deterministic: they check where the call stopped, not how fast."""
from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import vec2text_c

SENTENCES = ["a man is playing a guitar", "two dogs run in the park", "the woman is slicing an onion",
             "a child is riding a horse", "the cat sleeps on the bed", "someone is cutting a tomato"]


@pytest.fixture(scope="module")
def pair(minilm_pair):
    inv, cor = minilm_pair
    c = vec2text_c.load_corrector(inv, cor)
    return c, c.embed(SENTENCES, 32)


def test_cancel_from_the_call_itself_stops_after_that_round(pair):
    c, E = pair
    token = vec2text_c.CancelToken()
    seen = []

    def cb(rnd, texts, cos):
        seen.append(rnd)
        if rnd == 2:
            token.cancel()

    with pytest.raises(vec2text_c.Cancelled, match="CancelToken was cancelled"):
        vec2text_c.invert_embeddings(E, c, num_steps=20, sequence_beam_width=2, callback=cb, cancel=token)
    assert seen == [0, 1, 2] and token.cancelled
    # the corrector is intact: the same call without cancellation gives the uncancelled result
    want = vec2text_c.invert_embeddings(E, c, num_steps=3, sequence_beam_width=2)
    assert vec2text_c.invert_embeddings(E, c, num_steps=3, sequence_beam_width=2, cancel=vec2text_c.CancelToken()) == want
    # a cancelled token stops the next call before it starts
    with pytest.raises(vec2text_c.Cancelled, match="before it started"):
        vec2text_c.invert_embeddings(E, c, num_steps=1, cancel=token)


def test_a_worker_thread_is_cancelled_from_the_main_thread(pair):
    c, E = pair
    token = vec2text_c.CancelToken()
    started, result = threading.Event(), {}

    def cb(rnd, texts, cos):
        result.setdefault("rounds", []).append(rnd)
        started.set()

    def work():
        try:
            result["out"] = vec2text_c.invert_embeddings(np.repeat(E, 8, axis=0), c, num_steps=500,
                                                         sequence_beam_width=4, callback=cb, cancel=token)
        except vec2text_c.Cancelled as e:
            result["error"] = e

    t = threading.Thread(target=work)
    t.start()
    assert started.wait(120)
    token.cancel()
    t.join(300)
    assert not t.is_alive()
    assert isinstance(result.get("error"), vec2text_c.Cancelled) and "out" not in result
    assert result["rounds"][-1] < 500


def test_the_embedder_and_bad_tokens(pair):
    c, _ = pair
    emb = vec2text_c.load_embedder("sentence-transformers/all-MiniLM-L6-v2")
    token = vec2text_c.CancelToken()
    np.testing.assert_array_equal(emb.encode(SENTENCES, cancel=token), emb.encode(SENTENCES))
    token.cancel()
    assert repr(token) == "CancelToken(cancelled=True)"
    with pytest.raises(vec2text_c.Cancelled):
        emb.encode(SENTENCES, cancel=token)
    with pytest.raises(TypeError, match="cancel: expected a vec2text_c.CancelToken or None, got str"):
        vec2text_c.invert_strings(SENTENCES[:1], c, cancel="stop")
    with pytest.raises(TypeError, match="cancel: expected a vec2text_c.CancelToken or None, got Event"):
        emb.encode(SENTENCES, cancel=threading.Event())
    with pytest.raises(TypeError):
        vec2text_c.CancelToken(1)
    # cancelling the outer call's token stops the embedding inside invert_strings as well
    with pytest.raises(vec2text_c.Cancelled):
        vec2text_c.invert_strings(SENTENCES, c, num_steps=1, cancel=token)


EXIT = """
import sys, threading
sys.path.insert(0, sys.argv[1])
import numpy as np
import vec2text_c
c = vec2text_c.load_corrector(sys.argv[2], sys.argv[3])
E = np.repeat(c.embed(["a man is playing a guitar", "two dogs run in the park"], 32), 16, axis=0)
started = threading.Event()

def work():
    try:
        vec2text_c.invert_embeddings(E, c, num_steps=2000, sequence_beam_width=4, callback=lambda *a: started.set())
        print("finished", flush=True)
    except vec2text_c.Cancelled:
        print("cancelled at exit", flush=True)

threading.Thread(target=work).start()
started.wait()
print("main thread done", flush=True)
"""


def test_interpreter_exit_cancels_a_worker_thread(minilm_pair, tmp_path):
    # without the exit hook the interpreter would wait for 2,000 correction rounds of 32 examples
    inv, cor = minilm_pair
    root = str(Path(vec2text_c.__file__).resolve().parents[1])
    r = subprocess.run([sys.executable, "-c", EXIT, root, str(inv), str(cor)], capture_output=True, text=True,
                       timeout=600, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split() == "main thread done cancelled at exit".split()
