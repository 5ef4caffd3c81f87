"""Reading the JSON files of model and tokenizer folders, with errors that name the file."""
from __future__ import annotations

import json
from pathlib import Path

__all__ = ["read_json", "read_json_if_present"]


def read_json(path: str | Path, expect: type = dict):
    """The JSON value in `path`, which must be an `expect` (an object by default, or a list);
    ValueError naming the file when it is not valid JSON or holds something else."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start}); expected a JSON file") from None
    if not isinstance(data, expect):
        what = {dict: "a JSON object", list: "a JSON list"}.get(expect, expect.__name__)
        raise ValueError(f"{path}: expected {what}, got a {type(data).__name__}")
    return data


def read_json_if_present(path: str | Path) -> dict:
    """read_json(path), or {} when there is no such file."""
    return read_json(path) if Path(path).is_file() else {}
