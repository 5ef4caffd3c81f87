"""vec2text_c.weights: every layout a checkpoint's weights come in (single and sharded
safetensors, single and sharded PyTorch .bin with their index files, extra tensors) gives the
same model; shards are merged and pickles converted once, into vec2text_c's cache, atomically;
broken layouts and a .bin without torch fail with errors that name the file."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import vec2text_c
from vec2text_c import T5Model
from vec2text_c.weights import weights_file

# the folder that holds the vec2text_c this test imported (the installed package in CI, the
# source tree when built in place): the child interpreter must import the same one
ROOT = Path(vec2text_c.__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(0)
    cfg = T5Config(vocab_size=64, d_model=32, d_kv=8, num_heads=4, d_ff=64, num_layers=2, decoder_start_token_id=0)
    model = T5ForConditionalGeneration(cfg).eval()
    root = tmp_path_factory.mktemp("layouts")
    layouts = {}
    for name, kw in (("single_st", dict(safe_serialization=True)),
                     ("sharded_st", dict(safe_serialization=True, max_shard_size="20KB")),
                     ("single_bin", dict(safe_serialization=False)),
                     ("sharded_bin", dict(safe_serialization=False, max_shard_size="20KB"))):
        model.save_pretrained(root / name, **kw)
        layouts[name] = root / name
    ids = np.array([[5, 6, 7, 1], [9, 10, 1, 0]], np.int64)
    with torch.no_grad():
        want = model.encoder(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy((ids != 0).astype(np.int64))).last_hidden_state.numpy()
    return layouts, ids, want


def test_every_layout_gives_the_same_model(tiny):
    layouts, ids, want = tiny
    assert len(list(layouts["sharded_st"].glob("model-*-of-*.safetensors"))) > 2
    assert len(list(layouts["sharded_bin"].glob("pytorch_model-*-of-*.bin"))) > 2
    for name, d in layouts.items():
        before = sorted(p.name for p in d.iterdir())
        got = T5Model.from_pretrained(d).encode(input_ids=ids, attention_mask=(ids != 0).astype(np.int64))
        np.testing.assert_allclose(got, want, atol=1e-5, err_msg=name)
        w = weights_file(d)
        if name == "single_st":
            assert w == d / "model.safetensors"
        else:
            assert w.parent == Path(os.environ["VEC2TEXT_C_CACHE"]) / "weights"
            assert sorted(p.name for p in d.iterdir()) == before  # nothing written beside the source files
            mtime = w.stat().st_mtime_ns
            assert weights_file(d) == w and w.stat().st_mtime_ns == mtime  # once


def test_extra_tensors_are_ignored_and_missing_ones_named(tiny, tmp_path):
    from vec2text_c._safetensors_io import save_file
    from vec2text_c import _core

    layouts, ids, want = tiny
    st = _core.SafeTensors(str(layouts["single_st"] / "model.safetensors"))
    tensors = {k: np.array(st.get(k)) for k in st.keys()}
    d = tmp_path / "extra"
    d.mkdir()
    (d / "config.json").write_text((layouts["single_st"] / "config.json").read_text())
    save_file(dict(tensors, **{"embedder.encoder.block.0.weight": np.ones((3, 3), np.float32)}), d / "model.safetensors")
    got = T5Model.from_pretrained(d).encode(input_ids=ids, attention_mask=(ids != 0).astype(np.int64))
    np.testing.assert_allclose(got, want, atol=1e-5)
    missing = dict(tensors)
    del missing["encoder.block.1.layer.1.DenseReluDense.wo.weight"]
    save_file(missing, d / "model.safetensors")
    with pytest.raises(Exception, match="encoder.block.1.layer.1.DenseReluDense.wo.weight"):
        T5Model.from_pretrained(d)


def _copy(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


@pytest.mark.parametrize("layout, index", [("sharded_st", "model.safetensors.index.json"),
                                           ("sharded_bin", "pytorch_model.bin.index.json")])
def test_broken_indexes_name_the_problem(tiny, tmp_path, layout, index):
    layouts, _, _ = tiny
    d = _copy(layouts[layout], tmp_path / "missing")
    shard = sorted(p for p in d.iterdir() if "-of-" in p.name)[1]
    shard.unlink()
    with pytest.raises(FileNotFoundError, match=f"{index}: names the shard {shard.name}, which is not in"):
        weights_file(d)
    d = _copy(layouts[layout], tmp_path / "disagree")
    data = json.loads((d / index).read_text())
    name = sorted(data["weight_map"])[0]
    shards = sorted(set(data["weight_map"].values()))
    data["weight_map"][name] = next(s for s in shards if s != data["weight_map"][name])
    (d / index).write_text(json.dumps(data))
    with pytest.raises(ValueError, match=f"names tensor {name} in .*, but it is in"):
        weights_file(d)
    d = _copy(layouts[layout], tmp_path / "garbled")
    (d / index).write_text('{"metadata": {}}')
    with pytest.raises(ValueError, match='expected a JSON object with a non-empty "weight_map"'):
        weights_file(d)
    d = _copy(layouts[layout], tmp_path / "escape")
    data = json.loads((d / index).read_text())
    data["weight_map"][name] = "../elsewhere.bin"
    (d / index).write_text(json.dumps(data))
    with pytest.raises(ValueError, match="is not a file name in the same folder"):
        weights_file(d)


def test_an_interrupted_conversion_is_not_trusted(tiny, tmp_path, monkeypatch):
    import vec2text_c.weights as wmod

    layouts, ids, want = tiny
    monkeypatch.setenv("VEC2TEXT_C_CACHE", str(tmp_path / "cache"))
    d = _copy(layouts["sharded_st"], tmp_path / "m")
    real = wmod._merge_safetensors

    def interrupted(index, out):
        with open(out.with_name(out.name + ".999.tmp"), "wb") as f:
            f.write(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(wmod, "_merge_safetensors", interrupted)
    with pytest.raises(KeyboardInterrupt):
        weights_file(d)
    assert not list((tmp_path / "cache" / "weights").glob("*.safetensors"))
    monkeypatch.setattr(wmod, "_merge_safetensors", real)
    got = T5Model.from_pretrained(d).encode(input_ids=ids, attention_mask=(ids != 0).astype(np.int64))
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_a_bin_without_torch_says_how_to_get_it(tiny, tmp_path):
    layouts, _, _ = tiny
    code = ("import sys; sys.modules['torch'] = None; sys.path.insert(0, %r)\n"
            "from vec2text_c.weights import weights_file\n"
            "try:\n    weights_file(%r, repo='jxm/gtr__nq__32')\nexcept ImportError as e:\n    print(e)\n") % (
        str(ROOT), str(layouts["single_bin"]))
    env = dict(os.environ, VEC2TEXT_C_CACHE=str(tmp_path / "c"))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd="/", timeout=120)
    assert r.returncode == 0, r.stderr
    assert "(jxm/gtr__nq__32) holds PyTorch pickle weights (.bin), which only torch can read: install it" in r.stdout
