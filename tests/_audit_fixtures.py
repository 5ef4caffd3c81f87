"""Real parts for the audit tests: texts from the shared corpora, their all-MiniLM-L6-v2
embeddings, and a Chroma persistent collection built from them in a temporary folder."""
from __future__ import annotations

from pathlib import Path

import numpy as np

# hand-written documents with sensitive items (their own test checks what is found in them)
PERSONAL = [
    "John Smith lives at 42 Oak Street, Springfield; call him on (415) 555-0132.",
    "Please mail anna.berg@example.com before June 5, 2024 about invoice 77812.",
    "Maria Garcia paid 1,250 dollars on 2023-11-02 for the flight to Lisbon.",
]


def corpus_texts(shared_data: Path, n: int) -> list[str]:
    """n distinct STS-B dev sentences, then the personal documents."""
    texts = []
    for line in (shared_data / "stsb" / "sts-dev.csv").read_text(encoding="utf-8").splitlines():
        cols = line.split("\t")
        if len(cols) >= 7:
            texts.append(cols[5].strip())
    texts = list(dict.fromkeys(t for t in texts if t))[: n - len(PERSONAL)]
    return texts + PERSONAL


def make_chroma(path: Path, ids: list[str], vectors: np.ndarray, documents: list[str] | None, name: str = "docs"):
    import chromadb
    from chromadb.config import Settings

    client = chromadb.PersistentClient(path=str(path), settings=Settings(anonymized_telemetry=False))
    col = client.get_or_create_collection(name, metadata={"hnsw:space": "cosine"})
    if len(ids):
        col.add(ids=ids, embeddings=vectors, documents=documents)
    return col
