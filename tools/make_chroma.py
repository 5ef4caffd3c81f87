"""Build a Chroma persistent collection to audit: N held-out texts of the shared corpora (texts
the shipped model never trained on) embedded with all-MiniLM-L6-v2, as a RAG system would store
them, plus a few made-up personal records.

Usage: python tools/make_chroma.py OUT_DIR [--n 500] [--collection docs] [--data ../shared/data]
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

PERSONAL = [
    "John Smith lives at 42 Oak Street, Springfield; call him on (415) 555-0132.",
    "Please mail anna.berg@example.com before June 5, 2024 about invoice 77812.",
    "Maria Garcia paid 1,250 dollars on 2023-11-02 for the flight to Lisbon.",
    "Patient David Chen, born 1984-03-12, was seen by Dr. Laura Kim on May 3.",
    "Contact Peter Novak at peter.novak@example.org or 212-555-0187 after 6 pm.",
]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("--n", type=int, default=500)
    p.add_argument("--collection", default="docs")
    p.add_argument("--data", type=Path, default=Path(os.environ.get("V2T_SHARED_DATA", REPO.parent / "shared" / "data")))
    a = p.parse_args(argv)

    import chromadb
    from chromadb.config import Settings

    import vec2text_c
    from vec2text_c.train.corpora import heldout_split, read_corpus

    _, held = heldout_split(read_corpus([a.data]))
    docs = held[: a.n - len(PERSONAL)] + PERSONAL
    emb = vec2text_c.load_embedder("sentence-transformers/all-MiniLM-L6-v2").encode(docs)
    client = chromadb.PersistentClient(path=str(a.out), settings=Settings(anonymized_telemetry=False))
    col = client.get_or_create_collection(a.collection, metadata={"hnsw:space": "cosine"})
    ids = [f"doc-{i:05d}" for i in range(len(docs))]
    for start in range(0, len(docs), 1000):
        col.add(ids=ids[start:start + 1000], embeddings=emb[start:start + 1000], documents=docs[start:start + 1000])
    print(f"{a.out}: collection {a.collection!r} with {col.count()} records")
    return 0


if __name__ == "__main__":
    sys.exit(main())
