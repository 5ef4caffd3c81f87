"""Reading the records of a vector store: ids, vectors and, where the store keeps them, documents.

Every reader returns a `Store`: records sorted by id (so that a seeded sample names the same
records whatever order the store lists them in), float32 vectors [N, D], and documents (None
where a store keeps none). Vectors are read as stored: NaN or infinite rows are kept and
reported per record by the audit, never dropped here.

* `read_chroma(path, collection)`: a Chroma persistent collection (the `chromadb` package).
* `read_lancedb(path, table)`: a LanceDB table in its embedded mode (the `lancedb` package).
* `read_vectors(path, texts=None)`: a `.npy` array [N, D] (ids are the row numbers; documents
  from an optional .txt / .jsonl file, one per row), or a `.parquet` file with a vector column
  and optional text and id columns (`pyarrow`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["Store", "read_chroma", "read_lancedb", "read_vectors", "open_store"]

_PAGE = 1000  # records per request to a store


@dataclass
class Store:
    """The records of a vector store, sorted by id."""

    ids: list[str]
    vectors: np.ndarray  # float32 [N, D]
    documents: list[str | None] | None
    source: dict = field(default_factory=dict)  # what was read: kind, path, collection / table / columns

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def dim(self) -> int:
        """The width of the stored vectors."""
        return int(self.vectors.shape[1])

    def take(self, rows) -> "Store":
        """The records at `rows` (indices), in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        docs = None if self.documents is None else [self.documents[i] for i in rows]
        return Store([self.ids[i] for i in rows], self.vectors[rows], docs, dict(self.source))


def _require(module: str, what: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(f"reading {what} needs the `{module}` package (pip install 'vec2text_c[audit]'): {e}") from None


def _sorted_store(ids, vectors, documents, source) -> Store:
    ids = [str(i) for i in ids]
    if len(set(ids)) != len(ids):
        seen, dup = set(), None
        for i in ids:
            if i in seen:
                dup = i
                break
            seen.add(i)
        raise ValueError(f"{source.get('path')}: the id {dup!r} names more than one record; ids must be unique")
    vectors = np.asarray(vectors)
    if vectors.ndim != 2 or vectors.shape[0] != len(ids):
        raise ValueError(f"{source.get('path')}: expected one vector per record ({len(ids)}), got shape {list(vectors.shape)}")
    if vectors.shape[0] == 0:
        raise ValueError(f"{source.get('path')}: the store holds no records")
    if vectors.shape[1] == 0:
        raise ValueError(f"{source.get('path')}: the stored vectors have no components (shape {list(vectors.shape)})")
    if not np.issubdtype(vectors.dtype, np.floating) and not np.issubdtype(vectors.dtype, np.integer):
        raise ValueError(f"{source.get('path')}: expected numeric vectors, got dtype {vectors.dtype}")
    order = sorted(range(len(ids)), key=ids.__getitem__)
    docs = None
    if documents is not None:
        docs = [None if documents[i] is None else str(documents[i]) for i in order]
        if all(d is None for d in docs):
            docs = None
    vec = np.ascontiguousarray(vectors[order], dtype=np.float32)
    return Store([ids[i] for i in order], vec, docs, source)


def read_chroma(path: str | Path, collection: str) -> Store:
    """The records of the Chroma collection `collection` persisted in the folder `path`."""
    chromadb = _require("chromadb", "a Chroma collection")
    from chromadb.config import Settings

    p = Path(path)
    if not p.is_dir():
        raise FileNotFoundError(f"--chroma {p}: no such folder (expected a Chroma persistent directory)")
    if not (p / "chroma.sqlite3").is_file():
        raise FileNotFoundError(f"--chroma {p}: not a Chroma persistent directory (it holds no chroma.sqlite3)")
    client = chromadb.PersistentClient(path=str(p), settings=Settings(anonymized_telemetry=False))
    names = sorted(c if isinstance(c, str) else c.name for c in client.list_collections())
    if collection not in names:
        raise ValueError(f"--collection {collection!r}: no such collection in {p}; it holds: {', '.join(names) or 'none'}")
    col = client.get_collection(collection)
    ids = col.get(include=[])["ids"]
    if not ids:
        raise ValueError(f"--collection {collection!r} in {p} holds no records")
    vecs, docs, got = [], [], []
    for start in range(0, len(ids), _PAGE):
        page = col.get(ids=ids[start:start + _PAGE], include=["embeddings", "documents"])
        got += page["ids"]
        e = page["embeddings"]
        if e is None or len(e) != len(page["ids"]):
            raise ValueError(f"--collection {collection!r} in {p}: records without embeddings")
        vecs.append(np.asarray(e, dtype=np.float32))
        docs += list(page["documents"] or [None] * len(page["ids"]))
    source = {"kind": "chroma", "path": str(p.resolve()), "collection": collection}
    return _sorted_store(got, np.concatenate(vecs), docs, source)


def _arrow_vectors(column, where: str) -> np.ndarray:
    import pyarrow as pa

    col = column.combine_chunks() if hasattr(column, "combine_chunks") else column
    if not (pa.types.is_fixed_size_list(col.type) or pa.types.is_list(col.type) or pa.types.is_large_list(col.type)):
        raise ValueError(f"{where}: expected a list-of-floats vector column, got type {col.type}")
    if col.null_count:
        raise ValueError(f"{where}: {col.null_count} records have no vector (null)")
    lengths = np.asarray(col.value_lengths() if hasattr(col, "value_lengths") else pa.compute.list_value_length(col))
    if len(lengths) and (lengths != lengths[0]).any():
        raise ValueError(f"{where}: the vectors have different lengths ({int(lengths.min())} to {int(lengths.max())})")
    flat = col.flatten().to_numpy(zero_copy_only=False)
    if not (np.issubdtype(flat.dtype, np.floating) or np.issubdtype(flat.dtype, np.integer)):
        raise ValueError(f"{where}: expected numeric vector components, got {col.type}")
    d = int(lengths[0]) if len(lengths) else 0
    return flat.astype(np.float32).reshape(len(col), d)


def _pick(names: list[str], wanted: str | None, candidates: tuple[str, ...], what: str, where: str, required: bool):
    if wanted is not None:
        if wanted not in names:
            raise ValueError(f"{where}: no {what} column {wanted!r}; columns: {', '.join(names)}")
        return wanted
    for c in candidates:
        if c in names:
            return c
    if required:
        raise ValueError(f"{where}: no {what} column (looked for {', '.join(candidates)}; columns: {', '.join(names)}); "
                         f"name it with --{what}-column")
    return None


def _from_arrow(table, where: str, source: dict, vector_column, text_column, id_column) -> Store:
    names = list(table.column_names)
    vcol = _pick(names, vector_column, ("vector", "embedding", "embeddings"), "vector", where, True)
    tcol = _pick(names, text_column, ("text", "document", "documents", "content"), "text", where, False)
    icol = _pick(names, id_column, ("id", "ids"), "id", where, False)
    if table.num_rows == 0:
        raise ValueError(f"{where} holds no records")
    vec = _arrow_vectors(table.column(vcol), f"{where}, column {vcol!r}")
    ids = table.column(icol).to_pylist() if icol else list(range(table.num_rows))
    if icol and any(i is None for i in ids):
        raise ValueError(f"{where}, column {icol!r}: some records have no id")
    docs = table.column(tcol).to_pylist() if tcol else None
    source = dict(source, vector_column=vcol, text_column=tcol, id_column=icol)
    return _sorted_store(ids if icol else [str(i) for i in ids], vec, docs, source)


def read_lancedb(path: str | Path, table: str, *, vector_column=None, text_column=None, id_column=None) -> Store:
    """The records of the LanceDB table `table` in the database folder `path`."""
    lancedb = _require("lancedb", "a LanceDB table")
    p = Path(path)
    if not p.is_dir():
        raise FileNotFoundError(f"--lancedb {p}: no such folder (expected a LanceDB database directory)")
    db = lancedb.connect(str(p))
    listed = db.list_tables() if hasattr(db, "list_tables") else db.table_names()
    names = sorted(getattr(listed, "tables", listed))
    if table not in names:
        raise ValueError(f"--table {table!r}: no such table in {p}; it holds: {', '.join(names) or 'none'}")
    arrow = db.open_table(table).to_arrow()
    source = {"kind": "lancedb", "path": str(p.resolve()), "table": table}
    return _from_arrow(arrow, f"LanceDB table {table!r} in {p}", source, vector_column, text_column, id_column)


def _read_documents(path: Path, n: int) -> list[str]:
    if not path.is_file():
        raise FileNotFoundError(f"--texts {path}: file not found")
    docs: list[str] = []
    with open(path, encoding="utf-8") as f:
        for k, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if path.suffix == ".jsonl":
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as e:
                    raise ValueError(f"--texts {path}:{k}: not valid JSON ({e.msg})") from None
                if isinstance(obj, dict):
                    obj = obj.get("text")
                if not isinstance(obj, str):
                    raise ValueError(f"--texts {path}:{k}: expected a JSON string or an object with a string 'text'")
                docs.append(obj)
            else:
                docs.append(line)
    if len(docs) != n:
        raise ValueError(f"--texts {path}: holds {len(docs)} texts for {n} vectors; expected one per row, in order")
    return docs


def read_vectors(path: str | Path, texts: str | Path | None = None, *, vector_column=None, text_column=None,
                 id_column=None) -> Store:
    """Records from a `.npy` array [N, D] (ids: row numbers; documents from `texts`, a .txt
    with one text per line or a .jsonl) or from a `.parquet` file (vector column, optional
    text and id columns)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"--vectors {p}: file not found")
    if p.suffix == ".npy":
        try:
            arr = np.load(p, allow_pickle=False)
        except Exception as e:  # noqa: BLE001 - NumPy raises several types for a bad file
            raise ValueError(f"--vectors {p}: not a readable .npy array ({e})") from None
        if arr.ndim != 2:
            raise ValueError(f"--vectors {p}: expected an array [N, D], got shape {list(arr.shape)}")
        if not np.issubdtype(arr.dtype, np.floating):
            raise ValueError(f"--vectors {p}: expected floating-point vectors, got dtype {arr.dtype}")
        docs = _read_documents(Path(texts), arr.shape[0]) if texts is not None else None
        width = len(str(max(arr.shape[0] - 1, 0)))
        ids = [str(i).zfill(width) for i in range(arr.shape[0])]
        source = {"kind": "npy", "path": str(p.resolve()), "texts": str(Path(texts).resolve()) if texts else None}
        return _sorted_store(ids, arr, docs, source)
    if p.suffix == ".parquet":
        if texts is not None:
            raise ValueError("--texts: a .parquet file carries its texts in a column (--text-column); --texts is for .npy")
        pq = _require("pyarrow.parquet", "a Parquet file")
        try:
            table = pq.read_table(p)
        except Exception as e:  # noqa: BLE001 - pyarrow's errors for a damaged file vary
            raise ValueError(f"--vectors {p}: not a readable Parquet file ({e})") from None
        source = {"kind": "parquet", "path": str(p.resolve())}
        return _from_arrow(table, f"--vectors {p}", source, vector_column, text_column, id_column)
    raise ValueError(f"--vectors {p}: expected a .npy or .parquet file")


def open_store(*, chroma=None, collection=None, lancedb=None, table=None, vectors=None, texts=None,
               vector_column=None, text_column=None, id_column=None) -> Store:
    """The store one of (chroma + collection), (lancedb + table) or vectors (+ texts) names."""
    given = [k for k, v in (("chroma", chroma), ("lancedb", lancedb), ("vectors", vectors)) if v is not None]
    if len(given) != 1:
        raise ValueError("the store: give exactly one of --chroma PATH --collection NAME, --lancedb PATH --table NAME "
                         f"or --vectors FILE (.npy / .parquet); got {', '.join('--' + g for g in given) or 'none'}")
    if chroma is not None:
        if not collection:
            raise ValueError("--collection: --chroma needs the name of the collection to audit")
        return read_chroma(chroma, collection)
    if lancedb is not None:
        if not table:
            raise ValueError("--table: --lancedb needs the name of the table to audit")
        return read_lancedb(lancedb, table, vector_column=vector_column, text_column=text_column, id_column=id_column)
    return read_vectors(vectors, texts, vector_column=vector_column, text_column=text_column, id_column=id_column)
