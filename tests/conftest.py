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
