"""Inputs that used to crash the interpreter (issue: hardening), each with the clear exception it
gets now: T5 configs with sizes whose products overflow, or fields of the wrong JSON type."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from vec2text_c import T5Config, T5Model


@pytest.fixture(scope="module")
def tiny_t5(tmp_path_factory):
    import torch
    from transformers import T5Config as HFConfig, T5ForConditionalGeneration

    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("t5")
    T5ForConditionalGeneration(HFConfig(vocab_size=64, d_model=32, d_kv=8, num_heads=4, d_ff=64, num_layers=2,
                                        decoder_start_token_id=0)).save_pretrained(d)
    return d


@pytest.mark.parametrize("field, value, match", [
    ("num_layers", 2**61, r"num_layers must be in \[1, 1024\], got 2305843009213693952"),
    ("num_decoder_layers", 2**61, r"num_decoder_layers must be in \[1, 1024\]"),
    ("num_decoder_layers", -1, r"num_decoder_layers must be in \[1, 1024\], got -1"),
    ("d_kv", 2**62 + 64, r"d_kv must be in \[1, 4096\]"),
    ("d_model", 0, r"d_model must be in \[1, 65536\], got 0"),
    ("num_layers", "16", r"num_layers must be an integer, got '16'"),
    ("num_heads", 16.5, r"num_heads must be an integer, got 16.5"),
    ("vocab_size", True, r"vocab_size must be an integer, got True"),
    ("tie_word_embeddings", "false", r"tie_word_embeddings must be true or false, got 'false'"),
    ("layer_norm_epsilon", "1e-6", r"layer_norm_epsilon must be a number in \[0, 1\), got '1e-6'"),
    ("eos_token_id", 2**40, r"eos_token_id must be in \[0, 16777215\]"),
    ("feed_forward_proj", 3, r"feed_forward_proj 3 is not supported"),
])
def test_bad_config_fields_are_named(tiny_t5, tmp_path, field, value, match):
    cfg = json.loads((tiny_t5 / "config.json").read_text())
    cfg[field] = value
    for f in tiny_t5.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises((ValueError, NotImplementedError), match=match):
        T5Model.from_pretrained(tmp_path)


@pytest.mark.parametrize("field, value, match", [
    ("num_layers", 2**40, r"num_layers must be at most 1024"),
    ("d_kv", 2**62 + 64, r"d_kv must be at most 4096"),
    ("num_heads", 4096, r"num_heads \* d_kv must be at most 262144, got 4096 \* 512"),
])
def test_the_core_bounds_configs_built_by_hand(tiny_t5, field, value, match):
    cfg = T5Config.from_dict(json.loads((tiny_t5 / "config.json").read_text()))
    if field == "num_heads":
        cfg = replace(cfg, d_kv=512)
    with pytest.raises(ValueError, match=match):
        T5Model(tiny_t5 / "model.safetensors", replace(cfg, **{field: value}))


@pytest.mark.parametrize("beams", [33, 40, 600])
def test_many_beams_and_few_steps(tiny_t5, beams):
    """The beam reorder buffer held the saved cache rows but not the [beams, beams] ancestry
    table built in it first: a heap overflow from 33 beams at max_length 3 on this model."""
    import numpy as np
    import torch
    from transformers import T5ForConditionalGeneration

    ours = T5Model.from_pretrained(tiny_t5)
    ids = np.array([[5, 6, 7, 1], [9, 10, 11, 1]], np.int64)
    got = ours.generate(input_ids=ids, max_length=3, num_beams=beams, num_return_sequences=2)
    assert got.shape[0] == 4 and got.shape[1] <= 3
    if beams <= 40:  # transformers as the reference (600 beams of a 64-token vocabulary is its own odd case)
        ref = T5ForConditionalGeneration.from_pretrained(tiny_t5).eval()
        with torch.no_grad():
            want = ref.generate(input_ids=torch.from_numpy(ids), max_length=3, num_beams=beams, num_return_sequences=2,
                                do_sample=False, early_stopping=False).numpy()
        assert got.tolist() == want.tolist()


ALIGNERS = {
    "Ridge": lambda a: a.Ridge(),
    "Procrustes": lambda a: a.Procrustes(),
    "MLP": lambda a: a.MLP(epochs=1, validation=0),
    "MiniVec2Vec": lambda a: a.MiniVec2Vec(),
    "Vec2Vec": lambda a: a.Vec2Vec(epochs=1),
}


@pytest.mark.parametrize("name", sorted(ALIGNERS))
@pytest.mark.parametrize("which", ["X", "Y"])
def test_aligners_refuse_zero_width_inputs(name, which):
    """Ridge.fit on zero columns divided by zero in C (SIGFPE); every aligner now says what is wrong."""
    import numpy as np

    from vec2text_c import align

    n = 400
    X = np.zeros((n, 0 if which == "X" else 3), np.float32)
    Y = np.zeros((n, 0 if which == "Y" else 3), np.float32)
    with pytest.raises(ValueError, match=rf"{which}: expected at least one column \(an embedding dimension\), got shape \({n}, 0\)"):
        ALIGNERS[name](align).fit(X, Y)


@pytest.mark.parametrize("name", sorted(ALIGNERS))
def test_aligners_refuse_one_row(name):
    import numpy as np

    from vec2text_c import align

    with pytest.raises(ValueError, match=r"too few rows|need at least"):
        ALIGNERS[name](align).fit(np.ones((1, 3), np.float32), np.ones((1, 3), np.float32))


def test_a_second_init_is_refused_and_the_model_keeps_working(tiny_t5):
    """Calling a model object's __init__ again freed memory still in use (use-after-free)."""
    import numpy as np

    from vec2text_c import _core, load_embedder
    from vec2text_c.embedders import _packaged_minilm

    t5 = T5Model.from_pretrained(tiny_t5)
    ids = np.array([[5, 6, 7, 1]], np.int64)
    before = t5.encode(input_ids=ids)
    core = t5._core
    with pytest.raises(RuntimeError, match="T5: already initialised; create a new object"):
        core.__init__(str(tiny_t5 / "model.safetensors"))
    np.testing.assert_array_equal(t5.encode(input_ids=ids), before)
    st = _core.SafeTensors(str(tiny_t5 / "model.safetensors"))
    with pytest.raises(RuntimeError, match="SafeTensors: already initialised"):
        st.__init__(str(tiny_t5 / "model.safetensors"))
    emb = load_embedder("all-MiniLM-L6-v2")
    with pytest.raises(RuntimeError, match="BertModel: already initialised"):
        emb.encoder._core.__init__(str(_packaged_minilm() / "model.safetensors"))
    with pytest.raises(RuntimeError, match="WordPieceTokenizer: already initialised"):
        emb.tokenizer._wp.__init__(str(_packaged_minilm() / "vocab.txt"))
    assert emb.encode(["a test"]).shape == (1, 384)


def test_a_second_init_of_the_inverter_is_refused():
    import vec2text_c

    c = vec2text_c.load_pretrained_corrector()
    with pytest.raises(RuntimeError, match="Inverter: already initialised"):
        c.inverter.__init__(str(c.inverter_checkpoint.weights), c.inverter_t5._core, c.inverter.num_repeat_tokens)
    assert len(vec2text_c.invert_strings(["a test sentence"], c)) == 1


@pytest.mark.parametrize("pad", [0, 1])
def test_long_utf8_messages_are_cut_between_characters(pad):
    """A message over 1,023 bytes was cut inside a UTF-8 character: a UnicodeDecodeError
    replaced the real error."""
    from vec2text_c import _core

    path = "/nonexistent/" + "x" * pad + "\u00e9" * 600 + ".safetensors"
    with pytest.raises(FileNotFoundError) as e:
        _core.SafeTensors(path)
    msg = str(e.value)
    assert "/nonexistent/" in msg and msg.rstrip().endswith("\u00e9")


def test_a_non_utf8_path_is_named_with_escapes():
    from vec2text_c import _core

    with pytest.raises(FileNotFoundError, match=r"/nonexistent/caf\\xe9\.safetensors"):
        _core.SafeTensors(b"/nonexistent/caf\xe9.safetensors")


def test_a_fifo_for_weights_is_refused_at_once(tmp_path):
    """align.load on a folder whose aligner.safetensors is a FIFO blocked forever."""
    import os
    import subprocess
    import sys

    import numpy as np

    from vec2text_c import align

    src = tmp_path / "ridge"
    align.Ridge().fit(np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32),
                      np.random.default_rng(1).normal(size=(20, 3)).astype(np.float32)).save(src)
    (src / "aligner.safetensors").unlink()
    os.mkfifo(src / "aligner.safetensors")
    code = f"from vec2text_c import align\ntry:\n    align.load({str(src)!r})\nexcept Exception as e:\n    print(type(e).__name__, e)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd="/")
    assert "not a regular file" in r.stdout, (r.stdout, r.stderr)


def _st_bytes(header: dict, data: bytes, pad: int = 0, hlen_delta: int = 0) -> bytes:
    import struct

    text = json.dumps(header).encode() + b" " * pad
    return struct.pack("<Q", len(text) + hlen_delta) + text + data


@pytest.mark.parametrize("case", ["header one byte short", "gap", "trailing bytes", "overlap"])
def test_damaged_safetensors_layouts_are_refused_as_the_reference_does(tmp_path, case):
    """A header length one byte short, or gaps / trailing bytes in the data section, were
    accepted and every tensor read shifted; the reference `safetensors` rejects them."""
    import numpy as np
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    from vec2text_c import _core

    a, b = np.arange(4, dtype=np.float32), np.arange(4, 8, dtype=np.float32)
    ok = {"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
          "b": {"dtype": "F32", "shape": [4], "data_offsets": [16, 32]}}
    good = tmp_path / "good.safetensors"
    good.write_bytes(_st_bytes(ok, a.tobytes() + b.tobytes(), pad=1))
    np.testing.assert_array_equal(_core.SafeTensors(str(good)).get("b"), b)
    if case == "header one byte short":
        raw, match = _st_bytes(ok, a.tobytes() + b.tobytes(), pad=1, hlen_delta=-1), "1 bytes after the last tensor"
    elif case == "gap":
        hdr = {"a": ok["a"], "b": {"dtype": "F32", "shape": [4], "data_offsets": [20, 36]}}
        raw, match = _st_bytes(hdr, a.tobytes() + b"\0" * 4 + b.tobytes()), "4 unused bytes before tensor 'b'"
    elif case == "trailing bytes":
        raw, match = _st_bytes(ok, a.tobytes() + b.tobytes() + b"\0\0\0"), "3 bytes after the last tensor"
    else:
        hdr = {"a": ok["a"], "b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}}
        raw, match = _st_bytes(hdr, a.tobytes() + b.tobytes()[:8]), "overlaps the data of 'a'"
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(raw)
    with pytest.raises(ValueError, match=match):
        _core.SafeTensors(str(bad))
    with pytest.raises((SafetensorError, Exception)):
        load_file(str(bad))


def test_a_weights_file_truncated_while_open_is_an_error_not_sigbus(tmp_path):
    """A SafeTensors view used to map the file: truncating it under the view gave SIGBUS on the
    next read. Reads now go through the open file and a short one names the file."""
    import numpy as np

    from vec2text_c import _core
    from vec2text_c._safetensors_io import save_file

    p = tmp_path / "w.safetensors"
    big = np.arange(1 << 16, dtype=np.float32)
    save_file({"a": big, "b": big.astype(np.float16), "c": np.arange(8, dtype=np.int64)}, str(p))
    view = _core.SafeTensors(str(p))
    np.testing.assert_array_equal(view.get("a"), big)
    with open(p, "r+b") as f:
        f.truncate(64)
    for name in ("a", "b", "c"):
        with pytest.raises(FileNotFoundError, match=r"w.safetensors: the file ends before the bytes of '?" + name):
            view.get(name)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nan_or_inf_weights_are_refused_at_load(tiny_t5, tmp_path, bad):
    import shutil

    import numpy as np
    from safetensors.numpy import load_file, save_file

    d = tmp_path / "t5"
    shutil.copytree(tiny_t5, d)
    w = load_file(str(d / "model.safetensors"))
    name = "decoder.block.1.layer.2.DenseReluDense.wo.weight"
    w[name][3, 5] = bad
    save_file(w, str(d / "model.safetensors"), metadata={"format": "pt"})
    kind = "NaN" if np.isnan(bad) else "Inf"
    with pytest.raises(ValueError, match=rf"tensor '{name}' holds {kind} at element {3 * w[name].shape[1] + 5}"):
        T5Model.from_pretrained(d)


def test_huge_finite_embeddings_are_named(minilm_pair):
    import numpy as np

    import vec2text_c

    c = vec2text_c.load_corrector(*minilm_pair)
    E = np.zeros((2, c.dim), dtype=np.float32)
    E[1, 7] = 3e38
    with pytest.raises(ValueError, match=r"embeddings: expected the values of an embedding \(\|x\| <= 1e\+06\), "
                                         r"found 3e\+38 at \[1, 7\]"):
        vec2text_c.invert_embeddings(E, c)


def test_an_explicit_batch_size_past_the_memory_budget_warns(minilm_pair):
    import warnings

    import numpy as np

    import vec2text_c
    from vec2text_c import _core

    c = vec2text_c.load_corrector(*minilm_pair)
    E = c.embed(["a man is playing a guitar", "two dogs run"] * 8, 32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        want = vec2text_c.invert_embeddings(E, c, num_steps=1, sequence_beam_width=2, batch_size=4)
    # the same call with a budget of a few bytes: obeyed, with a warning that says so
    args = (c.inverter, c.corrector, E, c.embed_ids)
    kw = dict(num_steps=1, sequence_beam_width=2, max_length=128, hypothesis_max_length=c.max_seq_length, batch_size=4)
    with pytest.warns(RuntimeWarning, match=r"batch_size=4 needs about .* GiB of decoder state per batch, above the "
                                            r"0\.0 GiB budget that batch_size=None keeps to"):
        ids, lengths, _ = _core.invert(*args, memory_budget=1000, **kw)
    assert [c.tokenizer.decode(r[:n], skip_special_tokens=True) for r, n in zip(ids.tolist(), lengths.tolist())] == want
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _core.invert(*args, memory_budget=1000, **dict(kw, batch_size=0))  # automatic: no warning
    np.testing.assert_array_equal(ids, _core.invert(*args, **kw)[0])
