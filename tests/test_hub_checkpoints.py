"""vec2text checkpoints by repository id from a fake Hugging Face hub on 127.0.0.1
(tests/_fake_hub.py): the tiny reference inverter and corrector of the parity tests, saved in
each layout the published checkpoints use (single and sharded safetensors, single and sharded
.bin with index files, extra embedder tensors, the T5 tokenizer in a repository of its own as
t5-base is), downloaded by load_corrector in a fresh interpreter, invert to the same strings as
vec2text 0.0.13 on the same weights; then again offline from the cache; an interrupted download
leaves nothing a later load trusts."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from _fake_hub import FakeHub
from _v2t_fixtures import artifacts, reference_strings, targets

import vec2text_c
from vec2text_c import _core
from vec2text_c._safetensors_io import save_file

# the folder that holds the vec2text_c this test imported (the installed package in CI, the
# source tree when built in place): the child interpreter must import the same one
ROOT = Path(vec2text_c.__file__).resolve().parents[1]
KIND = "gtr"
INVERT = """
import json, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import vec2text_c
cache_dir = sys.argv[7] if len(sys.argv) > 7 else None
c = vec2text_c.load_corrector(sys.argv[2], sys.argv[3], embedder=sys.argv[4], cache_dir=cache_dir)
E = np.load(sys.argv[5])
out = {}
for spec in sys.argv[6].split(","):
    steps, beam = spec.split(":")
    steps = None if steps == "none" else int(steps)
    out[spec] = vec2text_c.invert_embeddings(E, c, num_steps=steps, sequence_beam_width=int(beam))
print(json.dumps(out))
"""


def _tensors(src: Path) -> dict:
    st = _core.SafeTensors(str(src / "model.safetensors"))
    return {k: np.array(st.get(k)) for k in st.keys()}


def _config(src: Path, dst: Path, t5_repo: str) -> None:
    dst.mkdir(parents=True)
    cfg = json.loads((src / "config.json").read_text())
    cfg["model_name_or_path"] = t5_repo
    (dst / "config.json").write_text(json.dumps(cfg))


def _shard_names(tensors, n, ext):
    names = sorted(tensors)
    parts = [names[i::n] for i in range(n)]
    return [(f"{'model' if ext == 'safetensors' else 'pytorch_model'}-{i + 1:05d}-of-{n:05d}.{ext}", p) for i, p in enumerate(parts)]


def _save(tensors: dict, dst: Path, layout: str) -> None:
    if layout == "safetensors":
        save_file(tensors, dst / "model.safetensors")
    elif layout == "bin":
        torch.save({k: torch.from_numpy(v) for k, v in tensors.items()}, dst / "pytorch_model.bin")
    else:
        ext = "safetensors" if layout == "sharded-safetensors" else "bin"
        wm = {}
        for fname, names in _shard_names(tensors, 3, ext):
            part = {k: tensors[k] for k in names}
            if ext == "safetensors":
                save_file(part, dst / fname)
            else:
                torch.save({k: torch.from_numpy(v) for k, v in part.items()}, dst / fname)
            wm.update({k: fname for k in names})
        index = "model.safetensors.index.json" if ext == "safetensors" else "pytorch_model.bin.index.json"
        (dst / index).write_text(json.dumps({"metadata": {"total_size": 0}, "weight_map": wm}))


@pytest.fixture(scope="module")
def repos(tmp_path_factory):
    art = artifacts(KIND)
    root = tmp_path_factory.mktemp("hubrepos")
    out = {}
    for base, repo in ((art.inverter_base_dir, "test/t5-inverter"), (art.corrector_base_dir, "test/t5-corrector")):
        shutil.copytree(base, root / repo)
        out[repo] = root / repo
    inv, cor = _tensors(art.inversion_dir), _tensors(art.corrector_dir)
    extra = {"embedder.encoder.block.0.layer.0.SelfAttention.q.weight": np.ones((4, 4), np.float32)}
    for name, src, tensors, t5, layout in (
            ("inv-st", art.inversion_dir, inv, "test/t5-inverter", "safetensors"),
            ("cor-st", art.corrector_dir, cor, "test/t5-corrector", "safetensors"),
            ("inv-sharded-st", art.inversion_dir, inv, "test/t5-inverter", "sharded-safetensors"),
            ("cor-sharded-bin", art.corrector_dir, cor, "test/t5-corrector", "sharded-bin"),
            ("inv-bin", art.inversion_dir, inv, "test/t5-inverter", "bin"),
            ("cor-extra", art.corrector_dir, dict(cor, **extra), "test/t5-corrector", "safetensors")):
        d = root / "test" / name
        _config(src, d, t5)
        _save(tensors, d, layout)
        out[f"test/{name}"] = d
    return out, art


def _invert(hub_url, cache, inv, cor, art, E_path, settings, offline=False, cache_dir=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_HUB_CACHE=str(cache), HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_PROGRESS_BARS="1",
               HF_ENDPOINT=hub_url, VEC2TEXT_C_CACHE=str(cache.parent / "v2tc"))
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    extra = [str(cache_dir)] if cache_dir else []
    r = subprocess.run([sys.executable, "-c", INVERT, str(ROOT), inv, cor, str(art.embedder_dir), str(E_path), settings,
                        *extra],
                       capture_output=True, text=True, env=env, cwd="/", timeout=600)
    return r


def test_every_layout_downloads_and_inverts_as_vec2text(repos, tmp_path):
    out, art = repos
    E = targets(KIND)[:8]
    np.save(tmp_path / "E.npy", E)
    settings = ["none:0", "1:0", "1:2", "3:0", "3:2"]
    with FakeHub(out) as hub:
        r = _invert(hub.url, tmp_path / "hf", "test/inv-st", "test/cor-st", art, tmp_path / "E.npy", ",".join(settings))
        assert r.returncode == 0, r.stderr[-3000:]
        got = json.loads(r.stdout.strip().splitlines()[-1])
        for spec in settings:
            steps, beam = spec.split(":")
            assert got[spec] == reference_strings(KIND, E, None if steps == "none" else int(steps), int(beam)), spec
        for inv, cor in (("test/inv-sharded-st", "test/cor-sharded-bin"), ("test/inv-bin", "test/cor-extra")):
            r = _invert(hub.url, tmp_path / "hf", inv, cor, art, tmp_path / "E.npy", "1:2")
            assert r.returncode == 0, (inv, cor, r.stderr[-3000:])
            assert json.loads(r.stdout.strip().splitlines()[-1])["1:2"] == reference_strings(KIND, E, 1, 2), (inv, cor)
        fetched = [p for m, p in hub.requests if m == "GET" and "/resolve/" in p]
        # one layout per checkpoint, the tokenizer repository's files, nothing twice
        assert not any(p.startswith("/test/inv-st/") and p.endswith(".bin") for p in fetched)
        assert any(p.startswith("/test/t5-inverter/") and p.endswith("spiece.model") for p in fetched)
        assert len(fetched) == len(set(fetched))
    # the hub is gone: offline, everything comes from the cache
    r = _invert("http://127.0.0.1:9", tmp_path / "hf", "test/inv-sharded-st", "test/cor-sharded-bin", art,
                tmp_path / "E.npy", "1:2", offline=True)
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads(r.stdout.strip().splitlines()[-1])["1:2"] == reference_strings(KIND, E, 1, 2)
    # an empty cache offline: the error names what is missing
    r = _invert("http://127.0.0.1:9", tmp_path / "empty", "test/inv-st", "test/cor-st", art, tmp_path / "E.npy",
                "1:2", offline=True)
    assert r.returncode != 0 and "MissingModelFilesError" in r.stderr and "test/inv-st" in r.stderr


def test_an_interrupted_download_is_not_trusted(repos, tmp_path):
    out, art = repos
    E = targets(KIND)[:4]
    np.save(tmp_path / "E.npy", E)
    shard = sorted(p.name for p in out["test/inv-sharded-st"].iterdir() if "-of-" in p.name)[1]
    size = (out["test/inv-sharded-st"] / shard).stat().st_size
    with FakeHub(out, cut_after={f"test/inv-sharded-st/{shard}": size // 2}) as hub:
        r = _invert(hub.url, tmp_path / "hf", "test/inv-sharded-st", "test/cor-st", art, tmp_path / "E.npy", "1:2")
        assert r.returncode != 0
    snaps = list((tmp_path / "hf").glob(f"models--test--inv-sharded-st/snapshots/*/{shard}"))
    assert not snaps, "a cut download must not appear in the snapshot"
    assert not list((tmp_path / "v2tc").glob("weights/*.safetensors"))
    with FakeHub(out) as hub:
        r = _invert(hub.url, tmp_path / "hf", "test/inv-sharded-st", "test/cor-st", art, tmp_path / "E.npy", "1:2")
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads(r.stdout.strip().splitlines()[-1])["1:2"] == reference_strings(KIND, E, 1, 2)


def test_cache_dir_is_passed_to_the_hub(repos, tmp_path):
    out, art = repos
    E = targets(KIND)[:2]
    np.save(tmp_path / "E.npy", E)
    with FakeHub(out) as hub:
        r = _invert(hub.url, tmp_path / "default", "test/inv-st", "test/cor-st", art, tmp_path / "E.npy", "1:0",
                    cache_dir=tmp_path / "mine")
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "mine" / "models--test--inv-st").is_dir() and (tmp_path / "mine" / "models--test--t5-inverter").is_dir()
    assert not (tmp_path / "default").exists()
