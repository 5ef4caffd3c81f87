"""vec2text_c's API beyond string parity: the selection kernels against NumPy / torch, the
options the reference lacks (keep_best, stop_at_cosine, callback, progress), Ctrl-C, loading
(HF cache layout, pretrained names, wrong checkpoints) and bad inputs. Parity of the strings
themselves is in test_vec2text_parity.py."""
from __future__ import annotations

import os
import re
import shutil
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from _v2t_fixtures import N_TARGETS, artifacts, ours, reference_strings, targets

import vec2text_c
from vec2text_c import _core

KIND = "gtr"


# ---- selection kernels -------------------------------------------------------------------


def _distinct_topk_reference(scores, ids, keep):
    """The reference loop's selection (trainers/corrector.py), with torch.topk for the order."""
    import torch

    out = []
    for b in range(scores.shape[0]):
        order = torch.from_numpy(scores[b]).topk(k=scores.shape[1]).indices.tolist()
        seen, kept = set(), []
        for j in order:
            row = tuple(ids[b, j].tolist())
            if row not in seen:
                seen.add(row)
                kept.append(j)
            if len(kept) == keep:
                break
        out.append(kept)
    return out


@pytest.mark.parametrize("cands,keep", [(4, 2), (16, 4), (9, 3), (64, 8), (2, 2)])
def test_select_distinct_topk_matches_torch_order_with_ties(rng, cands, keep):
    for trial in range(200):
        B, L = 3, 5
        # few distinct values: many exact ties, as when distinct rows re-embed identically
        scores = rng.choice(np.array([0.1, 0.5, 0.5001, 0.9], dtype=np.float32), size=(B, cands))
        ids = rng.integers(0, 3, size=(B, cands, L)).astype(np.int32)
        ids[:, :, 0] = 0
        # make sure every example has at least `keep` distinct rows
        ids[:, :keep, 1] = np.arange(keep) + 10
        want = _distinct_topk_reference(scores, ids, keep)
        got, short = _core.select_distinct_topk(scores, ids, keep)
        assert short == 0
        assert got.tolist() == want, (trial, scores, ids)


def test_select_distinct_topk_fewer_distinct_rows_than_keep(rng):
    """The reference raises (ragged index lists); we fill the missing slots by repeating the
    distinct rows in their order, and count the example."""
    scores = np.array([[0.3, 0.9, 0.5, 0.1], [0.4, 0.2, 0.8, 0.6]], dtype=np.float32)
    ids = np.zeros((2, 4, 3), dtype=np.int32)
    ids[1] = np.arange(12).reshape(4, 3)  # example 1: all distinct
    ids[0, :, 1] = [5, 7, 5, 5]  # example 0: two distinct rows
    got, short = _core.select_distinct_topk(scores, ids, 3)
    assert short == 1
    assert got.tolist() == [[1, 2, 1], [2, 3, 0]]


def test_select_best_first_index_on_ties(rng):
    scores = rng.choice(np.array([0.2, 0.7], dtype=np.float32), size=(50, 9))
    np.testing.assert_array_equal(_core.select_best(scores), np.argmax(scores, axis=1))


def test_cosine_rows_against_numpy_and_reference(rng):
    a = rng.standard_normal((33, 384)).astype(np.float32)
    b = rng.standard_normal((33, 384)).astype(np.float32)
    want = (a.astype(np.float64) * b).sum(1) / (np.linalg.norm(a.astype(np.float64), axis=1) * np.linalg.norm(b, axis=1))
    np.testing.assert_allclose(_core.kernel_cosine_rows(a, b), want, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(_core.kernel_cosine_rows(a, b, reference=True), want, rtol=1e-6, atol=1e-7)
    shared = _core.kernel_cosine_rows(a, b[0])
    np.testing.assert_allclose(shared, _core.kernel_cosine_rows(a, np.repeat(b[:1], 33, 0)), rtol=0, atol=0)
    # torch's eps: a zero vector has cosine 0, not NaN
    assert _core.kernel_cosine_rows(np.zeros((1, 4), np.float32), np.ones(4, np.float32))[0] == 0


# ---- options beyond the reference --------------------------------------------------------


def _cos(corrector, texts, E):
    """Cosine of re-embedded texts (truncated at max_seq_length, as the loop scores them)."""
    e = corrector.embed(texts, corrector.max_seq_length)
    return (e * E).sum(1) / (np.linalg.norm(e, axis=1) * np.linalg.norm(E, axis=1))


def test_keep_best_is_never_worse_than_the_default():
    c, E = ours(KIND), targets(KIND)
    default = vec2text_c.invert_embeddings(E, c, num_steps=3, sequence_beam_width=2)
    assert default == reference_strings(KIND, E, 3, 2)  # the default is the reference
    best = vec2text_c.invert_embeddings(E, c, num_steps=3, sequence_beam_width=2, keep_best=True)
    cd, cb = _cos(c, default, E), _cos(c, best, E)
    assert (cb >= cd - 1e-5).all(), (cd, cb)
    step0 = []
    vec2text_c.invert_embeddings(E, c, num_steps=3, sequence_beam_width=2, callback=lambda r, t, s: step0.append(s) if r == 0 else None)
    assert (cb >= step0[0] - 1e-5).all()
    assert (cb > cd + 1e-4).any(), "keep_best changed nothing on this grid; pick a case where rounds get worse"


def test_callback_sees_every_round_and_the_final_texts():
    c, E = ours(KIND), targets(KIND)[:8]
    seen = []
    out = vec2text_c.invert_embeddings(E, c, num_steps=3, sequence_beam_width=0, callback=lambda r, t, s: seen.append((r, t, np.array(s))))
    assert [r for r, _, _ in seen] == [0, 1, 2, 3]
    for _, texts, cos in seen:
        assert len(texts) == 8 and cos.shape == (8,) and np.isfinite(cos).all()
    assert seen[-1][1] == out
    np.testing.assert_allclose(seen[-1][2], _cos(c, out, E), atol=2e-5)
    # the inverter alone reports round 0 with cosines too
    seen.clear()
    out = vec2text_c.invert_embeddings(E, c, callback=lambda r, t, s: seen.append((r, t, s)))
    assert [r for r, _, _ in seen] == [0] and seen[0][1] == out and np.isfinite(seen[0][2]).all()


def test_stop_at_cosine():
    c, E = ours(KIND), targets(KIND)
    rounds = []
    never = vec2text_c.invert_embeddings(E, c, num_steps=2, sequence_beam_width=2, stop_at_cosine=2.0,
                                         callback=lambda r, t, s: rounds.append((t, np.array(s))))
    assert never == reference_strings(KIND, E, 2, 2)  # never reached: the default result
    # everything reached at step 0: no correction round runs, the step-0 hypotheses come back
    seen = []
    at0 = vec2text_c.invert_embeddings(E, c, num_steps=5, sequence_beam_width=2, stop_at_cosine=-1.0,
                                       callback=lambda r, t, s: seen.append(r))
    assert at0 == rounds[0][0]
    assert seen == [0, 1, 2, 3, 4, 5]  # rounds are still reported, with nothing left to correct
    # a threshold in the middle: examples above it at step 0 keep their step-0 text
    thr = float(np.median(rounds[0][1]))
    mid = vec2text_c.invert_embeddings(E, c, num_steps=2, sequence_beam_width=2, stop_at_cosine=thr)
    for i in range(N_TARGETS):
        if rounds[0][1][i] >= thr:
            assert mid[i] == rounds[0][0][i]


def test_progress_bar(capsys):
    c, E = ours(KIND), targets(KIND)[:4]
    out = vec2text_c.invert_embeddings(E, c, num_steps=1, progress=True)
    assert out == vec2text_c.invert_embeddings(E, c, num_steps=1)
    err = capsys.readouterr().err
    assert "vec2text_c" in err and "8/8" in err  # 4 examples x (step 0 + 1 round)


class _RecordingBar:
    """Stands in for tqdm: records the total at every update."""
    made: list = []

    def __init__(self, total=None, **kw):
        self.total, self.n, self.seen = total, 0, []
        _RecordingBar.made.append(self)

    def update(self, k):
        self.n += k
        self.seen.append((self.n, self.total))

    def close(self):
        pass


def test_progress_bar_total_is_known_before_the_first_round(monkeypatch):
    import tqdm.auto

    monkeypatch.setattr(tqdm.auto, "tqdm", _RecordingBar)
    _RecordingBar.made = []
    c, E = ours(KIND), targets(KIND)[:3]
    vec2text_c.invert_embeddings(E, c, num_steps=20, sequence_beam_width=2, progress=True)
    (bar,) = _RecordingBar.made
    assert bar.seen and all(total == 3 * 21 for _, total in bar.seen)  # 3 examples x (step 0 + 20 rounds)
    assert bar.seen[-1][0] == 63


def test_progress_bars_follow_one_rule_a_bar_when_a_person_watches(monkeypatch, capsys):
    """progress=None (every default: inversion and the aligners' fit) shows a bar when stderr is
    a terminal and none otherwise; a non-bool is refused, naming the argument."""
    import sys

    from vec2text_c import align

    c, E = ours(KIND), targets(KIND)[:2]
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(64, 8)).astype(np.float32), rng.normal(size=(64, 8)).astype(np.float32)
    vec2text_c.invert_embeddings(E, c, num_steps=1)
    align.MLP(hidden=8, layers=2, epochs=1).fit(X, Y)
    assert capsys.readouterr().err == ""  # pytest's stderr is not a terminal
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    vec2text_c.invert_embeddings(E, c, num_steps=1)
    align.MLP(hidden=8, layers=2, epochs=1).fit(X, Y)
    err = capsys.readouterr().err
    assert "vec2text_c" in err and "4/4" in err and "MLP aligner" in err
    with pytest.raises(TypeError, match="progress: expected True, False or None"):
        vec2text_c.invert_embeddings(E, c, num_steps=1, progress="yes")
    with pytest.raises(TypeError, match="progress: expected True, False or None"):
        align.MLP(progress=1)


def test_batch_size_chunks_give_the_same_strings():
    c, E = ours(KIND), targets(KIND)
    want = reference_strings(KIND, E, 1, 4)
    assert vec2text_c.invert_embeddings(E, c, num_steps=1, sequence_beam_width=4, batch_size=3) == want


def test_ctrl_c_interrupts_promptly_and_the_model_stays_usable():
    c, E = ours(KIND), np.repeat(targets(KIND), 4, axis=0)
    if threading.current_thread() is not threading.main_thread():
        pytest.fail("needs the main thread for SIGINT")
    sent = []

    def fire():
        sent.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGINT)

    timer = threading.Timer(0.5, fire)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            vec2text_c.invert_embeddings(E, c, num_steps=1000, sequence_beam_width=4)
        raised = time.monotonic()
    finally:
        timer.cancel()
    assert sent and raised - sent[0] < 1.5, f"KeyboardInterrupt {raised - sent[0]:.2f}s after SIGINT"
    out = vec2text_c.invert_embeddings(targets(KIND), c, num_steps=0)
    assert out == reference_strings(KIND, targets(KIND), 0, 0)


def test_callback_exception_propagates():
    c, E = ours(KIND), targets(KIND)[:2]

    class Boom(Exception):
        pass

    def cb(r, t, s):
        raise Boom("from the callback")

    with pytest.raises(Boom, match="from the callback"):
        vec2text_c.invert_embeddings(E, c, num_steps=2, callback=cb)


# ---- inputs ------------------------------------------------------------------------------


def test_input_kinds():
    import torch

    c, E = ours(KIND), targets(KIND)[:3]
    want = vec2text_c.invert_embeddings(E, c, num_steps=0)
    assert vec2text_c.invert_embeddings(torch.from_numpy(E), c, num_steps=0) == want
    assert vec2text_c.invert_embeddings(E.astype(np.float64), c, num_steps=0) == want

    class Wrapped:
        def __array__(self, dtype=None, copy=None):
            return E

    assert vec2text_c.invert_embeddings(Wrapped(), c, num_steps=0) == want
    assert vec2text_c.invert_embeddings(E[1], c, num_steps=0) == want[1:2]
    assert vec2text_c.invert_strings("a single sentence", c) == vec2text_c.invert_strings(["a single sentence"], c)


@pytest.mark.parametrize(
    "make,exc,match",
    [
        (lambda E: E[:, :384], ValueError, r"expected dimension 768 .*got 384"),
        (lambda E: np.where(np.arange(768) == 5, np.nan, E).astype(np.float32), ValueError, "NaN at \\[0, 5\\]"),
        (lambda E: np.where(np.arange(768) == 7, np.inf, E).astype(np.float32), ValueError, "Inf"),
        (lambda E: E[:0], ValueError, "at least one embedding"),
        (lambda E: E[None], ValueError, "1-D vector or a 2-D array"),
        (lambda E: E.astype(np.int64), TypeError, "floating-point"),
        (lambda E: "not an array", TypeError, "floating-point"),
    ],
)
def test_bad_embeddings(make, exc, match):
    c, E = ours(KIND), targets(KIND)[:2]
    with pytest.raises(exc, match=match):
        vec2text_c.invert_embeddings(make(E), c, num_steps=1)


def test_bad_arguments():
    c, E = ours(KIND), targets(KIND)[:2]
    with pytest.raises(ValueError, match="can't set a nonzero beam width"):
        vec2text_c.invert_embeddings(E, c, num_steps=None, sequence_beam_width=2)
    for kw, match in [({"num_steps": -1}, "num_steps"), ({"num_steps": 1.5}, "num_steps"),
                      ({"num_steps": 1, "sequence_beam_width": -2}, "sequence_beam_width"),
                      ({"num_steps": 1, "stop_at_cosine": float("nan")}, "stop_at_cosine"),
                      ({"num_steps": 1, "batch_size": 0}, "batch_size")]:
        with pytest.raises(ValueError, match=match):
            vec2text_c.invert_embeddings(E, c, **kw)
    with pytest.raises(TypeError, match="callback"):
        vec2text_c.invert_embeddings(E, c, num_steps=1, callback=3)
    with pytest.raises(TypeError, match="corrector"):
        vec2text_c.invert_embeddings(E, object())
    with pytest.raises(ValueError, match="at least one string"):
        vec2text_c.invert_strings([], c)
    with pytest.raises(TypeError, match="index 1"):
        vec2text_c.invert_strings(["ok", 3], c)


def test_bad_embedder_output():
    art = artifacts(KIND)
    c = vec2text_c.load_corrector(art.inversion_dir, art.corrector_dir, embedder=lambda texts: np.zeros((len(texts), 5)))
    with pytest.raises(ValueError, match=r"embedder output: expected shape \[\d+, 768\]"):
        vec2text_c.invert_embeddings(targets(KIND)[:2], c, num_steps=1)


def test_callable_embedder_gives_the_same_strings():
    """An external embedder (any callable list[str] -> [N, D]) in place of the built-in one."""
    art = artifacts(KIND)
    inner = ours(KIND)
    calls = []

    def embed(texts):
        calls.append(len(texts))
        return inner.embedder.encode(texts, max_length=32)

    c = vec2text_c.load_corrector(art.inversion_dir, art.corrector_dir, embedder=embed)
    E = targets(KIND)
    assert vec2text_c.invert_embeddings(E, c, num_steps=1, sequence_beam_width=2) == reference_strings(KIND, E, 1, 2)
    assert calls


# ---- loading -----------------------------------------------------------------------------


def _gtr_embedder():
    from vec2text_c.embedders import load_embedder

    return load_embedder(artifacts(KIND).embedder_dir, recipe="gtr")


def test_swapped_or_foreign_checkpoints_are_rejected():
    art = artifacts(KIND)
    emb = _gtr_embedder()
    with pytest.raises(ValueError, match="swapped"):
        vec2text_c.load_corrector(art.corrector_dir, art.inversion_dir, embedder=emb)
    with pytest.raises(ValueError, match="not a vec2text checkpoint"):
        vec2text_c.load_corrector(art.inverter_base_dir, art.corrector_dir, embedder=emb)
    with pytest.raises(vec2text_c.MissingModelFilesError, match="nobody/nothing"):
        vec2text_c.load_corrector("nobody/nothing", art.corrector_dir, embedder=emb)
    bert = artifacts("bert")
    with pytest.raises(ValueError, match="768"):  # a 768-d pair with a 384-d embedder
        from vec2text_c.embedders import load_embedder

        vec2text_c.load_corrector(bert.inversion_dir, bert.corrector_dir, embedder=load_embedder("all-MiniLM-L6-v2"))


def test_a_checkpoint_moved_away_from_its_t5_folder_or_a_missing_path_is_named(tmp_path):
    """The shipped checkpoints name their T5 folder relatively ("../t5"); copied alone, the error
    names the folder looked for, not a hub-validation traceback. A missing path that is no
    repository id says so."""
    src = vec2text_c.models.builtin_model_dir()
    assert vec2text_c.models.read_checkpoint(src / "inverter", "inverter").config["model_name_or_path"] == "../t5"
    shutil.copytree(src / "inverter", tmp_path / "alone" / "inverter")
    with pytest.raises(vec2text_c.MissingModelFilesError,
                       match=re.escape(f"names {(tmp_path / 'alone' / 't5').resolve()}, which has no config.json")):
        vec2text_c.load_corrector(tmp_path / "alone" / "inverter", src / "corrector")
    with pytest.raises(vec2text_c.MissingModelFilesError, match="neither an existing folder nor a Hugging Face"):
        vec2text_c.load_corrector(tmp_path / "no" / "such" / "folder", src / "corrector")


def _fake_repo(cache: Path, repo: str, src: Path | None, files=None, rev="0123abcd") -> Path:
    d = cache / ("models--" + repo.replace("/", "--"))
    snap = d / "snapshots" / rev
    snap.mkdir(parents=True)
    (d / "refs").mkdir()
    (d / "refs" / "main").write_text(rev)
    if src is not None:
        for f in src.iterdir():
            if f.is_file() and (files is None or f.name in files):
                (snap / f.name).symlink_to(f.resolve())
    return snap


def test_load_from_the_hf_cache_layout(tmp_path, monkeypatch):
    art = artifacts(KIND)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    _fake_repo(tmp_path, "test/inverter", art.inversion_dir)
    _fake_repo(tmp_path, "test/corrector", art.corrector_dir)
    # an older, unreferenced snapshot is ignored in favour of refs/main
    (tmp_path / "models--test--inverter" / "snapshots" / "old").mkdir()
    c = vec2text_c.load_corrector("test/inverter", "test/corrector", embedder=_gtr_embedder())
    E = targets(KIND)
    assert vec2text_c.invert_embeddings(E, c, num_steps=0) == reference_strings(KIND, E, 0, 0)


def test_load_pretrained_corrector_lists_what_is_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.delenv("HF_HOME", raising=False)
    with pytest.raises(vec2text_c.MissingModelFilesError) as e:
        vec2text_c.load_pretrained_corrector("gtr-base")
    msg = str(e.value)
    for repo in ("jxm/gtr__nq__32", "jxm/gtr__nq__32__correct", "t5-base", "sentence-transformers/gtr-t5-base"):
        assert repo in msg and f"huggingface-cli download {repo}" in msg
    assert str(tmp_path) in msg
    # a partial download: the inverter's config without weights, the rest absent
    snap = _fake_repo(tmp_path, "jxm/gtr__nq__32", None)
    (snap / "config.json").write_text("{}")
    with pytest.raises(vec2text_c.MissingModelFilesError) as e:
        vec2text_c.load_pretrained_corrector("gtr-base")
    line = [ln for ln in str(e.value).splitlines() if "jxm/gtr__nq__32 (" in ln][0]
    assert "model.safetensors or model.safetensors.index.json or pytorch_model.bin" in line and "config.json" not in line
    with pytest.raises(ValueError, match="gtr-base"):
        vec2text_c.load_pretrained_corrector("nope")


def test_safetensors_checkpoint_lm_head_comes_from_model_name_or_path(tmp_path):
    """The reference's quirk: a safetensors checkpoint without encoder_decoder.lm_head.weight
    decodes with model_name_or_path's lm_head (see csrc/vec2text/checkpoint.h). Storing the
    checkpoint's own shared embedding as lm_head changes the logits, so the strings change."""
    from vec2text_c._safetensors_io import save_file

    art = artifacts(KIND)
    st = _core.SafeTensors(str(art.inversion_dir / "model.safetensors"))
    tensors = {k: st.get(k) for k in st.keys()}
    tensors["encoder_decoder.lm_head.weight"] = tensors["encoder_decoder.shared.weight"]
    d = tmp_path / "inv"
    d.mkdir()
    shutil.copy(art.inversion_dir / "config.json", d / "config.json")
    save_file(tensors, d / "model.safetensors")
    tied = vec2text_c.load_corrector(d, art.corrector_dir, embedder=_gtr_embedder())
    E = targets(KIND)
    got = vec2text_c.invert_embeddings(E, tied)
    assert got != reference_strings(KIND, E, None, 0)


# ---- the T5 tokenizer --------------------------------------------------------------------


# ---- sharing and pickling ----------------------------------------------------------------


def test_threads_share_one_corrector():
    c, E = ours(KIND), targets(KIND)
    want = reference_strings(KIND, E, 1, 2)
    results = [None, None]

    def run(i):
        results[i] = vec2text_c.invert_embeddings(E, c, num_steps=1, sequence_beam_width=2)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [want, want]


def test_corrector_pickles_by_reference():
    import pickle

    art = artifacts(KIND)
    c = vec2text_c.load_corrector(art.inversion_dir, art.corrector_dir, embedder=_gtr_embedder())
    c2 = pickle.loads(pickle.dumps(c))
    E = targets(KIND)[:4]
    assert vec2text_c.invert_embeddings(E, c2, num_steps=0) == vec2text_c.invert_embeddings(E, c, num_steps=0)


@pytest.mark.parametrize("kind", ["gtr", "bert"])
def test_embedder_named_in_the_checkpoint_is_found_in_the_hf_cache(kind, tmp_path, monkeypatch):
    """embedder=None: `gtr_base` -> sentence-transformers/gtr-t5-base with vec2text's GTR recipe,
    a `sentence-transformers/...` name -> that repository's pipeline, both from the HF cache."""
    art = artifacts(kind)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    repo = "sentence-transformers/gtr-t5-base" if kind == "gtr" else art.embedder_name
    snap = _fake_repo(tmp_path, repo, None)
    for f in Path(art.embedder_dir).iterdir():
        (snap / f.name).symlink_to(f.resolve())
    c = vec2text_c.load_corrector(art.inversion_dir, art.corrector_dir)
    E = targets(kind)
    assert vec2text_c.invert_embeddings(E, c, num_steps=1, sequence_beam_width=2) == reference_strings(kind, E, 1, 2)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    with pytest.raises(vec2text_c.MissingModelFilesError, match=repo.replace("/", ".")):
        vec2text_c.load_corrector(art.inversion_dir, art.corrector_dir)


def test_pytorch_bin_checkpoints_are_converted_once(tmp_path, monkeypatch):
    """A checkpoint with pytorch_model.bin (as the hub's jxm/* repositories) is converted once
    into vec2text_c's cache (not beside it) on first load and gives the same strings."""
    monkeypatch.setenv("VEC2TEXT_C_CACHE", str(tmp_path / "cache"))
    import torch

    art = artifacts(KIND)
    dirs = []
    for src in (art.inversion_dir, art.corrector_dir):
        st = _core.SafeTensors(str(src / "model.safetensors"))
        d = tmp_path / src.name
        d.mkdir()
        shutil.copy(src / "config.json", d / "config.json")
        torch.save({k: torch.from_numpy(np.array(st.get(k))) for k in st.keys()}, d / "pytorch_model.bin")
        dirs.append(d)
    c = vec2text_c.load_corrector(*dirs, embedder=_gtr_embedder())
    assert not any((d / "model.safetensors").exists() for d in dirs)
    assert len(list((tmp_path / "cache" / "weights").glob("*.safetensors"))) == 2
    E = targets(KIND)
    assert vec2text_c.invert_embeddings(E, c, num_steps=1, sequence_beam_width=2) == reference_strings(KIND, E, 1, 2)


def test_bfloat16_corrector_runs_and_stays_close_to_fp32():
    import pickle

    from vec2text_c.embedders import load_embedder

    art = artifacts("bert")
    emb = load_embedder(art.embedder_dir)
    fast = vec2text_c.load_corrector(art.inversion_dir, art.corrector_dir, embedder=emb, dtype="bfloat16")
    E = targets("bert")
    got = vec2text_c.invert_embeddings(E, fast, num_steps=1, sequence_beam_width=2)
    want = vec2text_c.invert_embeddings(E, ours("bert"), num_steps=1, sequence_beam_width=2)
    assert len(got) == len(want) == len(E)

    def mean_cos(texts):
        V = emb.encode(texts, max_length=32)
        return float(np.mean((V * E).sum(1) / np.linalg.norm(V, axis=1) / np.linalg.norm(E, axis=1)))

    # bf16 rounding may change some texts of these random tiny models, not how well they fit
    assert abs(mean_cos(got) - mean_cos(want)) < 0.05
    assert pickle.loads(pickle.dumps(fast)).inverter_t5._dtype == "bfloat16"


@pytest.mark.parametrize("field, value", [("use_lora", True), ("embeddings_from_layer_n", 3),
                                          ("corrector_ignore_hypothesis_embedding", True),
                                          ("embedder_fake_with_zeros", True), ("embedder_torch_dtype", "bfloat16")])
def test_config_fields_that_change_inference_are_refused(tmp_path, field, value):
    import json

    art = artifacts(KIND)
    d = tmp_path / "inv"
    shutil.copytree(art.inversion_dir, d)
    cfg = json.loads((d / "config.json").read_text())
    cfg[field] = value
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(NotImplementedError, match=f"{field} = {value!r} .* changes inference and is not supported"):
        vec2text_c.load_corrector(d, art.corrector_dir, embedder=_gtr_embedder())
    cfg[field] = {"use_lora": False, "embeddings_from_layer_n": None, "corrector_ignore_hypothesis_embedding": False,
                  "embedder_fake_with_zeros": False, "embedder_torch_dtype": "float32"}[field]
    (d / "config.json").write_text(json.dumps(cfg))
    vec2text_c.load_corrector(d, art.corrector_dir, embedder=_gtr_embedder())


def test_ada_002_needs_an_embedder_and_names_its_repositories(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(ValueError, match="embedder: 'text-embedding-ada-002' inverts embeddings of an API model; pass embedder="):
        vec2text_c.load_pretrained_corrector("text-embedding-ada-002")
    with pytest.raises(vec2text_c.MissingModelFilesError) as e:
        vec2text_c.load_pretrained_corrector("text-embedding-ada-002", embedder=lambda texts: np.zeros((len(texts), 1536)))
    msg = str(e.value)
    for repo in ("jxm/vec2text__openai_ada002__msmarco__msl128__hypothesizer",
                 "jxm/vec2text__openai_ada002__msmarco__msl128__corrector", "t5-base"):
        assert f"  - {repo} (" in msg
    assert "gtr" not in msg


def test_load_pretrained_inverter_alone():
    art = artifacts(KIND)
    inv = vec2text_c.load_pretrained_inverter(art.inversion_dir, embedder=_gtr_embedder())
    assert not inv.has_corrector
    E = targets(KIND)
    assert vec2text_c.invert_embeddings(E, inv) == reference_strings(KIND, E, None, 0)
