"""The safetensors reader validates everything before use; one test per malformed-file case."""
import json
import struct

import numpy as np
import pytest

from vec2text_c import _core
from vec2text_c._safetensors_io import save_file


def _write(path, header, data=b"", header_len=None, pad=True):
    text = json.dumps(header).encode()
    if pad:
        text += b" " * (-len(text) % 8)
    n = len(text) if header_len is None else header_len
    path.write_bytes(struct.pack("<Q", n) + text + data)
    return str(path)


def test_roundtrip_matches_numpy(tmp_path, rng):
    a = rng.standard_normal((3, 5), dtype=np.float32)
    b = rng.standard_normal(7).astype(np.float16)
    c = np.arange(6, dtype=np.int64).reshape(2, 3)
    p = tmp_path / "m.safetensors"
    save_file({"a": a, "b": b, "c": c}, p, metadata={"k": "v"})
    st = _core.SafeTensors(str(p))
    assert st.keys() == ["a", "b", "c"]
    np.testing.assert_array_equal(st.get("a"), a)
    np.testing.assert_array_equal(st.get("b"), b.astype(np.float32))
    np.testing.assert_array_equal(st.get("c"), c)
    assert st.info("a")[:2] == ("F32", (3, 5))


def test_bf16_is_converted_like_torch(tmp_path):
    import torch
    from safetensors.torch import save_file as torch_save

    t = torch.randn(4, 6).to(torch.bfloat16)
    p = tmp_path / "bf16.safetensors"
    torch_save({"w": t}, str(p))
    st = _core.SafeTensors(str(p))
    assert st.info("w")[0] == "BF16"
    np.testing.assert_array_equal(st.get("w"), t.float().numpy())


def test_reads_a_transformers_checkpoint(tmp_path):
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(0)
    m = T5ForConditionalGeneration(T5Config(vocab_size=40, d_model=16, d_kv=4, d_ff=32, num_layers=1, num_heads=2))
    m.save_pretrained(tmp_path, safe_serialization=True)
    st = _core.SafeTensors(str(tmp_path / "model.safetensors"))
    sd = m.state_dict()
    for name in st.keys():
        np.testing.assert_array_equal(st.get(name), sd[name].numpy())


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.safetensors"):
        _core.SafeTensors(str(tmp_path / "nothing.safetensors"))


def test_file_shorter_than_length_prefix(tmp_path):
    p = tmp_path / "short.safetensors"
    p.write_bytes(b"\x01\x02\x03")
    with pytest.raises(ValueError, match="too short"):
        _core.SafeTensors(str(p))


def test_truncated_header(tmp_path):
    # the length prefix is honest but the JSON text stops half way
    p = tmp_path / "trunc.safetensors"
    text = b'{"a": {"dtype": "F32", "shape": [2], "data_of'
    p.write_bytes(struct.pack("<Q", len(text)) + text)
    with pytest.raises(ValueError, match="malformed JSON header.*byte"):
        _core.SafeTensors(str(p))


def test_header_length_past_end(tmp_path):
    p = _write(tmp_path / "hl.safetensors", {"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}},
               data=b"\0" * 4, header_len=10_000)
    with pytest.raises(ValueError, match="header length 10000.*past the end"):
        _core.SafeTensors(p)


def test_malformed_json(tmp_path):
    p = tmp_path / "bad.safetensors"
    text = b'{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},,}    '
    p.write_bytes(struct.pack("<Q", len(text)) + text + b"\0" * 4)
    with pytest.raises(ValueError, match="malformed JSON header"):
        _core.SafeTensors(str(p))


def test_offsets_past_end(tmp_path):
    p = _write(tmp_path / "off.safetensors", {"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}},
               data=b"\0" * 8)
    with pytest.raises(ValueError, match="'a'.*past the end of the data section"):
        _core.SafeTensors(p)


def test_overlapping_ranges(tmp_path):
    hdr = {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
           "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}
    p = _write(tmp_path / "ov.safetensors", hdr, data=b"\0" * 12)
    with pytest.raises(ValueError, match="overlapping"):
        _core.SafeTensors(p)


def test_unknown_dtype(tmp_path):
    p = _write(tmp_path / "dt.safetensors", {"a": {"dtype": "Q4", "shape": [2], "data_offsets": [0, 1]}},
               data=b"\0")
    with pytest.raises(ValueError, match="unknown dtype 'Q4'"):
        _core.SafeTensors(p)


def test_shape_size_mismatch(tmp_path):
    p = _write(tmp_path / "sz.safetensors", {"a": {"dtype": "F32", "shape": [3, 2], "data_offsets": [0, 16]}},
               data=b"\0" * 16)
    with pytest.raises(ValueError, match=r"'a' with shape \[3, 2\] and dtype F32 needs 24 bytes but data_offsets give 16"):
        _core.SafeTensors(p)


def test_begin_after_end(tmp_path):
    p = _write(tmp_path / "be.safetensors", {"a": {"dtype": "F32", "shape": [0], "data_offsets": [8, 4]}},
               data=b"\0" * 8)
    with pytest.raises(ValueError, match="begin after end"):
        _core.SafeTensors(p)


def test_duplicate_names(tmp_path):
    p = tmp_path / "dup.safetensors"
    text = (b'{"a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}, '
            b'"a": {"dtype": "U8", "shape": [1], "data_offsets": [1, 2]}}')
    p.write_bytes(struct.pack("<Q", len(text)) + text + b"\0\0")
    with pytest.raises(ValueError, match="appears twice"):
        _core.SafeTensors(str(p))


def test_entry_missing_field(tmp_path):
    p = _write(tmp_path / "mf.safetensors", {"a": {"dtype": "F32", "shape": [1]}}, data=b"\0" * 4)
    with pytest.raises(ValueError, match="lacks 'data_offsets'"):
        _core.SafeTensors(p)


def test_unknown_tensor_name(tmp_path):
    p = tmp_path / "m.safetensors"
    save_file({"a": np.zeros(2, np.float32)}, p)
    st = _core.SafeTensors(str(p))
    with pytest.raises(KeyError, match="no tensor named 'zz'"):
        st.get("zz")


def test_convert_pytorch_bin_once_into_our_cache(tmp_path, monkeypatch):
    import torch

    from vec2text_c.weights import weights_file

    monkeypatch.setenv("VEC2TEXT_C_CACHE", str(tmp_path / "cache"))
    src = tmp_path / "model"
    src.mkdir()
    sd = {"w": torch.randn(3, 4), "b": torch.randn(4).to(torch.bfloat16)}
    torch.save(sd, src / "pytorch_model.bin")
    out = weights_file(src)
    assert out.parent == tmp_path / "cache" / "weights" and sorted(p.name for p in src.iterdir()) == ["pytorch_model.bin"]
    st = _core.SafeTensors(str(out))
    np.testing.assert_array_equal(st.get("w"), sd["w"].numpy())
    np.testing.assert_array_equal(st.get("b"), sd["b"].float().numpy())
    mtime = out.stat().st_mtime_ns
    assert weights_file(src) == out and out.stat().st_mtime_ns == mtime  # converted once, reused after

# ---- int8 rows: W (I8) and W.int8_scale (one float per row), W = q * scale[row] ----

def test_int8_rows_read_back_as_q_times_scale(tmp_path, rng):
    from vec2text_c._safetensors_io import Int8Rows

    a = rng.standard_normal((5, 7)).astype(np.float32)
    a[2] = 0.0  # an all-zero row: scale 0, values 0
    b = rng.standard_normal((3, 2, 4)).astype(np.float32) * 1e-3
    qa, qb = Int8Rows(a), Int8Rows(b)
    p = tmp_path / "q.safetensors"
    save_file({"a": qa, "b": qb, "c": a}, p)
    st = _core.SafeTensors(str(p))
    assert st.keys() == ["a", "a.int8_scale", "b", "b.int8_scale", "c"]
    assert st.info("a")[:2] == ("I8", (5, 7)) and st.info("a.int8_scale")[:2] == ("F32", (5,))
    np.testing.assert_array_equal(st.get("a"), qa.q)  # get: as stored
    # weight: as the loaders read it, q * scale[row] computed in float32 (hand-computed here)
    np.testing.assert_array_equal(st.weight("a"), qa.q.astype(np.float32) * qa.scale[:, None])
    np.testing.assert_array_equal(st.weight("b"), qb.q.astype(np.float32) * qb.scale[:, None, None])
    np.testing.assert_array_equal(st.weight("c"), a)
    # rounding to nearest: within half a step of each row's own scale
    step = np.abs(a).max(axis=1) / 127
    assert (np.abs(st.weight("a") - a) <= step[:, None] / 2 + 1e-7).all()
    assert not st.weight("a")[2].any() and qa.scale[2] == 0
    assert np.abs(qa.q).max() == 127


def test_merge_int8_rows_for_numpy_and_torch_state_dicts(rng):
    import torch

    from vec2text_c._safetensors_io import Int8Rows, merge_int8_rows

    a = rng.standard_normal((4, 6)).astype(np.float32)
    q = Int8Rows(a)
    want = q.q.astype(np.float32) * q.scale[:, None]
    got = merge_int8_rows({"w": q.q, "w.int8_scale": q.scale, "v": a[0]})
    assert sorted(got) == ["v", "w"]
    np.testing.assert_array_equal(got["w"], want)
    tgot = merge_int8_rows({"w": torch.from_numpy(q.q), "w.int8_scale": torch.from_numpy(q.scale)})
    np.testing.assert_array_equal(tgot["w"].numpy(), want)
    with pytest.raises(ValueError, match="'x.int8_scale' has no I8 tensor 'x'"):
        merge_int8_rows({"x.int8_scale": q.scale})
    with pytest.raises(ValueError, match="finite array"):
        Int8Rows(np.array([[1.0, np.nan]], np.float32))


def _int8_file(tmp_path, scale, q=None):
    q = np.arange(-6, 6, dtype=np.int8).reshape(3, 4) if q is None else q
    tensors = {"w": q}
    if scale is not None:
        tensors["w.int8_scale"] = scale
    p = tmp_path / "bad.safetensors"
    save_file(tensors, p)
    return _core.SafeTensors(str(p))


@pytest.mark.parametrize("scale, match", [
    (None, r"'w' is I8 but the file has no row scale 'w.int8_scale'"),
    (np.ones(3, np.int8), r"row scale 'w.int8_scale' is I8; a floating dtype"),
    (np.ones(4, np.float32), r"'w.int8_scale' has shape \[4\] but .*needs \[3\]"),
    (np.ones((3, 1), np.float32), r"'w.int8_scale' has shape \[3, 1\]"),
    (np.array([1.0, np.inf, 1.0], np.float32), r"w.int8_scale.*(finite|inf)"),
])
def test_int8_rows_with_a_bad_scale_are_refused_by_name(tmp_path, scale, match):
    st = _int8_file(tmp_path, scale)
    with pytest.raises(ValueError, match=match):
        st.weight("w")


def test_int8_scalar_and_other_integer_weights_are_refused(tmp_path):
    p = tmp_path / "s.safetensors"
    save_file({"s": np.array(3, np.int8), "s.int8_scale": np.ones(1, np.float32), "i": np.ones(2, np.int32)}, p)
    st = _core.SafeTensors(str(p))
    with pytest.raises(ValueError, match="'s' is an I8 scalar"):
        st.weight("s")
    with pytest.raises(ValueError, match="'i' has dtype I32; a floating dtype .* or I8 with a '.int8_scale' row scale"):
        st.weight("i")
    with pytest.raises(ValueError, match="'w' is stored as int8 rows, and 'w.int8_scale' is taken"):
        from vec2text_c._safetensors_io import Int8Rows
        save_file({"w": Int8Rows(np.ones((2, 2))), "w.int8_scale": np.ones(2, np.float32)}, tmp_path / "x.safetensors")
