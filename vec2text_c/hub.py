"""Finding model files: a local directory, or a Hugging Face repository through huggingface_hub
(downloaded on first use, read from its cache afterwards and whenever the hub cannot be
reached or HF_HUB_OFFLINE is set).

Only the files a model needs are fetched (`allow_patterns`); `revision`, `cache_dir` and
`token` are passed to huggingface_hub as they are. Errors say what to do: a repository that is
not on the hub, one that needs a token, or, offline, each repository and file still missing.
"""
from __future__ import annotations

import contextlib
import contextvars
import os
from pathlib import Path
from typing import Sequence

__all__ = ["MissingModelFilesError", "snapshot", "offline", "model_folder", "hub_cache", "download_hint", "NEEDS"]

WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
_ST = ["model.safetensors", "model.safetensors.index.json", "model-*-of-*.safetensors"]
_BIN = ["pytorch_model.bin", "pytorch_model.bin.index.json", "pytorch_model-*-of-*.bin"]
_T5_TOKENIZER = ["tokenizer.json", "spiece.model", "tokenizer_config.json", "special_tokens_map.json"]
# What a folder of each kind must hold (groups of alternatives) and which files to fetch for it
# (the weights: one layout, see model_folder).
NEEDS = {
    "checkpoint": (("config.json",), WEIGHTS),
    "t5": (("config.json",), ("tokenizer.json", "spiece.model")),
    "t5-weights": (("config.json",), WEIGHTS),
    "gtr": (("config.json",), WEIGHTS, ("spiece.model", "tokenizer.json")),
    "sentence-transformers": (("modules.json",), ("config.json",), WEIGHTS, ("tokenizer.json", "vocab.txt")),
}
_FETCH = {
    "checkpoint": ["config.json", "generation_config.json"],
    "t5": ["config.json"] + _T5_TOKENIZER,
    "t5-weights": ["config.json"],
    "gtr": ["config.json", "modules.json", "sentence_bert_config.json"] + _T5_TOKENIZER,
    # a sentence-transformers model whose Transformer module is the repository root (BERT family)
    "sentence-transformers": ["modules.json", "config.json", "sentence_bert_config.json", "tokenizer.json",
                              "tokenizer_config.json", "vocab.txt", "special_tokens_map.json", "*_Pooling/config.json",
                              "*_Normalize/*"],
}
_WITH_WEIGHTS = {"checkpoint", "t5-weights", "gtr", "sentence-transformers"}


class MissingModelFilesError(FileNotFoundError):
    """Raised when repositories or files a model needs are neither local nor downloadable.
    `missing` lists the files (groups of alternatives) still needed, when known."""

    def __init__(self, message: str, missing: list[str] | None = None):
        super().__init__(message)
        self.missing = list(missing or [])


_OPTIONS: contextvars.ContextVar[dict] = contextvars.ContextVar("vec2text_c_hub_options", default={})


@contextlib.contextmanager
def options(*, revision=None, cache_dir=None, token=None, named: Sequence[str] = ()):
    """Hub options for every repository resolved inside the block (load_corrector's
    revision= / cache_dir= / token=): revision is a str for the repositories named by the
    caller in `named` (the checkpoints themselves), or a dict repository id -> revision."""
    tok = _OPTIONS.set({"revision": revision, "cache_dir": cache_dir, "token": token, "named": tuple(named)})
    try:
        yield
    finally:
        _OPTIONS.reset(tok)


def revision_for(repo_id: str, named: Sequence[str] = ()) -> str | None:
    rev = _OPTIONS.get().get("revision")
    if isinstance(rev, dict):
        return rev.get(repo_id)
    return rev if repo_id in named else None


def offline() -> bool:
    """HF_HUB_OFFLINE as huggingface_hub reads it."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in ("1", "ON", "YES", "TRUE")


def hub_cache(cache_dir: str | os.PathLike | None = None) -> Path:
    """The hub cache in use: cache_dir, else HF_HUB_CACHE / HUGGINGFACE_HUB_CACHE / HF_HOME/hub as
    set now (huggingface_hub reads them once at import), else ~/.cache/huggingface/hub."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "huggingface" / "hub"


def download_hint(repos: Sequence[str], cache_dir=None) -> str:
    return ("With network access vec2text_c downloads them on first use (unset HF_HUB_OFFLINE). Elsewhere: "
            + "; ".join(f"huggingface-cli download {r}" for r in repos)
            + f", then copy the models--owner--name folders into {hub_cache(cache_dir)} (or set HF_HUB_CACHE to the "
            "cache that holds them). A local directory path works in place of any name.")


def snapshot(repo_id: str, allow_patterns: Sequence[str] | None = None, *, what: str = "model",
             revision: str | None = None, cache_dir: str | os.PathLike | None = None,
             token: str | bool | None = None) -> Path:
    """The local folder of `repo_id` holding the files that match `allow_patterns`:
    downloaded when missing (huggingface_hub's progress bars), the cached snapshot offline."""
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import (GatedRepoError, LocalEntryNotFoundError, RepositoryNotFoundError,
                                            RevisionNotFoundError)
    except ImportError as e:  # a broken environment: huggingface_hub is a base dependency
        raise ImportError(f"{repo_id} ({what}): finding models on the hub needs huggingface_hub ({e})") from None
    kw = dict(allow_patterns=list(allow_patterns) if allow_patterns else None, revision=revision,
              cache_dir=os.fspath(hub_cache(cache_dir)), token=token)
    try:
        return Path(snapshot_download(repo_id, local_files_only=offline(), **kw))
    except GatedRepoError:
        raise PermissionError(f"{repo_id} ({what}): the repository is gated; accept its terms on the hub and pass "
                              "token= (or log in with `huggingface-cli login`)") from None
    except RepositoryNotFoundError:
        raise ValueError(f"{repo_id} ({what}): no such repository on the hub (a private one needs token=)") from None
    except RevisionNotFoundError:
        raise ValueError(f"{repo_id} ({what}): no revision {revision!r} in the repository") from None
    except LocalEntryNotFoundError:
        files = ", ".join(allow_patterns) if allow_patterns else "all files"
        why = "HF_HUB_OFFLINE is set" if offline() else "the hub could not be reached"
        raise MissingModelFilesError(
            f"{repo_id} ({what}) is not in the local Hugging Face cache and {why}; it needs: {files}. "
            + download_hint([repo_id], cache_dir), list(allow_patterns or [])) from None


def _repo_files(repo_id: str, revision, token) -> list[str] | None:
    """The repository's file names, or None when the hub cannot be asked (offline, no network)."""
    if offline():
        return None
    try:
        from huggingface_hub import HfApi
        from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError
    except ImportError:
        return None
    try:
        return list(HfApi().list_repo_files(repo_id, revision=revision, token=token))
    except (GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError):
        return []  # snapshot() raises the matching error
    except Exception:  # noqa: BLE001 - no network, a proxy, a timeout: fall back to the cache
        return None


def missing_files(folder: Path | None, kind: str) -> list[str]:
    """Which of NEEDS[kind]'s groups the folder lacks ("a or b" for alternatives)."""
    return [" or ".join(group) for group in NEEDS[kind] if folder is None or not any((folder / f).is_file() for f in group)]


def _check_repo_id(repo: str, what: str) -> None:
    """A name that is no existing folder must be a repository id, else say so plainly (a
    relative path such as "../t5" whose folder is missing lands here)."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo)
    except HFValidationError:
        raise MissingModelFilesError(f"{what}: {repo!r} is neither an existing folder nor a Hugging Face "
                                     "repository id (owner/name)") from None


def model_folder(name_or_path: str | os.PathLike, kind: str, what: str, *, revision: str | None = None,
                 cache_dir: str | os.PathLike | None = None, token: str | bool | None = None) -> Path:
    """A local directory, or the snapshot of a hub repository holding what `kind` needs (see
    NEEDS): downloaded when missing, with one weight layout (safetensors when the repository has
    it, else the .bin files); MissingModelFilesError names what is still missing."""
    p = Path(os.fspath(name_or_path)).expanduser()
    if p.is_dir():
        return p
    if p.exists():
        raise ValueError(f"{what}: {p} is a file; expected a directory or a Hugging Face repository id")
    repo = os.fspath(name_or_path)
    _check_repo_id(repo, what)
    opts = _OPTIONS.get()
    revision = revision if revision is not None else revision_for(repo, opts.get("named", ()))
    cache_dir = cache_dir if cache_dir is not None else opts.get("cache_dir")
    token = token if token is not None else opts.get("token")
    patterns = list(_FETCH[kind])
    if kind in _WITH_WEIGHTS:
        files = _repo_files(repo, revision, token)
        has_st = files is None or any(f.endswith(".safetensors") or f == "model.safetensors.index.json" for f in files)
        patterns += _ST if has_st else []
        patterns += _BIN if files is None or not has_st else []
    try:
        d = snapshot(repo, patterns, what=what, revision=revision, cache_dir=cache_dir, token=token)
    except MissingModelFilesError as e:
        raise MissingModelFilesError(str(e), missing_files(None, kind)) from None
    missing = missing_files(d, kind)
    if missing:
        raise MissingModelFilesError(f"{repo} ({what}): the snapshot in {d} lacks {', '.join(missing)}. "
                                     + download_hint([repo], cache_dir), missing)
    return d
