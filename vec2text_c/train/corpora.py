"""Training text: read a corpus from files and directories, split it into short texts, and
hold out an evaluation split that training never sees.

Accepted inputs:
- a `.txt` file: one text per line;
- a `.jsonl` file: one JSON object per line, the text under `field` ("text" by default;
  "question" is used when there is no "text");
- a directory laid out like the project's shared corpora folder (STS-B, SICK, MSRP, NQ-open,
  AG News, WikiText-2 and the NLTK corpus zips): every known file in it is read where it lies.

Texts are whitespace-normalised, split into sentences, and sentences longer than
`max_words` are cut into word windows, so each text fits the inverter's 32-token budget after
the tokenizer filter in `fit_token_budget`. The held-out split is chosen by a hash of the
lower-cased text, so a text and its duplicates always land on the same side.
"""
from __future__ import annotations

import csv
import hashlib
import html
import json
import re
import zipfile
from pathlib import Path
from typing import Iterable, Iterator

__all__ = ["read_corpus", "split_sentences", "heldout_split", "clean_text"]

_SENT = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")
_SPACED = [
    (re.compile(r" @(.)@ "), r"\1"),
    (re.compile(r"\s+([.,;:!?%)\]}])"), r"\1"),
    (re.compile(r"([(\[{$])\s+"), r"\1"),
    (re.compile(r"\s+(n't|'s|'re|'ve|'m|'ll|'d)\b", re.I), r"\1"),
    (re.compile(r"``\s*|\s*''"), '"'),
]


_NUMERIC_ENTITY = re.compile(r"&?#(\d{1,7});")


def _unescape(s: str) -> str:
    """HTML entities: named and numeric ones (&amp; &lt; &#39;), and the numeric ones AG News
    keeps without their ampersand (" #39;s", "#36;10 million"). An apostrophe entity takes the
    space before it with it ("doesn #39;t" -> "doesn't")."""
    if "&" not in s and "#" not in s:
        return s
    for _ in range(3):  # some corpora escape twice ("&amp;amp;")
        t = html.unescape(s)
        if t == s:
            break
        s = t
    s = re.sub(r"\s?#39;", "'", s)

    def num(m: re.Match) -> str:
        n = int(m.group(1))
        return chr(n) if 0 < n < 0x110000 and not 0xD800 <= n <= 0xDFFF else m.group(0)

    return _NUMERIC_ENTITY.sub(num, s)


def clean_text(s: str) -> str:
    """One line of text with HTML entities decoded, runs of whitespace collapsed and tokenised
    spacing (" , ", " 's", WikiText's " @-@ ") joined back."""
    s = " ".join(_unescape(s).split())
    for pat, rep in _SPACED:
        s = pat.sub(rep, s)
    return s.strip()


def split_sentences(text: str) -> list[str]:
    """Sentences of a paragraph: a cut after . ! ? followed by a space and a capital or digit."""
    return [p.strip() for p in _SENT.split(text) if p.strip()]


def _windows(sentence: str, max_words: int) -> Iterator[str]:
    words = sentence.split()
    if len(words) <= max_words:
        yield sentence
        return
    n = -(-len(words) // max_words)
    size = -(-len(words) // n)
    for i in range(0, len(words), size):
        yield " ".join(words[i:i + size])


# ---- the shared-corpora directory layout ----

def _lines(data: bytes) -> list[str]:
    for enc in ("utf-8-sig", "latin-1"):
        try:
            return data.decode(enc).splitlines()
        except UnicodeDecodeError:
            continue
    return []


def _stsb(d: Path):
    for name in ("sts-train.csv", "sts-dev.csv", "sts-test.csv"):
        p = d / "stsb" / name
        if p.is_file():
            for line in p.read_text(encoding="utf-8").splitlines():
                cols = line.split("\t")
                if len(cols) >= 7:
                    yield cols[5]
                    yield cols[6]


def _msrp(d: Path):
    for p in sorted((d / "msrp").glob("msr_paraphrase_*.txt")):
        for line in p.read_text(encoding="utf-8-sig").splitlines()[1:]:
            cols = line.split("\t")
            if len(cols) >= 5:
                yield cols[3]
                yield cols[4]


def _sick(d: Path):
    p = d / "sick" / "SICK.txt"
    if p.is_file():
        for line in p.read_text(encoding="utf-8").splitlines()[1:]:
            cols = line.split("\t")
            if len(cols) >= 3:
                yield cols[1]
                yield cols[2]


def _nq(d: Path):
    for p in sorted((d / "nq_open").glob("*.jsonl")):
        for line in p.read_text(encoding="utf-8").splitlines():
            if line.strip():
                yield json.loads(line)["question"]


def _agnews(d: Path):
    p = d / "agnews" / "test.csv"
    if p.is_file():
        with open(p, encoding="utf-8", newline="") as f:
            for row in csv.reader(f):
                if len(row) >= 3 and row[0] != "Class Index":
                    yield row[1]
                    yield row[2].replace("\\", " ")


def _wikitext(d: Path):
    for name in ("valid.txt", "test.txt"):
        p = d / "wikitext2" / name
        if p.is_file():
            for line in p.read_text(encoding="utf-8").splitlines():
                line = line.strip()
                if line and not line.startswith("=") and "<unk>" not in line:
                    yield line


def _nltk(d: Path):
    for z in sorted((d / "nltk").glob("*.zip")):
        with zipfile.ZipFile(z) as zf:
            for info in zf.infolist():
                name = info.filename
                if info.is_dir() or name.rsplit("/", 1)[-1].upper().startswith("README"):
                    continue
                lines = _lines(zf.read(info))
                if name.startswith("qc/"):
                    yield from (ln.split(" ", 1)[1] for ln in lines if " " in ln)
                elif name.startswith("pros_cons/"):
                    yield from (re.sub(r"</?(Pros|Cons)>", " ", ln) for ln in lines)
                elif name.startswith(("movie_reviews/", "sentence_polarity/", "subjectivity/")):
                    # lower-cased, tokenised, one sentence per line: kept, with spacing repaired
                    yield from lines
                else:
                    # running text: join paragraphs, split into sentences later
                    yield from (p.replace("\n", " ") for p in "\n".join(lines).split("\n\n"))


def _wordnet(d: Path):
    """WordNet's glosses and example sentences (Debian's wordnet-base: /usr/share/wordnet, or a
    folder holding its data.noun / data.verb / data.adj / data.adv). A synset line ends with
    " | " and its gloss: a definition, then quoted examples, separated by "; "."""
    for name in ("data.noun", "data.verb", "data.adj", "data.adv"):
        p = d / name
        if not p.is_file():
            continue
        for line in _lines(p.read_bytes()):
            if line.startswith("  ") or " | " not in line:  # the licence header, or no gloss
                continue
            for part in line.split(" | ", 1)[1].strip().split("; "):
                part = part.strip().strip(";").strip()
                if part.startswith('"'):
                    part = part.strip('"')
                    if '"' in part:  # "an example" (of a sense) — keep the example
                        part = part.split('"', 1)[0]
                if part:
                    yield part


_DIR_SOURCES = (_stsb, _msrp, _sick, _nq, _agnews, _wikitext, _nltk, _wordnet)


def _read_file(p: Path, field: str) -> Iterator[str]:
    if p.suffix == ".jsonl":
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{p}:{i}: not valid JSON ({e})") from None
            if isinstance(obj, str):
                yield obj
            elif isinstance(obj, dict) and isinstance(obj.get(field, obj.get("question")), str):
                yield obj.get(field, obj.get("question"))
            else:
                raise ValueError(f"{p}:{i}: expected a JSON string or an object with a {field!r} string")
    else:
        yield from _lines(p.read_bytes())


def read_corpus(paths: Iterable[str | Path], *, field: str = "text", max_words: int = 24,
                min_words: int = 3) -> list[str]:
    """Distinct texts (case-insensitively) of `min_words`..`max_words` words from files and
    corpus directories, in a deterministic order."""
    out, seen = [], set()
    for path in paths:
        p = Path(path).expanduser()
        if p.is_dir():
            raw = (t for src in _DIR_SOURCES for t in src(p))
        elif p.is_file():
            raw = _read_file(p, field)
        else:
            raise FileNotFoundError(f"corpus: {p} is neither a file nor a directory")
        for chunk in raw:
            for sent in split_sentences(clean_text(chunk)):
                for text in _windows(sent, max_words):
                    key = text.lower()
                    if len(text.split()) >= min_words and key not in seen:
                        seen.add(key)
                        out.append(text)
    if not out:
        raise ValueError(f"corpus: no texts of {min_words}..{max_words} words in {list(map(str, paths))}")
    return out


def heldout_split(texts: list[str], fraction: float = 0.02, salt: str = "vec2text_c") -> tuple[list[str], list[str]]:
    """(train, heldout): a text is held out when the hash of its lower-cased form falls in the
    first `fraction` of the hash range."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction: expected a number in (0, 1), got {fraction!r}")
    cut = int(fraction * 2**32)
    train, held = [], []
    for t in texts:
        h = int.from_bytes(hashlib.sha1((salt + t.lower()).encode("utf-8")).digest()[:4], "little")
        (held if h < cut else train).append(t)
    return train, held
