"""Auditing a store of embeddings for what its vectors give away.

    summary = vec2text_c.audit.audit("out/", chroma="db/", collection="docs", sample=500)

reads the records (ids, vectors and, where kept, documents) of a Chroma collection, a LanceDB
table, or .npy / .parquet files; inverts the vectors with a model ("minilm", "gtr-base", a
folder), through an aligner for another encoder's space; scores each recovered text against its
document (BLEU, token F1, exact match, sensitive items: e-mail addresses, phone numbers, dates,
numbers, names); measures the Gaussian-noise defence (leakage against retrieval recall@10);
and writes OUT/results.jsonl (a record per line, as they finish; a restarted audit resumes
it), OUT/defence.jsonl, OUT/summary.json and OUT/report.html. `engine="ray"` spreads the
batches over Ray actors (a local instance, or an existing cluster). `vec2text-c audit` is the
same on the command line. Needs the [audit] extra.
"""
from __future__ import annotations

from .engine import AuditWorker, ModelSpec, load_model
from .results import ResultsFile, fingerprint
from .run import DEFAULT_NOISE, SUBSTANTIAL_F1, audit, recall_at
from .sensitive import KINDS, find_items, recovered_items
from .stores import Store, open_store, read_chroma, read_lancedb, read_vectors

__all__ = ["audit", "Store", "open_store", "read_chroma", "read_lancedb", "read_vectors", "find_items",
           "recovered_items", "KINDS", "recall_at", "fingerprint", "ResultsFile", "AuditWorker", "ModelSpec",
           "load_model", "DEFAULT_NOISE", "SUBSTANTIAL_F1"]
