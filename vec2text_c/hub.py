"""Finding model files: a local directory, or a Hugging Face repository through huggingface_hub
(downloaded on first use, read from its cache afterwards and whenever the hub cannot be
reached or HF_HUB_OFFLINE is set).

Only the files a model needs are fetched (`allow_patterns`); `revision`, `cache_dir` and
`token` are passed to huggingface_hub as they are. Errors say what to do: a repository that is
not on the hub, one that needs a token, or, offline, each repository and file still missing.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

__all__ = ["MissingModelFilesError", "snapshot", "offline"]


class MissingModelFilesError(FileNotFoundError):
    """Raised when repositories or files a model needs are neither local nor downloadable."""


def offline() -> bool:
    """HF_HUB_OFFLINE as huggingface_hub reads it."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in ("1", "ON", "YES", "TRUE")


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
              cache_dir=os.fspath(cache_dir) if cache_dir is not None else None, token=token)
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
            f"Download it where there is network access (`huggingface-cli download {repo_id}`) into the cache "
            f"({cache_dir or os.environ.get('HF_HUB_CACHE') or '~/.cache/huggingface/hub'}), or pass a local "
            "directory instead of the name") from None
