"""Sensitive items of a document, and which of them an inverted text gives back.

Kinds: `email` (addresses), `phone` (numbers the `phonenumbers` package finds, for the region
given, US by default, and any number written with a leading +), `date` (day / month / year
forms: 2024-06-05, 05/06/2024, June 5, 2024, 5 June 2024, June 2024), `number` (other numbers
of two or more digits, and single digits written as part of an amount such as 3.5), and `name`
(runs of capitalised words, minus common words such as "The" and month names; a single
capitalised word that opens a sentence is not taken for a name).

An item counts as recovered when it appears in the recovered text, compared case-insensitively
with whitespace collapsed; phone numbers compare by their digits, e-mail addresses with all
whitespace removed (tokenizers split "a@b.com" into "a @ b. com"), and items match whole words,
so "12" is not recovered by "312".
"""
from __future__ import annotations

import re

__all__ = ["find_items", "recovered_items", "KINDS"]

KINDS = ("email", "phone", "date", "number", "name")

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_MONTHS = ("january|february|march|april|may|june|july|august|september|october|november|december|"
           "jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec")
_DATE = re.compile(
    r"\b(?:\d{4}-\d{1,2}-\d{1,2}"
    r"|\d{1,2}[/.]\d{1,2}[/.]\d{2,4}"
    rf"|(?:{_MONTHS})\.?\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{4}})?"
    rf"|\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?(?:{_MONTHS})\.?(?:,?\s+\d{{4}})?"
    rf"|(?:{_MONTHS})\.?\s+\d{{4}})\b",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*(?![\w])")
_CAP_RUN = re.compile(r"\b[A-Z][a-zA-Z]*(?:['’-][A-Za-z]+)*(?:\s+[A-Z][a-zA-Z]*(?:['’-][A-Za-z]+)*)*\b")
# capitalised only because they open a sentence (or are titles of no interest on their own)
_COMMON = set("""a an the this that these those there here it its he she we they i you his her our their my your
in on at of for from to by with as and or but if when while after before since because so then than
what who whom whose which where why how is are was were be been being do does did not no yes all any
some many most more each every one two three first last new old mr mrs ms dr st monday tuesday wednesday
thursday friday saturday sunday today tomorrow yesterday please thanks hello hi dear""".split()) | set(
    _MONTHS.split("|"))


def _norm(s: str) -> str:
    return " ".join(s.lower().split())


def _phones(text: str, region: str) -> list[str]:
    try:
        import phonenumbers
    except ImportError as e:
        raise ImportError(f"finding phone numbers needs the `phonenumbers` package (pip install 'vec2text_c[audit]'): {e}") from None
    out = []
    for m in phonenumbers.PhoneNumberMatcher(text, region):
        out.append(m.raw_string.strip())
    return out


def find_items(document: str, region: str = "US") -> list[tuple[str, str]]:
    """The sensitive items of `document`: (kind, item as written), in order of kind, each once."""
    if not isinstance(document, str):
        raise TypeError(f"document: expected str, got {type(document).__name__}")
    items: list[tuple[str, str]] = []
    taken: list[tuple[int, int]] = []  # spans already claimed by an earlier kind

    def free(a: int, b: int) -> bool:
        return all(b <= x or a >= y for x, y in taken)

    for m in _EMAIL.finditer(document):
        items.append(("email", m.group()))
        taken.append(m.span())
    for raw in _phones(document, region):
        start = document.find(raw)
        if start >= 0 and free(start, start + len(raw)):
            items.append(("phone", raw))
            taken.append((start, start + len(raw)))
    for m in _DATE.finditer(document):
        if free(*m.span()):
            items.append(("date", m.group()))
            taken.append(m.span())
    for m in _NUMBER.finditer(document):
        s = m.group()
        if free(*m.span()) and (len(re.sub(r"\D", "", s)) >= 2 or re.search(r"[.,]", s)):
            items.append(("number", s))
            taken.append(m.span())
    for m in _CAP_RUN.finditer(document):
        if not free(*m.span()):
            continue
        words = m.group().split()
        while words and words[0].lower() in _COMMON:
            words = words[1:]
        # one capitalised word opening a sentence is most often just that
        opens = m.start() == 0 or re.search(r"[.!?:;]\s+$|\n\s*$", document[:m.start()]) is not None
        if words and not (len(words) == 1 and (len(words[0]) == 1 or (opens and len(m.group().split()) == 1))):
            items.append(("name", " ".join(words)))
    seen, unique = set(), []
    for kind, item in items:
        key = (kind, _norm(item))
        if key not in seen:
            seen.add(key)
            unique.append((kind, item))
    order = {k: i for i, k in enumerate(KINDS)}
    return sorted(unique, key=lambda ki: order[ki[0]])


def _digits_joined(text: str) -> str:
    """Digit groups separated only by spaces, dashes, dots or brackets joined into one."""
    return re.sub(r"(?<=\d)[\s\-().]+(?=\d)", "", text)


def _contains_word(haystack: str, needle: str) -> bool:
    return re.search(r"(?<![\w])" + re.escape(needle) + r"(?![\w])", haystack) is not None


def is_recovered(kind: str, item: str, recovered: str) -> bool:
    """Whether `item` (of `kind`) appears in the `recovered` text (see the module's rules)."""
    text = _norm(recovered)
    if kind == "email":
        return _norm(item).replace(" ", "") in text.replace(" ", "")
    if kind == "phone":
        digits = re.sub(r"\D", "", item)
        return len(digits) > 0 and _contains_word(_digits_joined(text), digits)
    if kind == "number":
        return _contains_word(text, _norm(item)) or _contains_word(_digits_joined(text), _digits_joined(_norm(item)))
    if kind in ("date", "name"):
        # tokenizers may space out punctuation: "june 5 , 2024"
        spaced = re.sub(r"\s*([,.])\s*", r"\1 ", text)
        want = re.sub(r"\s*([,.])\s*", r"\1 ", _norm(item)).strip()
        return _contains_word(text, _norm(item)) or _contains_word(spaced, want)
    raise ValueError(f"kind: expected one of {', '.join(KINDS)}, got {kind!r}")


def recovered_items(document: str, recovered: str, region: str = "US") -> list[dict]:
    """Each sensitive item of `document` with whether `recovered` gives it back:
    [{"kind", "item", "recovered"}]."""
    if not isinstance(recovered, str):
        raise TypeError(f"recovered: expected str, got {type(recovered).__name__}")
    return [{"kind": k, "item": i, "recovered": is_recovered(k, i, recovered)} for k, i in find_items(document, region)]
