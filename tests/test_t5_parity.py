"""vec2text_c.T5Model against transformers' T5 on tiny random models (CPU, fp32).

Encoder states and decoder logits must agree within 1e-4 absolute; the cached step path (as
a beam search drives it, with parent reordering) must agree with teacher forcing; bad input
must raise TypeError/ValueError naming the argument.
"""
from __future__ import annotations

import json
import math
import pickle

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file, save_file
from transformers import T5Config, T5EncoderModel, T5ForConditionalGeneration
from transformers.models.t5.modeling_t5 import T5Attention

import vec2text_c
from vec2text_c import T5Model, _core

ATOL = 1e-4

# name -> T5Config fields. Covers v1.0 ReLU / v1.1 gated-GELU, tied / untied, 1-4 heads,
# 1-3 layers, different encoder/decoder depths, and heads * d_kv != d_model.
CONFIGS = {
    "v1_0_relu_tied": dict(d_model=32, d_kv=8, num_heads=4, d_ff=64, num_layers=2, num_decoder_layers=2,
                           feed_forward_proj="relu", tie_word_embeddings=True),
    "v1_1_gated_untied": dict(d_model=32, d_kv=16, num_heads=2, d_ff=48, num_layers=3, num_decoder_layers=1,
                              feed_forward_proj="gated-gelu", tie_word_embeddings=False),
    "relu_untied_inner_ne_d": dict(d_model=24, d_kv=12, num_heads=3, d_ff=40, num_layers=1, num_decoder_layers=2,
                                   feed_forward_proj="relu", tie_word_embeddings=False),
    "gated_tied_one_head": dict(d_model=16, d_kv=16, num_heads=1, d_ff=32, num_layers=2, num_decoder_layers=3,
                                feed_forward_proj="gated-gelu", tie_word_embeddings=True,
                                relative_attention_num_buckets=8, relative_attention_max_distance=20),
}
VOCAB = 96


def _build(tmp_path_factory, name, seed):
    torch.manual_seed(seed)
    cfg = T5Config(vocab_size=VOCAB, dropout_rate=0.0, **CONFIGS[name])
    ref = T5ForConditionalGeneration(cfg).eval()
    # random norms and position biases, so a wrong table or norm weight shows
    with torch.no_grad():
        for pname, p in ref.named_parameters():
            if "layer_norm" in pname or "relative_attention_bias" in pname:
                p.copy_(torch.randn_like(p) * 0.5 + (1.0 if "layer_norm" in pname else 0.0))
    path = tmp_path_factory.mktemp(name)
    ref.save_pretrained(path, safe_serialization=True)
    return ref, path


@pytest.fixture(scope="module", params=list(CONFIGS))
def pair(request, tmp_path_factory):
    ref, path = _build(tmp_path_factory, request.param, seed=list(CONFIGS).index(request.param))
    return ref, T5Model.from_pretrained(path), path


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    ref, path = _build(tmp_path_factory, "v1_0_relu_tied", seed=11)
    return ref, T5Model.from_pretrained(path), path


def assert_close(got, want, atol=ATOL, what="values"):
    got = np.asarray(got)
    want = np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    err = np.abs(got.astype(np.float64) - want.astype(np.float64))
    if err.size and err.max() > atol:
        idx = np.unravel_index(int(err.argmax()), err.shape)
        first = np.argwhere(err > atol)[0]
        raise AssertionError(
            f"{what}: max |diff| {err.max():.3g} at {idx} (got {got[idx]}, want {want[idx]}); "
            f"first index over {atol}: {tuple(first)}"
        )
    return float(err.max()) if err.size else 0.0


def _batch(rng, B=4, T=11):
    """Ids of varied lengths, right-padded with 0, and their mask (one row full length)."""
    lengths = rng.integers(1, T + 1, size=B)
    lengths[0] = T
    ids = np.zeros((B, T), np.int64)
    mask = np.zeros((B, T), np.int64)
    for b, n in enumerate(lengths):
        ids[b, :n] = rng.integers(2, VOCAB, size=n)
        mask[b, :n] = 1
    return ids, mask


# ---- kernels ----

@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("buckets,max_distance", [(32, 128), (8, 20), (16, 64), (64, 256), (6, 7)])
def test_relpos_buckets_match_transformers(bidirectional, buckets, max_distance):
    rel = np.arange(-3000, 3001, dtype=np.int64)
    want = T5Attention._relative_position_bucket(torch.from_numpy(rel), bidirectional, buckets, max_distance)
    got = _core.t5_relpos_bucket(rel, bidirectional, buckets, max_distance)
    mismatch = np.nonzero(got != want.numpy())[0]
    assert mismatch.size == 0, f"first mismatch at offset {rel[mismatch[0]]}: {got[mismatch[0]]} vs {want[mismatch[0]]}"


@pytest.mark.parametrize("act", [1, 2, 3])
def test_gated_act_matches_reference_and_numpy(rng, act):
    x = rng.standard_normal((7, 2 * 37), dtype=np.float32) * 3
    fast = _core.kernel_gated_act(x, act)
    ref = _core.kernel_gated_act(x, act, reference=True)
    a, b = x[:, :37].astype(np.float64), x[:, 37:].astype(np.float64)
    if act == 1:
        g = np.maximum(a, 0)
    elif act == 2:
        g = 0.5 * a * (1 + np.vectorize(math.erf)(a / math.sqrt(2)))
    else:
        g = 0.5 * a * (1 + np.tanh(math.sqrt(2 / math.pi) * (a + 0.044715 * a**3)))
    assert_close(ref, g * b, atol=1e-5, what="reference vs numpy")
    assert_close(fast, ref, atol=1e-5, what="fast vs reference")


# ---- parity with transformers ----

def test_encoder_ids_match_transformers(pair, rng):
    ref, ours, _ = pair
    ids, mask = _batch(rng)
    with torch.no_grad():
        want = ref.encoder(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).last_hidden_state
    got = ours.encode(ids, mask)
    assert got.dtype == np.float32 and got.shape == (4, 11, ref.config.d_model)
    assert_close(got, want.numpy(), what="encoder states")
    # no mask = all ones
    with torch.no_grad():
        want = ref.encoder(input_ids=torch.from_numpy(ids)).last_hidden_state
    assert_close(ours.encode(ids), want.numpy(), what="encoder states without mask")


def test_encoder_inputs_embeds_match_transformers(pair, rng):
    ref, ours, _ = pair
    _, mask = _batch(rng, B=3, T=16)
    emb = rng.standard_normal((3, 16, ref.config.d_model), dtype=np.float32)
    with torch.no_grad():
        want = ref.encoder(inputs_embeds=torch.from_numpy(emb), attention_mask=torch.from_numpy(mask)).last_hidden_state
    assert_close(ours.encode(inputs_embeds=emb, attention_mask=mask), want.numpy(), what="encoder states")


@pytest.mark.parametrize("stepwise", [False, True], ids=["causal_pass", "kv_cache_steps"])
def test_decoder_logits_match_transformers(pair, rng, stepwise):
    ref, ours, _ = pair
    ids, mask = _batch(rng, B=4, T=9)
    dec = rng.integers(0, VOCAB, size=(4, 7))
    dec[:, 0] = 0  # the decoder start id (pad) of T5 checkpoints
    with torch.no_grad():
        want = ref(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                   decoder_input_ids=torch.from_numpy(dec)).logits.numpy()
    got = ours.decoder_logits(ids, mask, decoder_input_ids=dec, stepwise=stepwise)
    assert got.dtype == np.float32 and got.shape == (4, 7, VOCAB)
    assert_close(got, want, what="decoder logits")


def test_decoder_logits_from_inputs_embeds_and_encoder_states(pair, rng):
    ref, ours, _ = pair
    _, mask = _batch(rng, B=2, T=16)
    emb = rng.standard_normal((2, 16, ref.config.d_model), dtype=np.float32)
    dec = rng.integers(0, VOCAB, size=(2, 5))
    with torch.no_grad():
        want = ref(inputs_embeds=torch.from_numpy(emb), attention_mask=torch.from_numpy(mask),
                   decoder_input_ids=torch.from_numpy(dec)).logits.numpy()
    assert_close(ours.decoder_logits(inputs_embeds=emb, attention_mask=mask, decoder_input_ids=dec), want,
                 what="decoder logits (inputs_embeds)")
    enc = ours.encode(inputs_embeds=emb, attention_mask=mask)
    assert_close(ours.decoder_logits(encoder_hidden_states=enc, attention_mask=mask, decoder_input_ids=dec), want,
                 what="decoder logits (encoder_hidden_states)")


def test_step_path_with_beam_reordering_matches_teacher_forcing(pair, rng):
    """Drive start/step as a beam search does (rows reordered by parents each step) and compare
    every step's logits with transformers run on each row's reconstructed prefix."""
    ref, ours, _ = pair
    B, beams, S = 2, 3, 6
    ids, mask = _batch(rng, B=B, T=8)
    R = B * beams
    tokens = rng.integers(0, VOCAB, size=(S, R))
    tokens[0] = 0
    parents = np.zeros((S, R), np.int64)
    for s in range(1, S):
        for r in range(R):
            e = r // beams
            parents[s, r] = e * beams + rng.integers(0, beams)
    got = ours._core.decode_steps(tokens, parents, beams, input_ids=ids, attention_mask=mask)
    assert got.shape == (S, R, VOCAB)
    prefixes = [[int(tokens[0, r])] for r in range(R)]
    src_ids = torch.from_numpy(np.repeat(ids, beams, axis=0))
    src_mask = torch.from_numpy(np.repeat(mask, beams, axis=0))
    for s in range(S):
        if s:
            prefixes = [prefixes[parents[s, r]] + [int(tokens[s, r])] for r in range(R)]
        with torch.no_grad():
            want = ref(input_ids=src_ids, attention_mask=src_mask,
                       decoder_input_ids=torch.tensor(prefixes)).logits[:, -1].numpy()
        assert_close(got[s], want, what=f"step {s} logits")


def test_step_parents_must_stay_within_their_example(base):
    _, ours, _ = base
    ids = np.full((2, 4), 5)
    tokens = np.zeros((2, 4), np.int64)
    parents = np.array([[0, 1, 2, 3], [2, 1, 2, 3]])  # row 0 (example 0) continuing row 2 (example 1)
    with pytest.raises(ValueError, match="parents"):
        ours._core.decode_steps(tokens, parents, 2, input_ids=ids)


def test_torch_tensors_and_int32_ids_accepted(base, rng):
    ref, ours, _ = base
    ids, mask = _batch(rng)
    want = ours.encode(ids, mask)
    assert_close(ours.encode(torch.from_numpy(ids), torch.from_numpy(mask).bool()), want, atol=0)
    assert_close(ours.encode(ids.astype(np.int32), mask.astype(np.int32)), want, atol=0)


# ---- loading ----

def test_encoder_only_checkpoint(tmp_path, base, rng):
    ref, _, _ = base
    enc_model = T5EncoderModel(ref.config).eval()
    enc_model.load_state_dict(ref.state_dict(), strict=False)
    enc_model.save_pretrained(tmp_path, safe_serialization=True)
    ours = T5Model.from_pretrained(tmp_path)
    assert ours.encoder_only
    ids, mask = _batch(rng)
    with torch.no_grad():
        want = enc_model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).last_hidden_state
    assert_close(ours.encode(ids, mask), want.numpy(), what="encoder-only states")
    with pytest.raises(ValueError, match="encoder-only"):
        ours.decoder_logits(ids, decoder_input_ids=ids[:, :2])


def test_prefixed_checkpoint_with_only_a_tied_embedding_copy(tmp_path, base, rng):
    """vec2text checkpoints nest the model under "encoder_decoder."; a save may keep only
    encoder.embed_tokens.weight of the tied embeddings."""
    ref, ours, path = base
    tensors = load_file(path / "model.safetensors")
    tensors["encoder.embed_tokens.weight"] = tensors.pop("shared.weight")
    save_file({f"encoder_decoder.{k}": v for k, v in tensors.items()}, tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text((path / "config.json").read_text())
    nested = T5Model.from_pretrained(tmp_path, prefix="encoder_decoder.")
    ids, mask = _batch(rng)
    dec = ids[:, :4]
    assert_close(nested.decoder_logits(ids, mask, decoder_input_ids=dec),
                 ours.decoder_logits(ids, mask, decoder_input_ids=dec), atol=0)


def test_pickle_reloads_from_the_files(base, rng):
    _, ours, _ = base
    again = pickle.loads(pickle.dumps(ours))
    ids, mask = _batch(rng)
    assert_close(again.encode(ids, mask), ours.encode(ids, mask), atol=0)
    assert again.config == ours.config and again.d_model == ours.d_model and again.vocab_size == VOCAB


def test_threads_share_one_model(base, rng):
    """The model is immutable and every call has its own session: concurrent calls (GIL
    released) give the serial results."""
    from concurrent.futures import ThreadPoolExecutor

    _, ours, _ = base
    batches = [_batch(rng, B=3, T=10) for _ in range(6)]
    dec = rng.integers(0, VOCAB, size=(3, 5))
    serial = [ours.decoder_logits(i, m, decoder_input_ids=dec) for i, m in batches]
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(lambda im: ours.decoder_logits(im[0], im[1], decoder_input_ids=dec), batches))
    for a, b in zip(serial, parallel):
        assert_close(b, a, atol=1e-5, what="threaded logits")


def test_exported_from_package():
    assert vec2text_c.T5Model is T5Model


# ---- bad input: one test per case ----

def test_bad_ids_dtype(base):
    _, ours, _ = base
    with pytest.raises(TypeError, match="input_ids"):
        ours.encode(np.ones((2, 3), np.float32))


def test_bad_embeds_dtype(base):
    _, ours, _ = base
    with pytest.raises(TypeError, match="inputs_embeds"):
        ours.encode(inputs_embeds=np.ones((2, 3, 32), np.int64))


def test_bad_ids_ndim(base):
    _, ours, _ = base
    with pytest.raises(ValueError, match="input_ids.*2-D"):
        ours.encode(np.ones(5, np.int64))


def test_bad_embeds_width(base):
    _, ours, _ = base
    with pytest.raises(ValueError, match="inputs_embeds.*32"):
        ours.encode(inputs_embeds=np.ones((2, 3, 31), np.float32))


def test_mismatched_mask_batch(base):
    _, ours, _ = base
    with pytest.raises(ValueError, match="attention_mask.*\\[2, 3\\]"):
        ours.encode(np.ones((2, 3), np.int64), np.ones((3, 3), np.int64))


def test_mismatched_decoder_batch(base):
    _, ours, _ = base
    with pytest.raises(ValueError, match="decoder_input_ids.*batch size 3.*input_ids batch size 2"):
        ours.decoder_logits(np.ones((2, 3), np.int64), decoder_input_ids=np.zeros((3, 2), np.int64))


def test_empty_batch(base):
    _, ours, _ = base
    with pytest.raises(ValueError, match="input_ids: empty batch"):
        ours.encode(np.zeros((0, 4), np.int64))


def test_non_contiguous_inputs_are_copied(base, rng):
    _, ours, _ = base
    ids = rng.integers(2, VOCAB, size=(3, 20))
    emb = rng.standard_normal((32, 6, 3), dtype=np.float32).transpose(2, 1, 0)  # [3, 6, 32], not C-contiguous
    assert not ids[:, ::2].flags.c_contiguous and not emb.flags.c_contiguous
    assert_close(ours.encode(ids[:, ::2]), ours.encode(np.ascontiguousarray(ids[:, ::2])), atol=0)
    assert_close(ours.encode(inputs_embeds=emb), ours.encode(inputs_embeds=np.ascontiguousarray(emb)), atol=0)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_embeds(base, bad):
    _, ours, _ = base
    emb = np.zeros((2, 3, 32), np.float32)
    emb[1, 2, 5] = bad
    with pytest.raises(ValueError, match="inputs_embeds.*(NaN|Inf)"):
        ours.encode(inputs_embeds=emb)


@pytest.mark.parametrize("bad", [-1, VOCAB, 2**40])
def test_ids_outside_vocabulary(base, bad):
    _, ours, _ = base
    ids = np.full((2, 3), 4, np.int64)
    ids[1, 2] = bad
    with pytest.raises(ValueError, match="input_ids"):
        ours.encode(ids)


def test_decoder_ids_outside_vocabulary(base):
    _, ours, _ = base
    with pytest.raises(ValueError, match="decoder_input_ids.*outside the vocabulary"):
        ours.decoder_logits(np.ones((1, 3), np.int64), decoder_input_ids=np.array([[0, VOCAB]]))


def test_sequence_longer_than_allowed(base):
    _, _, path = base
    short = T5Model.from_pretrained(path, max_length=16)
    short.encode(np.ones((1, 16), np.int64))
    with pytest.raises(ValueError, match="input_ids.*17.*maximum of 16"):
        short.encode(np.ones((1, 17), np.int64))
    with pytest.raises(ValueError, match="decoder_input_ids.*17.*maximum of 16"):
        short.decoder_logits(np.ones((1, 4), np.int64), decoder_input_ids=np.zeros((1, 17), np.int64))


def test_mask_values_must_be_binary(base):
    _, ours, _ = base
    with pytest.raises(ValueError, match="attention_mask.*0/1"):
        ours.encode(np.ones((1, 3), np.int64), np.array([[1, 2, 1]]))


def test_source_given_twice_or_not_at_all(base):
    _, ours, _ = base
    with pytest.raises(ValueError, match="exactly one"):
        ours.encode()
    with pytest.raises(ValueError, match="exactly one"):
        ours.encode(np.ones((1, 3), np.int64), inputs_embeds=np.zeros((1, 3, 32), np.float32))


def test_missing_tensor_is_named(tmp_path, base):
    _, _, path = base
    tensors = load_file(path / "model.safetensors")
    del tensors["decoder.block.1.layer.2.DenseReluDense.wo.weight"]
    save_file(tensors, tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text((path / "config.json").read_text())
    with pytest.raises(ValueError, match="decoder.block.1.layer.2.DenseReluDense.wo.weight"):
        T5Model.from_pretrained(tmp_path)


def test_untied_checkpoint_without_lm_head(tmp_path, base):
    _, _, path = base
    cfg = json.loads((path / "config.json").read_text())
    cfg["tie_word_embeddings"] = False
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    save_file(load_file(path / "model.safetensors"), tmp_path / "model.safetensors")
    with pytest.raises(ValueError, match="'lm_head.weight'"):
        T5Model.from_pretrained(tmp_path)


def test_wrong_tensor_shape_is_named(tmp_path, base):
    _, _, path = base
    tensors = load_file(path / "model.safetensors")
    tensors["encoder.block.0.layer.0.SelfAttention.q.weight"] = np.zeros((8, 32), np.float32)
    save_file(tensors, tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text((path / "config.json").read_text())
    with pytest.raises(ValueError, match="encoder.block.0.layer.0.SelfAttention.q.weight.*shape"):
        T5Model.from_pretrained(tmp_path)


def test_pytorch_bin_is_converted_once_and_matches(tmp_path, base):
    import torch
    from transformers import T5ForConditionalGeneration

    _, _, path = base
    ref = T5ForConditionalGeneration.from_pretrained(path).eval()
    (tmp_path / "config.json").write_text((path / "config.json").read_text())
    torch.save(ref.state_dict(), tmp_path / "pytorch_model.bin")
    model = T5Model.from_pretrained(tmp_path)
    assert not (tmp_path / "model.safetensors").exists()  # converted into vec2text_c's cache, not beside
    ids = np.array([[5, 6, 7, 1]], np.int64)
    with torch.no_grad():
        expect = ref.encoder(input_ids=torch.from_numpy(ids)).last_hidden_state.numpy()
    np.testing.assert_allclose(model.encode(input_ids=ids), expect, atol=1e-4)


def test_corrupt_pytorch_bin_names_the_file(tmp_path, base):
    _, _, path = base
    (tmp_path / "config.json").write_text((path / "config.json").read_text())
    (tmp_path / "pytorch_model.bin").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="pytorch_model.bin: cannot read"):
        T5Model.from_pretrained(tmp_path)


def test_bfloat16_weights_stay_close_to_transformers_fp32(base):
    import torch
    from transformers import T5ForConditionalGeneration

    _, _, path = base
    ref = T5ForConditionalGeneration.from_pretrained(path).eval()
    model = T5Model.from_pretrained(path, dtype="bfloat16")
    rng = np.random.default_rng(3)
    ids = rng.integers(2, model.vocab_size, size=(4, 9)).astype(np.int64)
    dec = rng.integers(2, model.vocab_size, size=(4, 5)).astype(np.int64)
    with torch.no_grad():
        out = ref(input_ids=torch.from_numpy(ids), decoder_input_ids=torch.from_numpy(dec))
        enc = out.encoder_last_hidden_state.numpy()
        logits = out.logits.numpy()
    got_enc = model.encode(input_ids=ids)
    got_logits = model.decoder_logits(input_ids=ids, decoder_input_ids=dec)
    # bf16 keeps 8 bits of mantissa: errors at the 1e-2 relative level, not 1e-5
    rel = lambda a, b: np.abs(a - b).max() / np.abs(b).max()
    assert rel(got_enc, enc) < 3e-2
    assert rel(got_logits, logits) < 3e-2
    assert rel(got_logits, logits) > 1e-5  # really the bf16 path


def test_unknown_dtype_is_rejected(base):
    _, _, path = base
    with pytest.raises(ValueError, match="dtype: expected 'float32' or 'bfloat16', got 'float8'"):
        T5Model.from_pretrained(path, dtype="float8")
