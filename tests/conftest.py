"""Shared fixtures: paths to the real corpora and the packaged all-MiniLM-L6-v2."""
from __future__ import annotations

import os
from pathlib import Path

# oneDNN's OpenMP threads spin while waiting; on a shared, oversubscribed machine that makes
# many small matmuls (k-means, training steps) up to 10x slower. Sleeping waiters fix it; the
# variable must be set before libgomp loads (it is read once at load time).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import tempfile  # noqa: E402

import pytest  # noqa: E402

# converted and merged weights go to a cache of the test run's own, not the user's ~/.cache
os.environ["VEC2TEXT_C_CACHE"] = tempfile.mkdtemp(prefix="vec2text_c_cache_")
# nothing in the tests reaches the internet: repository ids resolve from the local cache only
# (the fake-hub tests start their own server and set HF_ENDPOINT in a subprocess)
os.environ["HF_HUB_OFFLINE"] = "1"

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("V2T_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        raise FileNotFoundError(
            f"the real corpora are expected at {SHARED_DATA} (set V2T_SHARED_DATA to their folder)"
        )
    return SHARED_DATA


@pytest.fixture
def rng():
    import numpy as np

    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def minilm_pair(tmp_path_factory, shared_data):
    """A tiny inverter + corrector for all-MiniLM-L6-v2, trained in seconds with the shipped
    recipe's code on SICK sentences and exported fp32: for tests of correction rounds (the
    shipped model may be an inverter alone). Returns (inverter_dir, corrector_dir)."""
    from vec2text_c.train.pipeline import ModelShape, export, make_hypotheses, prepare, train_corrector, train_inverter
    from vec2text_c.train.trainer import TrainSettings

    root = tmp_path_factory.mktemp("minilm_pair")
    lines = []
    for line in (shared_data / "sick" / "SICK.txt").read_text(encoding="utf-8").splitlines()[1:]:
        cols = line.split("\t")
        if len(cols) >= 3:
            lines.append(cols[1])
    (root / "corpus.txt").write_text("\n".join(list(dict.fromkeys(lines))[:600]) + "\n")
    shape = ModelShape(vocab_size=320, d_model=32, num_heads=2, d_ff=64, num_layers=1, num_repeat_tokens=2)
    steps = TrainSettings(steps=12, batch_size=16, lr=3e-3, warmup=3, eval_every=12, save_every=12, log_every=4,
                          bf16=False, threads=1)
    work = root / "work"
    prepare([root / "corpus.txt"], work, shape=shape, heldout_fraction=0.1, val_size=20)
    train_inverter(work, steps, with_gate=False)
    make_hypotheses(work, n=64)
    train_corrector(work, steps)
    export(work, root / "model", bf16=False)
    return root / "model" / "inverter", root / "model" / "corrector"
