"""vec2text_c.train: the corpus reader, the tokenizer, and a tiny end-to-end training run
whose exported checkpoints the C core must read and run exactly as the PyTorch training
modules compute (fp32 export), resume included."""
from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

import vec2text_c
from vec2text_c.train.corpora import clean_text, heldout_split, read_corpus, split_sentences
from vec2text_c.train.pipeline import (ModelShape, _load_module, export, make_hypotheses, prepare,
                                       train_corrector, train_inverter)
from vec2text_c.train.trainer import TrainSettings, length_batches

TINY = ModelShape(vocab_size=320, d_model=32, num_heads=2, d_ff=64, num_layers=2, num_repeat_tokens=4)
STEPS = TrainSettings(steps=12, batch_size=16, lr=3e-3, warmup=3, eval_every=6, save_every=6, log_every=3,
                      bf16=False, threads=1)


def _sick_lines(shared_data: Path, n: int) -> list[str]:
    out = []
    for line in (shared_data / "sick" / "SICK.txt").read_text(encoding="utf-8").splitlines()[1:]:
        cols = line.split("\t")
        if len(cols) >= 3:
            out.append(cols[1])
    return list(dict.fromkeys(out))[:n]


@pytest.fixture(scope="module")
def run(tmp_path_factory, shared_data):
    root = tmp_path_factory.mktemp("train")
    corpus = root / "corpus.txt"
    corpus.write_text("\n".join(_sick_lines(shared_data, 700)) + "\n")
    work = root / "work"
    prepare([corpus], work, shape=TINY, heldout_fraction=0.1, val_size=30)
    train_inverter(work, STEPS)
    make_hypotheses(work, n=200)
    train_corrector(work, STEPS)
    export(work, root / "fp32", bf16=False)
    export(work, root / "bf16", bf16=True)
    export(work, root / "int8", bf16=True, int8=("*",))
    return root, work


# ---- corpus ------------------------------------------------------------------------------


def test_clean_text_joins_tokenised_spacing():
    assert clean_text("The game 's  score , was 3 @-@ 1 ( final ) .") == "The game's score, was 3-1 (final)."


@pytest.mark.parametrize("raw, clean", [
    ("Eriksson doesn #39;t feel any extra pressure", "Eriksson doesn't feel any extra pressure"),  # AG News
    ("competing for the #36;10 million Ansari X Prize", "competing for the $10 million Ansari X Prize"),
    ("Texas Instruments Inc. &lt;TXN.N&gt;, Forex &amp; Gold", "Texas Instruments Inc. <TXN.N>, Forex & Gold"),
    ("Bad b&amp;amp;w images, &amp;quot;ready&amp;quot; light", 'Bad b&w images, "ready" light'),  # escaped twice
    ("line one #13;#10; line two, 5&deg;C&nbsp;today", "line one line two, 5\u00b0C today"),
    ("issue #1 of 3, C# code, &#x41; and &bogus; stay", "issue #1 of 3, C# code, A and &bogus; stay"),
])
def test_clean_text_decodes_html_entities(raw, clean):
    assert clean_text(raw) == clean
    assert clean_text(clean) == clean


def test_split_sentences_cuts_after_terminal_punctuation():
    assert split_sentences("It rained. Then it stopped! Did it? yes.") == ["It rained.", "Then it stopped!", "Did it? yes."]


def test_read_corpus_txt_jsonl_dedup_and_windows(tmp_path):
    (tmp_path / "a.txt").write_text("One two three four.\nONE TWO THREE FOUR.\n" + " ".join(f"w{i}" for i in range(50)) + "\n")
    (tmp_path / "b.jsonl").write_text(json.dumps({"text": "Five six seven eight."}) + "\n" + json.dumps("Nine ten eleven.") + "\n")
    got = read_corpus([tmp_path / "a.txt", tmp_path / "b.jsonl"], max_words=24)
    assert got[0] == "One two three four."
    assert "ONE TWO THREE FOUR." not in got  # case-insensitive duplicate
    windows = [t for t in got if t.startswith("w")]
    assert [len(t.split()) for t in windows] == [17, 17, 16]
    assert got[-2:] == ["Five six seven eight.", "Nine ten eleven."]


def test_read_corpus_wordnet_glosses_and_examples(tmp_path):
    # synset lines in the format of Debian's wordnet-base data files (licence header lines start
    # with two spaces)
    (tmp_path / "data.noun").write_text(
        "  1 This software and database is being provided to you, the LICENSEE, by\n"
        "00217499 04 n 01 disaster 0 001 @ 00217014 n 0000 | an act that has disastrous consequences  \n"
        "00217593 04 n 01 kill 1 002 @ 00217014 n 0000 + 00355365 v 0101 | the destruction of an enemy plane "
        "or ship or tank or missile; \"the pilot reported two kills during the mission\"  \n"
        "00000001 03 n 01 thing 0 000 | \n")
    (tmp_path / "data.verb").write_text(
        "00101277 29 v 03 tone 0 tone_up 0 strengthen 0 002 @ 00099721 v 0000 01 + 08 00 | give a healthy "
        "elasticity to; \"Let's tone our muscles\"; \"exercise\" tones the body (figuratively)  \n")
    assert read_corpus([tmp_path]) == [
        "an act that has disastrous consequences",
        "the destruction of an enemy plane or ship or tank or missile",
        "the pilot reported two kills during the mission",
        "give a healthy elasticity to",
        "Let's tone our muscles",
    ]


def test_read_corpus_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        read_corpus([tmp_path / "missing.txt"])
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    with pytest.raises(ValueError, match=r"bad.jsonl:1: not valid JSON"):
        read_corpus([tmp_path / "bad.jsonl"])
    (tmp_path / "empty.txt").write_text("\n\n")
    with pytest.raises(ValueError, match="no texts"):
        read_corpus([tmp_path / "empty.txt"])


def test_heldout_split_is_disjoint_deterministic_and_case_blind():
    texts = [f"sentence number {i}" for i in range(5000)]
    tr, he = heldout_split(texts, 0.1)
    assert set(tr).isdisjoint(he) and len(tr) + len(he) == 5000
    assert 350 < len(he) < 650
    assert heldout_split([t.upper() for t in he], 0.1)[1] == [t.upper() for t in he]


def test_length_batches_cover_each_example_once_and_pad_little():
    lengths = np.random.default_rng(0).integers(1, 33, size=1000)
    batches = length_batches(lengths, 10, seed=3, epoch=0, pool=8)
    flat = np.concatenate(batches)
    assert len(flat) == 1000 and len(set(flat.tolist())) == 1000
    spread = np.mean([lengths[b].max() - lengths[b].min() for b in batches])
    assert spread < 6  # unsorted batches of 10 from 1..32 spread about 26
    again = length_batches(lengths, 10, seed=3, epoch=0, pool=8)
    assert all((a == b).all() for a, b in zip(batches, again))


# ---- the tiny run ------------------------------------------------------------------------


def test_prepare_writes_splits_within_the_token_budget(run):
    root, work = run
    info = json.loads((work / "data" / "info.json").read_text())
    assert info["dim"] == 384 and info["n_val"] == 30
    tok = vec2text_c.T5Tokenizer.from_pretrained(work / "t5")
    train = (work / "data" / "train.txt").read_text().splitlines()
    test = (work / "data" / "test.txt").read_text().splitlines()
    assert set(train).isdisjoint(test)
    assert max(len(tok.encode(t)) for t in train + test) <= TINY.max_seq_length
    ids = np.load(work / "data" / "ids.npz")
    assert tok.decode(ids["ids"][0][: ids["lengths"][0]], skip_special_tokens=True) == train[0]
    E = np.load(work / "data" / "embeddings.npy")
    expect = vec2text_c.load_embedder("all-MiniLM-L6-v2").encode(train[:5])
    np.testing.assert_allclose(E[:5], expect, atol=1e-6)


def test_prepare_leaves_no_embedding_chunks(run):
    root, work = run
    assert not (work / "data" / "embeddings.parts").exists()


class _CountingEmbedder:
    """all-MiniLM-L6-v2 that counts the texts it embeds and can fail at its n-th call."""

    def __init__(self, fail_at: int | None = None):
        self.inner = vec2text_c.load_embedder("all-MiniLM-L6-v2")
        self.dim, self.calls, self.texts, self.fail_at = self.inner.dim, 0, 0, fail_at

    def encode(self, texts, **kw):
        self.calls += 1
        if self.fail_at is not None and self.calls == self.fail_at:
            raise KeyboardInterrupt("interrupted")
        self.texts += len(texts)
        return self.inner.encode(texts, **kw)


def test_embedding_resumes_at_the_first_missing_chunk(tmp_path, shared_data):
    from vec2text_c.train.pipeline import _embed

    texts = _sick_lines(shared_data, 50)
    whole = _embed(_CountingEmbedder(), texts, "t", chunk=8)
    parts = tmp_path / "parts"
    with pytest.raises(KeyboardInterrupt):  # interrupted during its 4th chunk
        _embed(_CountingEmbedder(fail_at=4), texts, "t", chunk=8, parts=parts, key="minilm")
    assert len(list(parts.glob("*/0*.npy"))) == 3
    again = _CountingEmbedder()
    got = _embed(again, texts, "t", chunk=8, parts=parts, key="minilm")
    assert again.calls == 4 and again.texts == 50 - 24  # the 4th to 7th of 7 chunks (six of 8 texts, one of 2)
    np.testing.assert_array_equal(got, whole)
    # other texts or another embedder key: nothing reused, the stale chunks removed
    other = _CountingEmbedder()
    _embed(other, texts, "t", chunk=8, parts=parts, key="another")
    assert other.texts == 50 and len(list(parts.iterdir())) == 1
    other = _CountingEmbedder()
    _embed(other, texts[1:], "t", chunk=8, parts=parts, key="another")
    assert other.texts == 49


def test_training_logs_losses_that_fall(run):
    _, work = run
    for kind in ("inverter", "corrector"):
        log = [json.loads(x) for x in (work / "runs" / kind / "log.jsonl").read_text().splitlines()]
        train = [r["loss"] for r in log if "loss" in r]
        val = [r["val_loss"] for r in log if "val_loss" in r]
        assert len(train) == STEPS.steps // STEPS.log_every and len(val) == 2
        assert train[-1] < train[0], kind


def test_exported_inverter_runs_on_the_core_as_in_torch(run):
    root, work = run
    model = _load_module(work, "inverter")
    corr = vec2text_c.load_corrector(root / "fp32" / "inverter", root / "fp32" / "corrector")
    E = np.load(work / "data" / "embeddings.npy")[:16]
    with torch.no_grad():
        x, mask = model.encoder_inputs(torch.from_numpy(E))
    ours = corr.inverter.inputs(E)
    np.testing.assert_allclose(ours, x.numpy(), atol=1e-5, rtol=1e-5)
    # greedy generation from those inputs: the same ids as transformers' generate
    with torch.no_grad():
        want = model.encoder_decoder.generate(inputs_embeds=x, attention_mask=mask, max_length=32, num_beams=1,
                                              do_sample=False).numpy()
    got = corr.inverter_t5.generate(inputs_embeds=ours, max_length=32)
    assert got.tolist() == want.tolist()
    texts = vec2text_c.invert_embeddings(E, corr)
    assert texts == corr.tokenizer.batch_decode(
        model.encoder_decoder.generate(inputs_embeds=x, attention_mask=mask, max_length=128).numpy(),
        skip_special_tokens=True)


def test_exported_corrector_inputs_match_torch(run):
    root, work = run
    model = _load_module(work, "corrector")
    corr = vec2text_c.load_corrector(root / "fp32" / "inverter", root / "fp32" / "corrector")
    h = np.load(work / "data" / "hypotheses.npz")
    E = np.load(work / "data" / "embeddings.npy")[h["rows"][:16]]
    hid = h["ids"][:16].astype(np.int64)
    with torch.no_grad():
        x, mask = model.encoder_inputs(torch.from_numpy(E), torch.from_numpy(h["embeddings"][:16]), torch.from_numpy(hid))
    got = corr.corrector.inputs(E, h["embeddings"][:16], hid)
    np.testing.assert_allclose(got[0], x.numpy(), atol=2e-5)
    assert got[1].astype(np.int64).tolist() == mask.numpy().tolist()


def test_hypotheses_are_the_core_loops_step_zero(run):
    root, work = run
    corr = vec2text_c.load_corrector(root / "fp32" / "inverter", root / "fp32" / "corrector")
    h = np.load(work / "data" / "hypotheses.npz")
    E = np.load(work / "data" / "embeddings.npy")[h["rows"][:8]]
    seen = {}
    vec2text_c.api._run(E, corr, 1, 1, on_round=lambda rnd, b, ids, lens, embs, cos, best, active:
                        seen.setdefault(rnd, ids.copy()))
    step0 = seen[0]
    L = h["ids"].shape[1]
    assert step0[:, :L].tolist() == h["ids"][:8].astype(np.int64).tolist()
    assert not step0[:, L:].any()


def test_corrected_hypotheses_are_the_loops_later_rounds(run, tmp_path):
    from vec2text_c.train.pipeline import add_corrected_hypotheses, spread

    root, work = run
    w = tmp_path / "w"
    shutil.copytree(work, w)
    before = dict(np.load(w / "data" / "hypotheses.npz"))
    n0 = int(before["n_train"])
    added = add_corrected_hypotheses(w, root / "fp32" / "corrector", 24, rounds=2, beam=2, batch=10)
    h = np.load(w / "data" / "hypotheses.npz")
    assert int(h["n_train"]) == n0 + added and 0 < added <= 48
    # the inverter's hypotheses and the validation part are kept as they were
    for k in ("rows", "ids", "embeddings"):
        np.testing.assert_array_equal(h[k][:n0], before[k][:n0])
        np.testing.assert_array_equal(h[k][n0 + added:], before[k][n0:])
    # what was added: each round's kept row of the loop (beam 2, generation cut at the budget)
    corr = vec2text_c.load_corrector(w / "inverter", root / "fp32" / "corrector")
    pick = spread(json.loads((w / "data" / "info.json").read_text())["n_train"], 24, 1)
    E = np.load(w / "data" / "embeddings.npy")[pick]
    L = h["ids"].shape[1]
    expect = {}

    def seen(rnd, beams, ids, lens, embs, cos, best, active):
        if rnd:
            for j in range(len(pick)):
                row = np.zeros(L, np.int64)
                row[:min(L, ids.shape[1])] = ids[j * beams, :L]
                expect.setdefault(int(pick[j]), []).append((row, np.array(embs[j * beams])))

    vec2text_c.api._run(E, corr, 2, 2, on_round=seen, max_length=L)
    got_rows, got_ids, got_emb = h["rows"][n0:n0 + added], h["ids"][n0:n0 + added], h["embeddings"][n0:n0 + added]
    assert set(got_rows.tolist()) <= set(pick.tolist())
    old = {}
    for r, ids in zip(before["rows"][:n0].tolist(), before["ids"][:n0]):
        old.setdefault(r, []).append(ids.astype(np.int64).tolist())
    for r, ids, e in zip(got_rows.tolist(), got_ids, got_emb):
        match = [x for x in expect[r] if x[0].tolist() == ids.astype(np.int64).tolist()]
        assert match, "an added hypothesis is none of the loop's rounds for its text"
        np.testing.assert_allclose(e, match[0][1], atol=1e-6)
        assert ids.astype(np.int64).tolist() not in old.get(r, [])  # never a copy of one already there
    emb = vec2text_c.load_embedder("all-MiniLM-L6-v2")
    texts = corr.tokenizer.batch_decode(got_ids[:4], skip_special_tokens=True)
    np.testing.assert_allclose(got_emb[:4], emb.encode(texts, max_length=L), atol=1e-5)


def test_corrected_hypotheses_bad_input(run, tmp_path):
    from vec2text_c.train.pipeline import add_corrected_hypotheses

    root, work = run
    with pytest.raises(ValueError, match=r"n: expected an int >= 1, got 0"):
        add_corrected_hypotheses(work, root / "fp32" / "corrector", 0)
    with pytest.raises(ValueError, match=r"rounds: expected an int in \[1, 20\], got 21"):
        add_corrected_hypotheses(work, root / "fp32" / "corrector", 4, rounds=21)
    with pytest.raises(FileNotFoundError, match="no config.json"):
        add_corrected_hypotheses(work, tmp_path, 4)
    empty = tmp_path / "fresh"
    (empty / "data").mkdir(parents=True)
    shutil.copy(work / "data" / "info.json", empty / "data" / "info.json")
    with pytest.raises(FileNotFoundError, match="make the inverter's hypotheses first"):
        add_corrected_hypotheses(empty, root / "fp32" / "corrector", 4)


def _levenshtein(a: list, b: list) -> int:
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def test_edit_ids_by_hand():
    from vec2text_c.train.pipeline import edit_ids

    toks, pool = np.array([3, 4, 5, 6]), np.array([7])
    # every token edited: each one is replaced by 7, dropped, or kept with a 7 after it
    for seed in range(20):
        out = edit_ids(toks, 1.0, pool, np.random.default_rng(seed)).tolist()
        kept = [t for t in out if t != 7]
        assert kept == [t for t in toks.tolist() if t in kept]  # the originals left keep their order
        for t in kept:
            assert out[out.index(t) + 1] == 7  # a kept token is one with an insertion after it
        assert len(kept) <= out.count(7) <= len(toks)  # one 7 per substitution or insertion
    # a rate near 0 still makes exactly one edit: one substitution
    for seed in range(20):
        out = edit_ids(toks, 1e-12, pool, np.random.default_rng(seed)).tolist()
        assert len(out) == 4 and sum(a != b for a, b in zip(out, toks.tolist())) == 1 and 7 in out
    # never empty: a one-token text whose token is deleted gets a drawn one
    outs = {tuple(edit_ids(np.array([3]), 1.0, pool, np.random.default_rng(s)).tolist()) for s in range(30)}
    assert outs == {(7,), (3, 7)}


def test_edited_hypotheses_are_near_misses_of_their_targets(run, tmp_path):
    from vec2text_c.train.pipeline import add_edited_hypotheses, spread

    root, work = run
    w = tmp_path / "w"
    shutil.copytree(work, w)
    before = dict(np.load(w / "data" / "hypotheses.npz"))
    n0 = int(before["n_train"])
    added = add_edited_hypotheses(w, 40, rate=(0.2, 0.2), seed=5)
    h = np.load(w / "data" / "hypotheses.npz")
    assert int(h["n_train"]) == n0 + added and 36 <= added <= 40
    for k in ("rows", "ids", "embeddings"):
        np.testing.assert_array_equal(h[k][:n0], before[k][:n0])
        np.testing.assert_array_equal(h[k][n0 + added:], before[k][n0:])
    rows, hyp, hemb = h["rows"][n0:n0 + added], h["ids"][n0:n0 + added], h["embeddings"][n0:n0 + added]
    info = json.loads((w / "data" / "info.json").read_text())
    assert set(rows.tolist()) <= set(spread(info["n_train"], 40, 5).tolist())
    d = np.load(w / "data" / "ids.npz")
    rel = []
    for r, row in zip(rows.tolist(), hyp):
        # the loop's row format: the decoder's start token, the tokens, one </s>, then padding
        n = int((row != 0).sum())
        assert row[0] == 0 and row[n] == 1 and (row[1:n] > 1).all() and not row[n + 1:].any()
        target = d["ids"][r, :d["lengths"][r] - 1].tolist()
        dist = _levenshtein(row[1:n].tolist(), target)
        assert dist >= 1
        rel.append(dist / len(target))
    assert 0.08 < np.mean(rel) < 0.3, np.mean(rel)  # about the 20 % asked for
    # the embeddings are the embedder's of the decoded hypotheses, and close to their targets
    tok = vec2text_c.T5Tokenizer.from_pretrained(w / "t5")
    emb = vec2text_c.load_embedder("all-MiniLM-L6-v2")
    texts = tok.batch_decode(hyp, skip_special_tokens=True)
    np.testing.assert_allclose(hemb, emb.encode(texts, max_length=hyp.shape[1]), atol=1e-5)
    E = np.load(w / "data" / "embeddings.npy")
    def cos(a, b):
        return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))

    own, other = cos(hemb, E[rows]), cos(hemb, E[np.roll(rows, 1)])
    assert own.mean() > other.mean() + 0.2
    # again with the same seed: the same edits, none added twice
    assert add_edited_hypotheses(w, 40, rate=(0.2, 0.2), seed=5) == 0


def test_edited_hypotheses_copies_are_the_texts_themselves(run, tmp_path):
    """copies=1: every hypothesis is its target's own ids in the loop's row format, embedded as
    the loop embeds it; copies=0.5: about half unedited, the rest edited."""
    from vec2text_c.train.pipeline import add_edited_hypotheses

    _, work = run
    w = tmp_path / "w"
    shutil.copytree(work, w)
    n0 = int(np.load(w / "data" / "hypotheses.npz")["n_train"])
    added = add_edited_hypotheses(w, 30, rate=(0.3, 0.3), seed=7, copies=1.0)
    h = np.load(w / "data" / "hypotheses.npz")
    d = np.load(w / "data" / "ids.npz")
    rows, hyp = h["rows"][n0:n0 + added], h["ids"][n0:n0 + added]
    # a text whose inverter hypothesis is already exactly right keeps that one row only
    assert 24 <= added <= 30
    for r, row in zip(rows.tolist(), hyp):
        n = int((row != 0).sum())
        assert row[0] == 0 and row[n] == 1
        np.testing.assert_array_equal(row[1:n], d["ids"][r, :d["lengths"][r] - 1][:hyp.shape[1] - 2])
    tok = vec2text_c.T5Tokenizer.from_pretrained(w / "t5")
    emb = vec2text_c.load_embedder("all-MiniLM-L6-v2")
    np.testing.assert_allclose(h["embeddings"][n0:n0 + added],
                               emb.encode(tok.batch_decode(hyp, skip_special_tokens=True), max_length=hyp.shape[1]),
                               atol=1e-5)

    w2 = tmp_path / "w2"
    shutil.copytree(work, w2)
    added = add_edited_hypotheses(w2, 60, rate=(0.3, 0.3), seed=8, copies=0.5)
    h = np.load(w2 / "data" / "hypotheses.npz")
    same = [bool((row[1:int((row != 0).sum())] == d["ids"][r, :d["lengths"][r] - 1][:hyp.shape[1] - 2]).all())
            if int((row != 0).sum()) - 1 == min(int(d["lengths"][r]) - 1, hyp.shape[1] - 2) else False
            for r, row in zip(h["rows"][n0:n0 + added].tolist(), h["ids"][n0:n0 + added])]
    assert 0.25 < np.mean(same) < 0.75, np.mean(same)  # binomial(60, 0.5): 4 sigma either side


def test_edited_hypotheses_bad_input(run, tmp_path):
    from vec2text_c.train.pipeline import add_edited_hypotheses

    _, work = run
    with pytest.raises(ValueError, match=r"n: expected an int >= 1, got 0"):
        add_edited_hypotheses(work, 0)
    with pytest.raises(ValueError, match=r"rate: expected \(low, high\) with 0 < low <= high <= 1, got \(0.5, 0.2\)"):
        add_edited_hypotheses(work, 4, rate=(0.5, 0.2))
    for bad in (1.5, -0.1, True, "half"):
        with pytest.raises(ValueError, match=r"copies: expected a fraction in \[0, 1\], got"):
            add_edited_hypotheses(work, 4, copies=bad)
    empty = tmp_path / "fresh"
    (empty / "data").mkdir(parents=True)
    shutil.copy(work / "data" / "info.json", empty / "data" / "info.json")
    with pytest.raises(FileNotFoundError, match="make the inverter's hypotheses first"):
        add_edited_hypotheses(empty, 4)


def test_bf16_export_is_half_the_size_and_close(run):
    root, _ = run
    a = (root / "fp32" / "inverter" / "model.safetensors").stat().st_size
    b = (root / "bf16" / "inverter" / "model.safetensors").stat().st_size
    assert b < 0.6 * a
    c32 = vec2text_c.load_corrector(root / "fp32" / "inverter", root / "fp32" / "corrector")
    c16 = vec2text_c.load_corrector(root / "bf16" / "inverter", root / "bf16" / "corrector")
    E = np.load(run[1] / "data" / "embeddings.npy")[:8]
    x32, x16 = c32.inverter.inputs(E), c16.inverter.inputs(E)
    assert np.abs(x32 - x16).max() <= 2e-2 * np.abs(x32).max()


def _dequantized_copy(src: Path, dst: Path) -> Path:
    """The export at src with every int8-rows pair written back as the float32 values it stands for."""
    from safetensors.numpy import load_file

    from vec2text_c._safetensors_io import merge_int8_rows, save_file

    shutil.copytree(src / "t5", dst / "t5")
    for kind in ("inverter", "corrector"):
        (dst / kind).mkdir(parents=True)
        shutil.copyfile(src / kind / "config.json", dst / kind / "config.json")
        state = merge_int8_rows(load_file(str(src / kind / "model.safetensors")))
        save_file({k: np.asarray(v, np.float32) for k, v in state.items()}, dst / kind / "model.safetensors")
    return dst


def test_int8_export_runs_as_its_dequantized_weights(run, tmp_path):
    """int8 rows are read as q * scale by the C core: the models compute exactly what the same
    models stored with those float32 values compute, at about half the bf16 size."""
    root, work = run
    for kind in ("inverter", "corrector"):
        b = (root / "bf16" / kind / "model.safetensors").stat().st_size
        q = (root / "int8" / kind / "model.safetensors").stat().st_size
        assert q < 0.65 * b, (kind, q, b)
    ref = _dequantized_copy(root / "int8", tmp_path / "deq")
    c8 = vec2text_c.load_corrector(root / "int8" / "inverter", root / "int8" / "corrector")
    cf = vec2text_c.load_corrector(ref / "inverter", ref / "corrector")
    E = np.load(work / "data" / "embeddings.npy")[:8]
    np.testing.assert_array_equal(c8.inverter.inputs(E), cf.inverter.inputs(E))
    assert vec2text_c.invert_embeddings(E, c8, num_steps=2) == vec2text_c.invert_embeddings(E, cf, num_steps=2)
    # and close to the float model it was made from
    c32 = vec2text_c.load_corrector(root / "fp32" / "inverter", root / "fp32" / "corrector")
    x32, x8 = c32.inverter.inputs(E), c8.inverter.inputs(E)
    assert np.abs(x32 - x8).max() <= 3e-2 * np.abs(x32).max()


def test_int8_export_patterns_are_checked_before_writing(run, tmp_path):
    _, work = run
    with pytest.raises(ValueError, match=r"int8: the patterns \['nothing\.\*'\] match no matrix"):
        export(work, tmp_path / "x", int8=("embedding_transform*", "nothing.*"))
    assert not (tmp_path / "x").exists()
    with pytest.raises(TypeError, match="int8: expected a sequence of name patterns"):
        export(work, tmp_path / "x", int8="embedding_transform*")


def test_resume_continues_the_same_run(run, tmp_path):
    _, work = run
    w2 = tmp_path / "w"
    shutil.copytree(work / "data", w2 / "data")
    shutil.copytree(work / "t5", w2 / "t5")
    train_inverter(w2, STEPS, stop_at=6)
    train_inverter(w2, STEPS)  # resumes at step 6
    a = torch.load(work / "runs" / "inverter" / "state.pt", weights_only=True)["model"]
    b = torch.load(w2 / "runs" / "inverter" / "state.pt", weights_only=True)["model"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-6, rtol=1e-5)
    log = [json.loads(x) for x in (w2 / "runs" / "inverter" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "loss" in r] == [3, 6, 9, 12]


def test_the_corrector_continues_from_exported_weights(run, tmp_path):
    """A corrector run whose work folder is gone continues from its export: lr 0 keeps the
    exported weights exactly (fp32 export), instead of the inverter's."""
    from vec2text_c.train.pipeline import _load_module

    root, work = run
    w2 = tmp_path / "w"
    shutil.copytree(work / "data", w2 / "data")
    shutil.copytree(work / "t5", w2 / "t5")
    log = train_corrector(w2, replace(STEPS, steps=2, eval_every=2, save_every=2, lr=0.0, warmup=1),
                          init_from=root / "fp32" / "corrector", with_gate=False)
    assert log
    want = _load_module(work, "corrector").state_dict()
    got = torch.load(w2 / "runs" / "corrector" / "state.pt", weights_only=True)["model"]
    for k, v in want.items():
        torch.testing.assert_close(got[k], v, rtol=0, atol=0)
    assert not (w2 / "runs" / "inverter").exists()  # the inverter was not needed


def test_the_corrector_continues_from_an_int8_export(run, tmp_path):
    """init_from reads int8 rows as the C core does (q * scale): lr 0 keeps exactly those values."""
    from safetensors.numpy import load_file

    from vec2text_c._safetensors_io import merge_int8_rows

    root, work = run
    w2 = tmp_path / "w"
    shutil.copytree(work / "data", w2 / "data")
    shutil.copytree(work / "t5", w2 / "t5")
    train_corrector(w2, replace(STEPS, steps=2, eval_every=2, save_every=2, lr=0.0, warmup=1),
                    init_from=root / "int8" / "corrector", with_gate=False)
    want = merge_int8_rows(load_file(str(root / "int8" / "corrector" / "model.safetensors")))
    got = torch.load(w2 / "runs" / "corrector" / "state.pt", weights_only=True)["model"]
    assert any(k + ".int8_scale" in load_file(str(root / "int8" / "corrector" / "model.safetensors")) for k in got)
    for k, v in want.items():
        np.testing.assert_array_equal(got[k].numpy(), np.asarray(v, np.float32))


@pytest.mark.parametrize("blind", [0.0, 1.0])
def test_a_blind_corrector_sees_no_embedding(run, tmp_path, blind):
    """blind=1: the target and hypothesis embeddings are zeros in every training example, so the
    first layer of the three embedding transforms gets no gradient: AdamW only decays it, every
    entry by the same factor. blind=0: they learn."""
    root, work = run
    w2 = tmp_path / "w"
    shutil.copytree(work / "data", w2 / "data")
    shutil.copytree(work / "t5", w2 / "t5")
    train_corrector(w2, replace(STEPS, steps=3, eval_every=3, save_every=3), init_from=root / "fp32" / "corrector",
                    with_gate=False, blind=blind)
    from safetensors.numpy import load_file

    before = load_file(str(root / "fp32" / "corrector" / "model.safetensors"))
    after = torch.load(w2 / "runs" / "corrector" / "state.pt", weights_only=True)["model"]
    for i in (1, 2, 3):
        k = f"embedding_transform_{i}.0.weight"
        ratio = after[k].numpy() / before[k]
        if blind:
            assert np.ptp(ratio) < 1e-5 and 0.99 < ratio.mean() < 1.0, (k, np.ptp(ratio))
        else:
            assert np.ptp(ratio) > 1e-3, k


def test_blind_is_checked(run):
    _, work = run
    for bad in (1.5, -0.1, True, "half"):
        with pytest.raises(ValueError, match=r"blind: expected a fraction in \[0, 1\], got"):
            train_corrector(work, STEPS, blind=bad)


def test_min_cosine_trains_on_the_close_hypotheses_only(run, tmp_path, monkeypatch):
    """min_cosine: the training set is the hypotheses whose embedding's cosine to the target's
    reaches the threshold (computed here row by row), in file order; the validation set stays
    whole; the option is kept by the run and a resume with another value is refused."""
    import vec2text_c.train.pipeline as pl

    _, work = run
    w2 = tmp_path / "w"
    shutil.copytree(work / "data", w2 / "data")
    shutil.copytree(work / "t5", w2 / "t5")
    shutil.copytree(work / "inverter", w2 / "inverter")
    shutil.copytree(work / "runs" / "inverter", w2 / "runs" / "inverter")
    h = np.load(w2 / "data" / "hypotheses.npz")
    E = np.load(w2 / "data" / "embeddings.npy")
    n = int(h["n_train"])
    cos = []
    for r, e in zip(h["rows"][:n], h["embeddings"][:n]):
        t = E[r].astype(np.float64)
        cos.append(float(t @ e / np.sqrt((t @ t) * (e.astype(np.float64) @ e))))
    cos = np.array(cos)
    t = float(np.median(cos))
    want = np.flatnonzero(cos >= t)
    assert 16 <= len(want) < n

    seen = {}

    def fake_fit(model, loss_fn, lengths, val_fn, settings, run_dir, **kw):
        seen["n"] = len(lengths)
        loss_fn(model, np.arange(len(lengths)))
        return []

    real_labels = pl._labels

    def labels(torch_, ids, lengths, idx, dev):  # the target rows of the batch
        seen["rows"] = idx.copy()
        return real_labels(torch_, ids, lengths, idx, dev)

    monkeypatch.setattr(pl, "fit", fake_fit)
    monkeypatch.setattr(pl, "_labels", labels)
    train_corrector(w2, STEPS, with_gate=False, min_cosine=t)
    assert seen["n"] == len(want)
    np.testing.assert_array_equal(seen["rows"], h["rows"][want])
    assert json.loads((w2 / "runs" / "corrector" / "options.json").read_text())["min_cosine"] == t

    (w2 / "runs" / "corrector" / "state.pt").write_bytes(b"")  # a run in progress
    with pytest.raises(ValueError, match=r"min_cosine: the corrector run in .* was started with min_cosine="):
        train_corrector(w2, STEPS, with_gate=False, min_cosine=0.0)
    seen.clear()
    train_corrector(w2, STEPS, with_gate=False)  # None: the run's own
    assert seen["n"] == len(want)


def test_min_cosine_is_checked(run, tmp_path):
    _, work = run
    for bad in (1.0, -1.5, True, "high"):
        with pytest.raises(ValueError, match=r"min_cosine: expected a cosine in \[-1, 1\) or None, got"):
            train_corrector(work, STEPS, min_cosine=bad)
    w2 = tmp_path / "w"
    shutil.copytree(work / "data", w2 / "data")
    shutil.copytree(work / "t5", w2 / "t5")
    shutil.copytree(work / "runs" / "inverter", w2 / "runs" / "inverter")
    with pytest.raises(ValueError, match=r"min_cosine: \d+ of \d+ training hypotheses have a cosine >= 0.9999 to their target, "
                                         r"fewer than one batch of 16"):
        train_corrector(w2, STEPS, with_gate=False, min_cosine=0.9999)


def test_the_corrector_gate_measures_keeping_a_right_hypothesis(run, tmp_path):
    """The keep part of the gate feeds the targets' own tokens: a work folder whose validation
    hypotheses are exactly those rows (embedded as the loop embeds them) gives the same figures
    from both parts, and a start cosine near 1."""
    from vec2text_c.train.pipeline import _load_module, corrector_gate

    _, work = run
    w2 = tmp_path / "w"
    shutil.copytree(work, w2)
    h = dict(np.load(w2 / "data" / "hypotheses.npz"))
    n = int(h["n_train"])
    d = np.load(w2 / "data" / "ids.npz")
    tok = vec2text_c.T5Tokenizer.from_pretrained(w2 / "t5")
    emb = vec2text_c.load_embedder("all-MiniLM-L6-v2")
    L = h["ids"].shape[1]
    for j in range(n, len(h["rows"])):
        r = int(h["rows"][j])
        t = d["ids"][r, :d["lengths"][r] - 1][:L - 2]
        h["ids"][j] = 0
        h["ids"][j, 1:1 + len(t)] = t
        h["ids"][j, 1 + len(t)] = 1
    h["embeddings"][n:] = emb.encode(tok.batch_decode(h["ids"][n:], skip_special_tokens=True), max_length=L)
    np.savez(w2 / "data" / "hypotheses.npz", **h)
    g = corrector_gate(w2, n=20)(_load_module(work, "corrector"))
    assert g["gate_start_cosine"] > 0.9  # (the tiny vocabulary's round trip is not exact: unknown pieces, case)
    assert g["gate_keep_cosine"] == pytest.approx(g["gate_cosine"], abs=1e-5)
    assert 0.0 <= g["gate_keep_exact"] <= 1.0
    # the tiny random corrector keeps nothing: its round moves the text away from a right answer
    assert g["gate_keep_cosine"] < 0.9


def test_device_is_checked_before_training(tmp_path):
    from vec2text_c.train.trainer import fit, resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    model = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match="device: expected 'cpu', 'cuda' or 'cuda:N', got 'tpu'"):
        fit(model, None, np.ones(4), None, TrainSettings(device="tpu"), tmp_path, progress=False)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device: 'cuda' requested, but this PyTorch sees no CUDA device"):
            fit(model, None, np.ones(4), None, TrainSettings(device="cuda"), tmp_path, progress=False)
    assert not (tmp_path / "state.pt").exists()


# ---- the copy gate -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gate_run(run, tmp_path_factory):
    """A corrector trained a few steps with the copy gate from the run's fp32 export, exported."""
    root, work = run
    w = tmp_path_factory.mktemp("gate") / "w"
    shutil.copytree(work / "data", w / "data")
    shutil.copytree(work / "t5", w / "t5")
    shutil.copytree(work / "runs" / "inverter", w / "runs" / "inverter")
    train_corrector(w, replace(STEPS, steps=6, eval_every=6, save_every=6), init_from=root / "fp32" / "corrector",
                    with_gate=False, copy_gate=True)
    export(w, w / "fp32", bf16=False)
    return root, w


def _loop_rounds(corr, E, steps=1, L=None):
    seen = {}
    vec2text_c.api._run(E, corr, steps, 1, max_length=L,
                        on_round=lambda rnd, b, ids, lens, embs, cos, best, active:
                        seen.setdefault(rnd, (ids.copy(), lens.copy(), embs.copy())))
    return seen


def test_copy_gate_is_exported_and_loaded(gate_run):
    _, w = gate_run
    cfg = json.loads((w / "fp32" / "corrector" / "config.json").read_text())
    assert cfg["copy_gate"] is True
    assert "copy_gate" not in json.loads((w / "fp32" / "inverter" / "config.json").read_text())
    corr = vec2text_c.load_corrector(w / "fp32" / "inverter", w / "fp32" / "corrector")
    assert corr.corrector.copy_gate is True and corr.inverter.copy_gate is False
    assert _load_module(w, "corrector").copy_gate is not None


def _gate_inputs(w, n):
    h = np.load(w / "data" / "hypotheses.npz")
    E = np.load(w / "data" / "embeddings.npy")[h["rows"][:n]]
    return E, h


def test_the_core_loop_runs_the_copy_gate_as_torch_does(gate_run):
    """Greedy correction rounds in the C loop give the tokens torch's greedy decoding with the
    gate gives from the same hypotheses and embeddings; with the gate's weights zeroed, other
    tokens (the gate reaches the decoder)."""
    _, w = gate_run
    model = _load_module(w, "corrector")
    corr = vec2text_c.load_corrector(w / "fp32" / "inverter", w / "fp32" / "corrector")
    E, h = _gate_inputs(w, 24)
    L = h["ids"].shape[1]
    seen = _loop_rounds(corr, E, 2, L)
    for rnd in (0, 1):
        ids0, lens0, embs0 = seen[rnd]
        ids1, lens1, _ = seen[rnd + 1]
        hl = int(lens0.max())
        args = (torch.from_numpy(E), torch.from_numpy(embs0), torch.from_numpy(ids0[:, :hl].astype(np.int64)), L)
        with torch.no_grad():
            want = model.generate_greedy(*args).numpy()
        for j in range(len(E)):
            n = int(lens1[j])
            assert ids1[j, :n].tolist() == want[j, :n].tolist(), (rnd, j)
            assert not want[j, n:].any(), (rnd, j)
        with torch.no_grad():
            model.copy_gate.weight.zero_()
            model.copy_gate.bias.zero_()
            plain = model.generate_greedy(*args).numpy()
        model = _load_module(w, "corrector")
        assert plain.shape != want.shape or (plain != want).any()


def test_torch_greedy_with_the_copy_gate_is_the_argmax_of_its_teacher_forced_pass(gate_run):
    _, w = gate_run
    model = _load_module(w, "corrector")
    E, h = _gate_inputs(w, 8)
    E = torch.from_numpy(E)
    he, hid = torch.from_numpy(h["embeddings"][:8]), torch.from_numpy(h["ids"][:8].astype(np.int64))
    with torch.no_grad():
        out = model.generate_greedy(E, he, hid, 12)
        x, mask = model.encoder_inputs(E, he, hid)
        t5 = model.encoder_decoder
        enc = t5.encoder(inputs_embeds=x, attention_mask=mask).last_hidden_state
        dec = t5.decoder(input_ids=out[:, :-1], encoder_hidden_states=enc, encoder_attention_mask=mask)
        got = model.copy_logits(dec.last_hidden_state, hid).argmax(-1)
        # the loss is the cross-entropy of those logits
        lab = out[:, 1:].clone()
        lab[lab == 0] = -100
        want = torch.nn.functional.cross_entropy(model.copy_logits(dec.last_hidden_state, hid).reshape(-1, 320),
                                                 lab.reshape(-1), ignore_index=-100)
        assert float(model(E, he, hid, lab)) == pytest.approx(float(want), rel=1e-5)
    live = torch.cat([torch.ones(8, 1, dtype=torch.bool), (out[:, 1:-1] != 1) & (out[:, 1:-1] != 0)], 1)
    assert (got[live] == out[:, 1:][live]).all()


def test_copy_gate_stays_with_its_run(gate_run, tmp_path):
    root, w = gate_run
    with pytest.raises(ValueError, match="copy_gate: the corrector run in .* was started with copy_gate=True"):
        train_corrector(w, STEPS, with_gate=False, copy_gate=False)
    with pytest.raises(TypeError, match="copy_gate: expected True, False or None"):
        train_corrector(w, STEPS, with_gate=False, copy_gate="yes")
    # a fresh run from an export with the gate takes it on, its weights included
    w2 = tmp_path / "w"
    shutil.copytree(w / "data", w2 / "data")
    shutil.copytree(w / "t5", w2 / "t5")
    train_corrector(w2, replace(STEPS, steps=1, eval_every=1, save_every=1, lr=0.0, warmup=1),
                    init_from=w / "fp32" / "corrector", with_gate=False)
    assert json.loads((w2 / "runs" / "corrector" / "options.json").read_text()) == {"copy_gate": True, "min_cosine": None}
    a, b = _load_module(w, "corrector").copy_gate, _load_module(w2, "corrector").copy_gate
    torch.testing.assert_close(a.weight, b.weight, rtol=0, atol=0)
    torch.testing.assert_close(a.bias, b.bias, rtol=0, atol=0)


def test_a_bad_copy_gate_in_a_config_is_refused(gate_run, tmp_path):
    _, w = gate_run
    for kind, value in (("corrector", "yes"), ("inverter", True)):
        d = tmp_path / kind
        shutil.copytree(w / "fp32" / kind, d)
        cfg = json.loads((d / "config.json").read_text())
        cfg["copy_gate"] = value
        cfg["model_name_or_path"] = str(w / "fp32" / "t5")
        (d / "config.json").write_text(json.dumps(cfg))
        with pytest.raises(ValueError, match=r"config.json: copy_gate: expected true or false"):
            vec2text_c.load_corrector(d if kind == "inverter" else w / "fp32" / "inverter",
                                      d if kind == "corrector" else w / "fp32" / "corrector")
    corr = vec2text_c.load_corrector(w / "fp32" / "inverter", w / "fp32" / "corrector")
    with pytest.raises(ValueError, match="copy_gate: only a corrector"):
        vec2text_c._core.Inverter(str(w / "fp32" / "inverter" / "model.safetensors"), corr.inverter_t5._core, 4,
                                  copy_gate=True)


def test_the_copy_gate_starts_at_zero_and_learns_fast(gate_run, run):
    """A corrector gaining the gate starts as it was (zeros: the same greedy tokens as without
    the option), and training moves the gate faster than the learning rate alone would."""
    from vec2text_c.train.modeling import CorrectorModule
    from vec2text_c.train.pipeline import load_exported

    root, w = gate_run
    info = json.loads((w / "data" / "info.json").read_text())
    m = CorrectorModule(TINY.t5_config(), info["dim"], TINY.num_repeat_tokens, copy_gate=True).eval()
    load_exported(m, root / "fp32" / "corrector")
    assert not m.copy_gate.weight.detach().any() and not m.copy_gate.bias.detach().any()
    E, h = _gate_inputs(w, 8)
    args = (torch.from_numpy(E), torch.from_numpy(h["embeddings"][:8]), torch.from_numpy(h["ids"][:8].astype(np.int64)),
            12)
    a = m.generate_greedy(*args)
    m.copy_gate = None
    assert a.tolist() == m.generate_greedy(*args).tolist()
    g = _load_module(w, "corrector").copy_gate
    # 6 steps at lr <= 3e-3: Adam moves a parameter about lr a step at most; the gate learns 20-100x faster
    assert float(g.bias.detach().abs().max()) > 6 * 3e-3 * 2
    assert float(g.weight.detach().abs().max()) > 6 * 3e-3 * 2


def test_a_copy_gate_corrector_without_its_weights_is_refused(gate_run, tmp_path):
    from safetensors.numpy import load_file, save_file

    _, w = gate_run
    d = tmp_path / "corrector"
    shutil.copytree(w / "fp32" / "corrector", d)
    t = load_file(str(d / "model.safetensors"))
    del t["copy_gate.bias"]
    save_file(t, str(d / "model.safetensors"), metadata={"format": "pt"})
    cfg = json.loads((d / "config.json").read_text())
    cfg["model_name_or_path"] = str(w / "fp32" / "t5")
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(Exception, match="copy_gate.bias"):
        vec2text_c.load_corrector(w / "fp32" / "inverter", d)
