"""The results file of an audit: JSON lines, appended as records finish, safe to resume.

Each line is one finished record and carries the audit's fingerprint (a hash of the settings
that decide the results: store, model, aligner, steps, beam, search, sample, seed). A line is
written whole and flushed with fsync before the next batch is taken as done, so a killed audit
leaves at most one partial last line, which resuming drops. Resuming refuses a file whose lines
carry another fingerprint, and skips every key already in the file: each key is written once.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

__all__ = ["fingerprint", "ResultsFile"]


def fingerprint(settings: dict) -> str:
    """16 hex digits naming an audit's result-deciding settings."""
    blob = json.dumps(settings, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


class ResultsFile:
    """Rows keyed by `key_field`, appended to `path`; `done` holds the keys already there."""

    def __init__(self, path: str | Path, audit_id: str, key_field: str = "id"):
        self.path = Path(path)
        self.audit_id = audit_id
        self.key_field = key_field
        self.rows: list[dict] = []
        self.done: set = set()
        if self.path.exists():
            self._load()
        self._f = None

    def _load(self) -> None:
        if not self.path.is_file():
            raise ValueError(f"{self.path}: expected a results file (JSON lines), got something else")
        data = self.path.read_bytes()
        good = 0  # bytes of complete, valid lines
        for line in data.splitlines(keepends=True):
            if not line.endswith(b"\n"):
                break  # the partial last line of a killed audit
            try:
                row = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise ValueError(f"{self.path}: line {len(self.rows) + 1} is not valid JSON; not an audit results "
                                 "file, or damaged (delete it to start again)") from None
            if not isinstance(row, dict) or self.key_field not in row:
                raise ValueError(f"{self.path}: line {len(self.rows) + 1} is not an audit record")
            if row.get("audit") != self.audit_id:
                raise ValueError(
                    f"{self.path}: holds the results of a different audit (settings fingerprint {row.get('audit')!r}, "
                    f"these settings give {self.audit_id!r}); refusing to resume into it. Audit into another --out "
                    "folder, or delete the folder to start again")
            key = self._key(row)
            if key in self.done:
                raise ValueError(f"{self.path}: the key {key!r} appears twice; the file is damaged")
            self.done.add(key)
            self.rows.append(row)
            good += len(line)
        if good != len(data):
            with open(self.path, "r+b") as f:  # drop the partial line so appends start clean
                f.truncate(good)

    def _key(self, row: dict):
        k = row[self.key_field]
        return tuple(k) if isinstance(k, list) else k

    def append(self, rows: list[dict]) -> None:
        """Write `rows` (new keys only) and flush them to disk."""
        if self._f is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._f = open(self.path, "ab")
        blob = b""
        for row in rows:
            key = self._key(row)
            if key in self.done:
                continue  # a batch that ran twice (a worker restarted after finishing it)
            row = dict(row, audit=self.audit_id)
            self.done.add(key)
            self.rows.append(row)
            blob += (json.dumps(row, ensure_ascii=False, allow_nan=False, default=_plain) + "\n").encode("utf-8")
        if blob:
            self._f.write(blob)
            self._f.flush()
            os.fsync(self._f.fileno())

    def close(self) -> None:
        """Close the file (appending reopens it)."""
        if self._f is not None:
            self._f.close()
            self._f = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _plain(value):
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot write a {type(value).__name__} to the results file")
