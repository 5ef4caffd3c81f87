"""The offline vec2text reference harness (tests/v2t_reference.py) against vec2text 0.0.13 itself.

These tests check that the harness runs the real package, that what it saves is what vec2text
loads, that its accessors return what the docstring says (re-derived here from the saved
tensors with NumPy), and they pin down the reference's quirks that the C loop must reproduce.
"""
from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np
import pytest

import vec2text  # noqa: F401  (the reference stack: the `test` extra)

import torch  # noqa: E402

import v2t_reference as ref  # noqa: E402

GRID = ref.GRID
N_TARGETS = 16


@pytest.fixture(scope="session")
def ref_root(tmp_path_factory, shared_data):
    return tmp_path_factory.mktemp("v2t_reference")


@pytest.fixture(scope="session", params=ref.KINDS)
def art(request, ref_root, shared_data):
    return ref.reference_artifacts(request.param, ref_root, shared_data)


@pytest.fixture(scope="session")
def sentences(shared_data):
    return ref.read_sentences(shared_data)


@pytest.fixture(scope="session")
def targets(art, sentences):
    return ref.reference_embed(art.corrector, sentences[:N_TARGETS])


def _gelu(x):
    return 0.5 * x * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))


def _tensors(path):
    from safetensors.numpy import load_file

    return load_file(str(path / "model.safetensors"))


# --------------------------------------------------------------------------------------------
# Tokenizer, embedders, checkpoints
# --------------------------------------------------------------------------------------------


def test_t5_tokenizer_is_fast_and_matches_sentencepiece(art, sentences):
    import transformers

    fast = art.corrector.tokenizer  # what vec2text's AutoTokenizer loaded
    assert isinstance(fast, transformers.T5TokenizerFast)
    assert fast.clean_up_tokenization_spaces is False
    slow = transformers.T5Tokenizer(
        str(art.tokenizer_dir / "spiece.model"), extra_ids=ref.EXTRA_IDS, legacy=True
    )
    assert len(fast) == ref.SPM_VOCAB_SIZE + ref.EXTRA_IDS
    assert fast.convert_ids_to_tokens([0, 1, 2]) == ["<pad>", "</s>", "<unk>"]
    assert fast.convert_tokens_to_ids("<extra_id_0>") == len(fast) - 1
    texts = sentences[5000:5400] + ["  two  spaces ", "Ünïcödé ﬁ ½ …", "tab\there", ""]
    for text in texts:
        assert fast(text).input_ids == slow(text).input_ids, text
    # decode quirk of the fast tokenizer (the one vec2text uses): special and out-of-range
    # ids are dropped, and a text starting with the bare "▁" piece keeps its leading space
    bare = fast.convert_tokens_to_ids("▁")
    word = fast.convert_tokens_to_ids("▁A")
    assert fast.decode([0, bare, word, 1], skip_special_tokens=True) == " A"
    assert slow.decode([0, bare, word, 1], skip_special_tokens=True) == "A"
    assert fast.decode([0, word, len(fast) - 1, 2, 0, word, 1, 999], skip_special_tokens=True) == "A A"


def test_vocabularies_are_the_same_in_a_fresh_process(ref_root, shared_data):
    """Tokenizer training must not depend on the process (hash-map order, threads): another
    interpreter trains the same SentencePiece model and WordPiece vocabulary as the ones built."""
    import hashlib
    import subprocess
    import sys

    code = (
        "import hashlib, sys; sys.path.insert(0, sys.argv[1]); import v2t_reference as r; "
        "s = r._training_sentences(sys.argv[2]); "
        "print(hashlib.sha256(r.train_sentencepiece(s)).hexdigest()); "
        "print(hashlib.sha256('\\n'.join(r.build_wordpiece_vocab(s)).encode()).hexdigest())"
    )
    here = str(Path(ref.__file__).parent)
    out = subprocess.run(
        [sys.executable, "-c", code, here, str(shared_data)], capture_output=True, text=True, check=True
    ).stdout.split()
    gtr = ref.reference_artifacts("gtr", ref_root, shared_data)
    bert = ref.reference_artifacts("bert", ref_root, shared_data)
    vocab = (bert.embedder_dir / "vocab.txt").read_text(encoding="utf-8").rstrip("\n")
    assert out == [
        hashlib.sha256((gtr.tokenizer_dir / "spiece.model").read_bytes()).hexdigest(),
        hashlib.sha256(vocab.encode()).hexdigest(),
    ]


def test_embedder_loader_patch_gives_vec2text_the_local_models(art):
    import transformers
    from sentence_transformers import SentenceTransformer

    model = art.corrector.inversion_trainer.model
    config = json.loads((art.inversion_dir / "config.json").read_text())
    assert config["embedder_model_name"] == art.embedder_name
    if art.kind == "gtr":
        assert art.embedder_name == "gtr_base"
        assert isinstance(model.embedder, transformers.models.t5.modeling_t5.T5Stack)
    else:
        assert art.embedder_name.startswith("sentence-transformers/")
        assert isinstance(model.embedder, SentenceTransformer)
        assert [type(m).__name__ for m in model.embedder] == ["Transformer", "Pooling", "Normalize"]
    assert model.embedder_dim == ref.EMBEDDER_DIM
    with pytest.raises(ValueError, match="no local embedder registered"):
        ref._load_local_embedder("sentence-transformers/gtr-t5-base")


def test_reference_embed_is_the_documented_recipe(art, sentences):
    import transformers

    texts = sentences[:8] + [" ".join(sentences[:12])]  # the last one is over 128 tokens
    got = ref.reference_embed(art.corrector, texts)
    with ref.torch_threads(), torch.no_grad():
        if art.kind == "gtr":
            tok = transformers.AutoTokenizer.from_pretrained(str(art.embedder_dir))
            enc = tok(texts, max_length=128, truncation=True, padding="max_length", return_tensors="pt")
            assert int(enc.attention_mask[-1].sum()) == 128
            encoder = transformers.T5EncoderModel.from_pretrained(str(art.embedder_dir)).eval()
            hidden = encoder(input_ids=enc.input_ids, attention_mask=enc.attention_mask).last_hidden_state
            mask = enc.attention_mask[..., None].float()
            want = ((hidden * mask).sum(1) / mask.sum(1)).numpy()
        else:
            from sentence_transformers import SentenceTransformer

            st = SentenceTransformer(str(art.embedder_dir), device="cpu")
            st.max_seq_length = 128
            want = st.encode(texts, convert_to_numpy=True, batch_size=len(texts))
            np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(got, want, atol=2e-5, rtol=1e-4)


def test_hypothesis_embedding_truncates_at_the_correctors_max_seq_length(art, sentences):
    """Re-embedded texts keep their first max_seq_length - 1 tokens and the closing special
    token (</s> for the T5 tokenizer, [SEP] after [CLS] for BERT)."""
    c = art.corrector
    long_text = " ".join(sentences[:6])
    ids = c.embedder_tokenizer(long_text).input_ids
    L = ref.MAX_SEQ_LENGTH
    assert len(ids) > L
    kept = torch.tensor([ids[: L - 1] + [ids[-1]]])
    with ref.torch_threads(), torch.no_grad():
        want = c.inversion_trainer.call_embedding_model(input_ids=kept, attention_mask=torch.ones_like(kept))
    got = ref.reference_embed(c, [long_text], hypothesis=True)
    np.testing.assert_allclose(got, want.numpy(), atol=1e-5)
    assert np.abs(got - ref.reference_embed(c, [long_text])).max() > 1e-3


def test_checkpoints_hold_exactly_what_vec2text_loaded(art):
    import vec2text

    inv = art.corrector.inversion_trainer.model
    cor = art.corrector.model
    for path, model, kind in ((art.inversion_dir, inv, "InversionModel"), (art.corrector_dir, cor, "CorrectorEncoderModel")):
        config = json.loads((path / "config.json").read_text())
        assert config["architectures"] == [kind]
        for field, value in ref.inversion_config_fields(path, art.embedder_name).items():
            if field != "model_name_or_path":
                assert config[field] == value, field
        saved = _tensors(path)
        state = model.state_dict()
        for name, array in saved.items():
            assert array.dtype == np.float32, name
            np.testing.assert_array_equal(state[name].numpy(), array, err_msg=name)
        missing = set(state) - set(saved)
        # only the aliases of the tied word embedding are not written
        assert missing == {
            "encoder_decoder.encoder.embed_tokens.weight",
            "encoder_decoder.decoder.embed_tokens.weight",
            "encoder_decoder.lm_head.weight",
        }
    inv_names = set(_tensors(art.inversion_dir))
    assert {n for n in inv_names if n.startswith("embedding_transform")} == {
        f"embedding_transform.{i}.{p}" for i in (0, 3) for p in ("weight", "bias")
    }
    assert any(n.startswith("embedder.") for n in inv_names)
    cor_names = set(_tensors(art.corrector_dir))
    assert {n for n in cor_names if not n.startswith("encoder_decoder.")} == {
        f"embedding_transform_{k}.{i}.{p}" for k in (1, 2, 3) for i in (0, 3) for p in ("weight", "bias")
    } | {"layernorm.weight", "layernorm.bias"}
    # the checkpoint's T5 weights are not those of model_name_or_path
    from safetensors.numpy import load_file

    base = load_file(str(art.corrector_base_dir / "model.safetensors"))
    assert np.abs(base["shared.weight"] - _tensors(art.corrector_dir)["encoder_decoder.shared.weight"]).max() > 1e-3
    # non-trivial LayerNorm
    assert np.abs(cor.layernorm.weight.detach().numpy() - 1).max() > 0.1
    assert np.abs(cor.layernorm.bias.detach().numpy()).max() > 0.1
    assert isinstance(art.corrector, vec2text.trainers.Corrector)


# --------------------------------------------------------------------------------------------
# Intermediate tensors, re-derived from the saved files
# --------------------------------------------------------------------------------------------


def _mlp(t, prefix, x):
    h = x.astype(np.float64) @ t[prefix + ".0.weight"].T.astype(np.float64) + t[prefix + ".0.bias"]
    return _gelu(h) @ t[prefix + ".3.weight"].T.astype(np.float64) + t[prefix + ".3.bias"]


def test_inverter_inputs_are_the_mlp_reshaped(art, targets):
    t = _tensors(art.inversion_dir)
    got = ref.reference_inverter_inputs(art.corrector, targets)
    d = t["encoder_decoder.shared.weight"].shape[1]
    assert got.shape == (N_TARGETS, ref.NUM_REPEAT_TOKENS, d)
    want = _mlp(t, "embedding_transform", targets).reshape(N_TARGETS, ref.NUM_REPEAT_TOKENS, d)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)
    assert np.abs(got[0] - got[1]).max() > 0.1  # different embeddings, different inputs


def test_corrector_inputs_layout_and_layernorm(art, targets):
    t = _tensors(art.corrector_dir)
    hyp = ref.reference_hypotheses(art.corrector, targets)
    ids, mask, e_hat = hyp["ids"], hyp["attention_mask"], hyp["hypothesis_embedding"]
    assert ids.shape[1] <= ref.MAX_SEQ_LENGTH and (ids[:, 0] == 0).all()
    np.testing.assert_array_equal(mask, ids != 0)
    np.testing.assert_allclose(ref.reference_embed_ids(art.corrector, ids), e_hat, atol=1e-6)
    got, got_mask = ref.reference_corrector_inputs(art.corrector, targets, e_hat, ids)
    R = ref.NUM_REPEAT_TOKENS
    shared = t["encoder_decoder.shared.weight"].astype(np.float64)
    d = shared.shape[1]
    assert got.shape == (N_TARGETS, 4 + 3 * R + ids.shape[1], d)
    sep = np.broadcast_to(shared[1], (N_TARGETS, 1, d))
    parts = [
        sep,
        _mlp(t, "embedding_transform_1", targets).reshape(N_TARGETS, R, d),
        sep,
        _mlp(t, "embedding_transform_3", e_hat).reshape(N_TARGETS, R, d),
        sep,
        _mlp(t, "embedding_transform_2", targets.astype(np.float64) - e_hat).reshape(N_TARGETS, R, d),
        sep,
        shared[ids],
    ]
    x = np.concatenate(parts, axis=1)
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    want = (x - mu) / np.sqrt(var + 1e-5) * t["layernorm.weight"] + t["layernorm.bias"]
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)
    want_mask = np.concatenate([np.ones((N_TARGETS, 4 + 3 * R), np.int64), (ids != 0).astype(np.int64)], 1)
    np.testing.assert_array_equal(got_mask, want_mask)


# --------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def grid(art, targets):
    """Every (num_steps, sequence_beam_width) of the parity grid, run once, with traces."""
    return ref.reference_grid(art, targets)


def test_grid_returns_one_string_per_embedding(grid):
    distinct = []
    for key, (texts, _) in grid.items():
        assert len(texts) == N_TARGETS and all(isinstance(s, str) for s in texts), key
        distinct.append(len(set(texts)))
    # the tiny models are not degenerate: different embeddings mostly give different texts
    assert min(distinct) >= 4 and np.mean(distinct) >= 10, distinct


def test_grid_round_structure(grid):
    for (num_steps, width), (_, trace) in grid.items():
        rounds = [r for r in trace if r["stage"] == "round"]
        hyps = [r for r in trace if r["stage"] == "hypothesis"]
        if num_steps is None:
            assert trace == []
            continue
        steps, b = num_steps or 1, width or 1
        assert len(hyps) == 1 and len(rounds) == steps  # num_steps=0 runs one round; no early stop
        assert hyps[0]["ids"].shape[1] <= ref.MAX_SEQ_LENGTH
        for r in rounds:
            kept_rows = N_TARGETS if r["round"] == steps - 1 else N_TARGETS * b
            assert r["ids"].shape[0] == kept_rows
            assert (r["best_scores"] is None) == (b == 1)


def test_runs_are_deterministic(grid, art, targets):
    """num_steps 0 and 1 are the same computation: two independent runs of it. The step-0
    hypothesis is computed anew by every run of the grid. One multi-round beam run is repeated."""
    for b in (0, 2, 4):
        assert grid[(0, b)][0] == grid[(1, b)][0]
    hyps = [t[0]["ids"] for (n, _), (_, t) in grid.items() if n is not None]
    for h in hyps[1:]:
        np.testing.assert_array_equal(h, hyps[0])
    trace: list = []
    again = ref.reference_invert(art.corrector, targets, 3, 2, trace=trace)
    assert again == grid[(3, 2)][0]
    for x, y in zip(trace, grid[(3, 2)][1]):
        np.testing.assert_array_equal(x["ids"], y["ids"])


def test_correction_rounds_generate_past_max_seq_length(grid):
    """invert_embeddings hands max_length 128 to the corrector too: rounds produce rows longer
    than max_seq_length (our tiny decoders end texts at 40 tokens), and those full rows are the
    next round's hypothesis ids."""
    longest = max(
        r["ids"].shape[1] for (n, _), (_, t) in grid.items() if n is not None for r in t if r["stage"] == "round"
    )
    assert longest > ref.MAX_SEQ_LENGTH + 1


def test_beam_search_returns_distinct_rows_per_input(grid):
    """transformers' beam search gives num_return_sequences distinct rows for every input row,
    so each example always has >= sequence_beam_width distinct candidates and the ragged
    `torch.tensor(best_idx_in_beam)` below is unreachable from invert_embeddings."""
    for (num_steps, width), (_, trace) in grid.items():
        if not width:
            continue
        for r in trace:
            if r["stage"] != "generate":
                continue
            ids = r["ids"]
            for i in range(0, ids.shape[0], width):
                assert len({tuple(row) for row in ids[i : i + width]}) == width


def test_no_text_ties_between_distinct_candidates_in_the_grid(grid, art):
    """Equal cosines between different token rows (same decoded text) would make the kept rows
    depend on torch.topk's unstable tie order (torch_cpu_topk_order). The default tiny models
    produce none, so the grid's strings do not depend on it; identical rows (same ids from two
    parents) do occur and are harmless."""
    decode = art.corrector.tokenizer.batch_decode
    identical = 0
    for (num_steps, width), (_, trace) in grid.items():
        if not width:
            continue
        for r in (t for t in trace if t["stage"] == "generate"):
            ids = r["ids"]
            per = ids.shape[0] // N_TARGETS
            texts = decode(ids, skip_special_tokens=True)
            for e in range(N_TARGETS):
                rows = {tuple(ids[j]): texts[j] for j in range(e * per, (e + 1) * per)}
                identical += per - len(rows)
                assert len(set(rows.values())) == len(rows), (num_steps, width, e)
    assert identical > 0


def test_fewer_distinct_candidates_than_beam_width_crashes_the_reference(art, targets):
    """The exact condition: in a non-final round of sequence-level beam search (steps >= 2),
    an example whose candidates hold fewer than `sequence_beam_width` distinct token rows makes
    the kept-index lists ragged and `torch.tensor(best_idx_in_beam)` raises ValueError."""
    c = art.corrector
    B, b = 2, 2
    emb = torch.from_numpy(targets[:B])
    hyp = ref.reference_hypotheses(c, targets[:B])
    row = torch.tensor([[0, 10, 11, 12, 1]])

    from transformers.generation.utils import GenerateBeamEncoderDecoderOutput

    def fake_generate(inputs, generation_kwargs, return_dict_in_generate=False):
        seqs = row.repeat(B * b, 1)  # example 0 gets two identical rows
        seqs[2:, 2] = 13
        seqs[3, 3] = 14  # example 1 gets two distinct rows
        steps = seqs.shape[1] - 1
        return GenerateBeamEncoderDecoderOutput(
            sequences=seqs,
            scores=tuple(torch.zeros(B * b, len(c.tokenizer)) for _ in range(steps)),
            beam_indices=torch.zeros(B * b, steps, dtype=torch.long),
        )

    inputs = {
        "frozen_embeddings": emb,
        "hypothesis_input_ids": torch.from_numpy(hyp["ids"]),
        "hypothesis_attention_mask": torch.from_numpy(hyp["attention_mask"]),
        "hypothesis_embedding": torch.from_numpy(hyp["hypothesis_embedding"]),
    }
    gen_kwargs = dict(c.gen_kwargs, min_length=1, max_length=128)
    c.return_best_hypothesis = True
    from unittest import mock

    with ref.torch_threads(), mock.patch.object(c.model, "generate", fake_generate), mock.patch.object(
        c.model.encoder_decoder, "compute_transition_scores", lambda *a, **k: -torch.ones(B * b, 4)
    ):
        with pytest.raises(ValueError):
            c._generate_with_beam(
                inputs=dict(inputs),
                generation_kwargs=dict(gen_kwargs),
                num_recursive_steps=2,
                num_recursive_steps_so_far=0,
                sequence_beam_width=b,
            )
        # with two distinct rows for every example the same call goes through
        def ok_generate(*a, **k):
            out = fake_generate(*a, **k)
            out.sequences[1, 4] = 0
            return out

        with mock.patch.object(c.model, "generate", ok_generate):
            ids, _, _ = c._generate_with_beam(
                inputs=dict(inputs),
                generation_kwargs=dict(gen_kwargs),
                num_recursive_steps=2,
                num_recursive_steps_so_far=0,
                sequence_beam_width=b,
            )
        assert ids.shape[0] == B * b


def test_invert_strings_is_embed_then_invert(art, sentences, grid, targets):
    got = ref.reference_invert_strings(art.corrector, sentences[:N_TARGETS], 0, 2)
    assert got == grid[(0, 2)][0]


def test_reference_input_checks(art, targets):
    c = art.corrector
    with pytest.raises(AssertionError):  # a 1-D vector is refused by the reference
        ref.reference_invert(c, targets[0], None, 0)
    with pytest.raises(AssertionError, match="beam width"):
        ref.reference_invert(c, targets, None, 2)
    with pytest.raises(RuntimeError):  # so is an empty batch
        ref.reference_invert(c, targets[:0], 1, 0)


# --------------------------------------------------------------------------------------------
# torch.topk tie order
# --------------------------------------------------------------------------------------------


def test_topk_tie_order_port_matches_torch():
    rng = random.Random(7)
    levels = [0.1, 0.2, 0.3, 0.5, 0.7]
    with ref.torch_threads():
        for n in list(range(1, 20)) + [32, 64, 65, 100]:
            for trial in range(120):
                if trial % 6 == 0:
                    values = [rng.random() for _ in range(n)]
                else:
                    values = [rng.choice(levels + ([float("nan")] if trial % 5 == 0 else [])) for _ in range(n)]
                want = torch.tensor([values], dtype=torch.float32).topk(dim=1, k=n).indices[0].tolist()
                assert ref.torch_cpu_topk_order(values) == want, values
    # not a stable sort: equal scores do not keep index order
    assert ref.torch_cpu_topk_order([0.5, 0.1, 0.5, 0.5]) == [2, 3, 0, 1]
