"""Generate csrc/tokenize/unicode_tables.c: the character data BERT's WordPiece tokenizer needs.

    python tools/gen_unicode_tables.py [--check]     (needs the `tokenizers` package)

Why the tables come from the `tokenizers` library and not from Python's `unicodedata` alone:
the tokenizer that transformers returns for a BERT checkpoint (`BertTokenizerFast`, also what
sentence-transformers runs) is the Rust `tokenizers` library, whose Unicode data (control and
mark categories, punctuation, NFD decompositions) is older than Python's `unicodedata`. On
Python 3.11 (Unicode 14.0.0) against tokenizers 0.20.3, BERT normalisation computed from
`unicodedata` the way transformers' slow BertTokenizer does it differs from the reference on 655
assigned code points (384 nonspacing marks and 13 format characters newer than the Rust crates'
tables, 2 spacing marks recategorised or given a decomposition since, and U+2B820..U+2B91F,
which the Rust code does not pad as CJK) and on every unassigned one (category Cn: dropped by
the slow tokenizer, kept by the fast one). So each property is read off the reference itself,
one code point at a time, through the public normalizer / pre-tokenizer components that
`BertNormalizer` and `BertPreTokenizer` are made of. `unicodedata` supplies the canonical
combining classes (stable across Unicode versions once a character is assigned); each nonzero
class is confirmed against the reference's NFD reordering.
The script then replays the C algorithm over the generated tables in Python and checks it
against the reference normalizer on every code point and on random mark sequences.
"""
from __future__ import annotations

import argparse
import random
import sys
import unicodedata
from pathlib import Path

import tokenizers
from tokenizers import normalizers, pre_tokenizers

OUT = Path(__file__).resolve().parents[1] / "csrc" / "tokenize" / "unicode_tables.c"

# Flag bits; must match csrc/tokenize/unicode_tables.h.
REMOVE, SPACE, CHINESE, MN, SPLIT, PUNCT, DECOMP, LOWER, CCC = (1 << i for i in range(9))
BLOCK = 128
HANGUL_FIRST, HANGUL_LAST = 0xAC00, 0xD7A3


def code_points():
    return [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]


def bert(**kw):
    args = dict(clean_text=False, handle_chinese_chars=False, strip_accents=False, lowercase=False)
    args.update(kw)
    return normalizers.BertNormalizer(**args)


def probe():
    clean = bert(clean_text=True)
    chinese = bert(handle_chinese_chars=True)
    strip = bert(strip_accents=True)
    lower = bert(lowercase=True)
    nfd = normalizers.NFD()
    pretok = pre_tokenizers.BertPreTokenizer()

    flags = {}
    decomp = {}
    lowers = {}
    for c in code_points():
        ch = chr(c)
        f = 0
        cl = clean.normalize_str(ch)
        if cl == "":
            f |= REMOVE
        elif cl == " ":
            f |= SPACE
        elif cl != ch:
            raise AssertionError(f"clean_text maps U+{c:04X} to {cl!r}")
        if chinese.normalize_str(ch) == f" {ch} ":
            f |= CHINESE
        d = nfd.normalize_str(ch)
        if d != ch and not HANGUL_FIRST <= c <= HANGUL_LAST:
            f |= DECOMP
            decomp[c] = [ord(x) for x in d]
        if d == ch:
            s = strip.normalize_str(ch)
            if s == "":
                f |= MN
            elif s != ch:
                raise AssertionError(f"strip_accents maps NFD-stable U+{c:04X} to {s!r}")
        lo = lower.normalize_str(ch)
        if lo != ch:
            f |= LOWER
            lowers[c] = [ord(x) for x in lo]
        words = [w for w, _ in pretok.pre_tokenize_str(f"a{ch}b")]
        if words == ["a", "b"]:
            f |= SPLIT
        elif words == ["a", ch, "b"]:
            f |= PUNCT
        elif words != [f"a{ch}b"]:
            raise AssertionError(f"pre-tokenizer splits 'a U+{c:04X} b' as {words!r}")
        flags[c] = f

    # Combining classes from unicodedata, kept only where the reference's NFD reorders by them.
    ccc = {}
    for c in code_points():
        k = unicodedata.combining(chr(c))
        if k == 0 or flags[c] & DECOMP:
            continue
        if k > 1:  # U+0334 has class 1: it must move in front of c
            moved = nfd.normalize_str(f"a{chr(c)}\u0334") == f"a\u0334{chr(c)}"
        else:  # class 1: c must move in front of U+0301 (class 230)
            moved = nfd.normalize_str(f"a\u0301{chr(c)}") == f"a{chr(c)}\u0301"
        if moved:
            ccc[c] = k
            flags[c] |= CCC
    return flags, decomp, lowers, ccc


# ---- a Python replay of the C algorithm (csrc/tokenize/normalize.c) over the tables ----

def hangul(c):
    s = c - HANGUL_FIRST
    out = [0x1100 + s // 588, 0x1161 + (s % 588) // 28]
    if s % 28:
        out.append(0x11A7 + s % 28)
    return out


def replay(text, flags, decomp, lowers, ccc):
    out, pending = [], []

    def flush():
        pending.sort(key=lambda e: e[0])
        for _, e in pending:
            out.extend(lowers.get(e, [e]))
        pending.clear()

    def emit(e):
        f = flags[e]
        if f & MN:
            if f & CCC:
                return  # dropped, and a nonzero class does not end the run
            flush()
            return
        if f & CCC:
            pending.append((ccc[e], e))
        else:
            flush()
            out.extend(lowers.get(e, [e]))

    for ch in text:
        c = ord(ch)
        f = flags[c]
        if f & REMOVE:
            continue
        if f & SPACE:
            emit(0x20)
            continue
        if f & CHINESE:
            emit(0x20)
        if HANGUL_FIRST <= c <= HANGUL_LAST:
            seq = hangul(c)
        else:
            seq = decomp.get(c, [c])
        for e in seq:
            emit(e)
        if f & CHINESE:
            emit(0x20)
    flush()
    return "".join(map(chr, out))


def check(flags, decomp, lowers, ccc):
    ref = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True)
    bad = [c for c in code_points() if replay(chr(c), flags, decomp, lowers, ccc) != ref.normalize_str(chr(c))]
    if bad:
        raise AssertionError(f"replay differs from the reference on {len(bad)} code points, first U+{bad[0]:04X}")
    rng = random.Random(0)
    marks = sorted(ccc) + [0x301, 0x323, 0x334, 0x345, 0x5B0, 0x93C, 0x1734, 0x11938]
    letters = [0x41, 0x61, 0xC5, 0x130, 0x1E0A, 0xAC01, 0xF900, 0x3A3, 0x1, 0x200D]
    for _ in range(20000):
        s = "".join(chr(rng.choice(marks if rng.random() < 0.7 else letters)) for _ in range(rng.randint(1, 8)))
        if replay(s, flags, decomp, lowers, ccc) != ref.normalize_str(s):
            raise AssertionError(f"replay differs from the reference on {s!r}")


def c_array(ctype, name, values, per_line=16, fmt="{}"):
    lines = [f"const {ctype} {name}[{len(values)}] = {{"]
    for i in range(0, len(values), per_line):
        lines.append("    " + ",".join(fmt.format(v) for v in values[i : i + per_line]) + ",")
    lines.append("};")
    return "\n".join(lines)


def seq_table(name, mapping):
    keys = sorted(mapping)
    pool, offs, lens = [], [], []
    for k in keys:
        offs.append(len(pool))
        lens.append(len(mapping[k]))
        pool.extend(mapping[k])
    assert len(pool) < 65536
    return "\n\n".join(
        [
            f"const int v2t_uc_{name}_count = {len(keys)};",
            c_array("uint32_t", f"v2t_uc_{name}_key", keys, 8, "0x{:05X}"),
            c_array("uint16_t", f"v2t_uc_{name}_off", offs, 12),
            c_array("uint8_t", f"v2t_uc_{name}_len", lens, 24),
            c_array("uint32_t", f"v2t_uc_{name}_pool", pool, 8, "0x{:05X}"),
        ]
    )


def render(flags, decomp, lowers, ccc):
    # The bounds unicode_tables.h states (V2T_UC_MAX_DECOMP, _LOWER, _EXPANSION).
    assert max(map(len, decomp.values())) <= 4 and max(map(len, lowers.values())) <= 2
    props = sorted(set(flags.values()))
    assert len(props) < 256
    pid = {f: i for i, f in enumerate(props)}
    blocks, index = {}, []
    for b in range(0x110000 // BLOCK):
        row = tuple(pid[flags.get(c, REMOVE)] for c in range(b * BLOCK, (b + 1) * BLOCK))
        index.append(blocks.setdefault(row, len(blocks)))
    assert len(blocks) < 256
    stage2 = [v for row in sorted(blocks, key=blocks.get) for v in row]
    ccc_keys = sorted(ccc)
    head = f"""/* GENERATED by tools/gen_unicode_tables.py -- do not edit by hand.
 *
 * Character data for BERT WordPiece normalisation, read off the reference tokenizer
 * (tokenizers {tokenizers.__version__}) code point by code point; combining classes from Python
 * {sys.version.split()[0]} unicodedata {unicodedata.unidata_version}, confirmed against the
 * reference's NFD. See the generator's docstring for why, and unicode_tables.h for the layout.
 */
#include "unicode_tables.h"
"""
    parts = [
        head,
        c_array("uint16_t", "v2t_uc_props", props, 16, "0x{:03X}"),
        c_array("uint8_t", "v2t_uc_stage1", index, 32),
        c_array("uint8_t", "v2t_uc_stage2", stage2, 40),
        seq_table("decomp", decomp),
        seq_table("lower", lowers),
        f"const int v2t_uc_ccc_count = {len(ccc_keys)};",
        c_array("uint32_t", "v2t_uc_ccc_key", ccc_keys, 8, "0x{:05X}"),
        c_array("uint8_t", "v2t_uc_ccc_val", [ccc[k] for k in ccc_keys], 24),
    ]
    return "\n\n".join(parts) + "\n", len(blocks)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="fail if the committed file is out of date")
    args = ap.parse_args()
    flags, decomp, lowers, ccc = probe()
    check(flags, decomp, lowers, ccc)
    text, nblocks = render(flags, decomp, lowers, ccc)
    if args.check:
        if OUT.read_text() != text:
            sys.exit(f"{OUT} is out of date: run tools/gen_unicode_tables.py")
        print(f"{OUT} is up to date")
        return
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text)
    print(f"wrote {OUT}: {nblocks} blocks, {len(decomp)} decompositions, {len(lowers)} lowercase mappings, "
          f"{len(ccc)} combining classes")


if __name__ == "__main__":
    main()
