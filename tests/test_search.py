"""`invert_embeddings(..., search=...)`: more candidates per round and the local edit search of
csrc/vec2text/edit.c, checked against a NumPy re-implementation built from the lower layers
(T5Model.generate / decoder_logits, the inverter / corrector input builders, the embedder),
on the tiny GTR-recipe reference models of the parity tests."""
from __future__ import annotations

import numpy as np
import pytest

from _v2t_fixtures import ours, targets

import vec2text_c

KIND = "gtr"


def _cos(e, E):
    return (e * E).sum(1) / (np.maximum(np.linalg.norm(e, axis=1), 1e-8) * np.maximum(np.linalg.norm(E, axis=1), 1e-8))


def _rows(hyps, width):
    out = np.zeros((len(hyps), width), dtype=np.int32)
    for i, h in enumerate(hyps):
        out[i, :len(h)] = h
    return out


def _trim(row) -> list:
    """A generated row (decoder start, tokens, </s>, pads) without its padding."""
    row = list(row)
    n = len(row)
    while n > 1 and row[n - 1] == 0:
        n -= 1
    return row[:n]


def _proposals(h: list, logits: np.ndarray, k: int, width: int, pad=0, eos=1) -> list:
    """edit.h's proposals, in its order, for the hypothesis row h (start, tokens, [</s>])."""
    has_eos = len(h) >= 2 and h[-1] == eos
    tok = h[1:len(h) - 1] if has_eos else h[1:]
    n = len(tok)
    tail = [eos] if has_eos else []
    kk = min(k + 3, logits.shape[-1])
    out = []
    for p in range(1, n + 2):
        order = [int(v) for v in np.argsort(-logits[p - 1], kind="stable")[:kk]]
        if p <= n:
            subs = [v for v in order if v not in (pad, eos, tok[p - 1])][:k]
            out += [[h[0]] + tok[:p - 1] + [v] + tok[p:] + tail for v in subs]
        if 1 + (n + 1) + len(tail) <= width:
            ins = [v for v in order if v not in (pad, eos)][:k]
            out += [[h[0]] + tok[:p - 1] + [v] + tok[p - 1:] + tail for v in ins]
        if p <= n and n >= 2:
            out.append([h[0]] + tok[:p - 1] + tok[p:] + tail)
    return out


def _edit_reference(c, E, hyps, embs, coss, rounds, k, width, use_corrector):
    """The edit search of edit.h over all examples as one chunk (the loop's chunk here)."""
    hyps, embs, coss = list(hyps), embs.copy(), coss.copy()
    live = list(range(len(hyps)))
    for _ in range(rounds):
        if not live:
            break
        Lt = max(len(hyps[e]) - (1 if hyps[e][-1] == 1 else 0) for e in live)
        dec = _rows([hyps[e][:len(hyps[e]) - (1 if hyps[e][-1] == 1 else 0)] for e in live], Lt)
        if use_corrector:
            Lmax = max(len(hyps[e]) for e in live)
            x, mask = c.corrector.inputs(E[live], embs[live], _rows([hyps[e] for e in live], Lmax))
            logits = c.corrector_t5.decoder_logits(inputs_embeds=x, attention_mask=mask, decoder_input_ids=dec)
        else:
            x = c.inverter.inputs(E[live])
            logits = c.inverter_t5.decoder_logits(inputs_embeds=x, decoder_input_ids=dec)
        props, owner = [], []
        for i, e in enumerate(live):
            got = _proposals(hyps[e], logits[i], k, width)
            props += got
            owner += [e] * len(got)
        pe = c.embed_ids(_rows(props, max(len(p) for p in props)))
        pc = _cos(pe, E[owner])
        nxt = []
        for e in live:
            idx = [j for j, o in enumerate(owner) if o == e]
            best = max(idx, key=lambda j: (pc[j], -j))
            if pc[best] > coss[e]:
                hyps[e], embs[e], coss[e] = props[best], pe[best], pc[best]
                nxt.append(e)
        live = nxt
    return hyps, coss


def test_edit_search_after_the_inverter_matches_the_reference():
    c, E = ours(KIND), targets(KIND)[:6]
    x = c.inverter.inputs(E)
    step0 = [_trim(r) for r in c.inverter_t5.generate(inputs_embeds=x, max_length=128)]
    e0 = c.embed_ids(_rows(step0, max(map(len, step0))))
    want, wcos = _edit_reference(c, E, step0, e0, _cos(e0, E), rounds=2, k=2, width=128, use_corrector=False)
    got = vec2text_c.invert_embeddings(E, c, num_steps=None, search=vec2text_c.Search(candidates=0, edit_rounds=2, edit_top_k=2))
    assert got == c.tokenizer.batch_decode(_rows(want, 128), skip_special_tokens=True)
    assert (wcos >= _cos(e0, E) - 1e-6).all() and (wcos > _cos(e0, E) + 1e-4).any()


def test_edit_search_after_correction_matches_the_reference():
    c, E = ours(KIND), targets(KIND)[:6]
    seen = {}
    vec2text_c.api._run(E, c, 1, 1, keep_best=True,
                        on_round=lambda rnd, b, ids, lens, embs, cos, best, active: seen.__setitem__(
                            rnd, ([list(ids[i, :lens[i]]) for i in range(len(lens))], embs.copy(), cos.copy())))
    # the best of round 0 and round 1 per example (keep_best, earliest on ties)
    hyps, embs, coss = [], np.zeros_like(E), np.zeros(len(E), np.float32)
    for e in range(len(E)):
        r = 1 if seen[1][2][e] > seen[0][2][e] else 0
        hyps.append(seen[r][0][e])
        embs[e], coss[e] = seen[r][1][e], seen[r][2][e]
    want, wcos = _edit_reference(c, E, hyps, embs, coss, rounds=2, k=3, width=128, use_corrector=True)
    got = vec2text_c.invert_embeddings(E, c, num_steps=1, search=vec2text_c.Search(candidates=0, edit_rounds=2, edit_top_k=3))
    assert got == c.tokenizer.batch_decode(_rows(want, 128), skip_special_tokens=True)
    assert (wcos > coss + 1e-4).any()


def test_candidates_rank_every_beam_and_keep_the_best():
    """b = 1 with 3 candidates, one round: the result is the best-cosine of the step-0
    hypothesis and the corrector's 3 beam-search candidates."""
    c, E = ours(KIND), targets(KIND)[:6]
    x0 = c.inverter.inputs(E)
    step0 = [_trim(r) for r in c.inverter_t5.generate(inputs_embeds=x0, max_length=c.max_seq_length)]
    e0 = c.embed_ids(_rows(step0, max(map(len, step0))))
    L = max(map(len, step0))
    x, mask = c.corrector.inputs(E, e0, _rows(step0, L))
    cands = c.corrector_t5.generate(inputs_embeds=x, attention_mask=mask, max_length=128, num_beams=3,
                                    num_return_sequences=3)
    ce = c.embed_ids(cands)
    cc = _cos(ce, np.repeat(E, 3, axis=0)).reshape(len(E), 3)
    c0 = _cos(e0, E)
    want = []
    for e in range(len(E)):
        j = int(np.argmax(cc[e]))
        want.append(step0[e] if c0[e] >= cc[e, j] else _trim(cands[e * 3 + j]))
    got = vec2text_c.invert_embeddings(E, c, num_steps=1, search=vec2text_c.Search(candidates=3, edit_rounds=0))
    assert got == c.tokenizer.batch_decode(_rows(want, 128), skip_special_tokens=True)


def test_search_raises_the_cosine_over_keep_best():
    c, E = ours(KIND), targets(KIND)
    kb = vec2text_c.invert_embeddings(E, c, num_steps=2, sequence_beam_width=2, keep_best=True)
    s = vec2text_c.invert_embeddings(E, c, num_steps=2, sequence_beam_width=2, search=True)
    ck, cs = _cos(c.embed(kb, c.max_seq_length), E), _cos(c.embed(s, c.max_seq_length), E)
    assert cs.mean() > ck.mean() + 0.05, (ck.mean(), cs.mean())


def test_search_off_leaves_the_reference_results():
    c, E = ours(KIND), targets(KIND)[:8]
    plain = vec2text_c.invert_embeddings(E, c, num_steps=2, sequence_beam_width=2)
    assert vec2text_c.invert_embeddings(E, c, num_steps=2, sequence_beam_width=2, search=None) == plain
    assert vec2text_c.invert_embeddings(E, c, num_steps=2, sequence_beam_width=2, search=False) == plain


@pytest.mark.parametrize("search, exc, match", [
    (vec2text_c.Search, ValueError, r"Search.edit_top_k: expected an int in \[1, 64\], got 0"),
    ("fast", TypeError, r"search: expected None, a bool, a vec2text_c.Search or a dict of its fields, got str"),
    ({"rounds": 3}, ValueError, r"search: .*unexpected keyword argument 'rounds'"),
    ({"candidates": -1}, ValueError, r"Search.candidates: expected an int in \[0, 64\], got -1"),
    ({"edit_rounds": 2.5}, ValueError, r"Search.edit_rounds: expected an int in \[0, 10000\], got 2.5"),
])
def test_bad_search_arguments(search, exc, match):
    c, E = ours(KIND), targets(KIND)[:2]
    with pytest.raises(exc, match=match):
        if search is vec2text_c.Search:
            vec2text_c.Search(edit_top_k=0)
        else:
            vec2text_c.invert_embeddings(E, c, num_steps=1, search=search)


def test_inverter_only_model_inverts_with_num_steps_none_and_search():
    from _v2t_fixtures import artifacts
    from vec2text_c.embedders import load_embedder

    art = artifacts(KIND)
    full = ours(KIND)
    inv = vec2text_c.load_corrector(art.inversion_dir, None, embedder=load_embedder(art.embedder_dir, recipe="gtr"))
    assert not inv.has_corrector and full.has_corrector and inv.max_seq_length == full.max_seq_length
    E = targets(KIND)[:4]
    assert vec2text_c.invert_embeddings(E, inv) == vec2text_c.invert_embeddings(E, full)
    s = vec2text_c.Search(candidates=0, edit_rounds=2, edit_top_k=2)
    assert vec2text_c.invert_embeddings(E, inv, search=s) == vec2text_c.invert_embeddings(E, full, num_steps=None, search=s)
    with pytest.raises(ValueError, match=r"num_steps: this model has no corrector .*num_steps=None"):
        vec2text_c.invert_embeddings(E, inv, num_steps=1)
    assert "corrector=None" in repr(inv)
