"""report.html: one self-contained page (inline SVG figures, no scripts, nothing fetched).

Sections, each with a stable id: headline (and its table), sensitive (items by kind),
distributions (cosine and token F1 histograms), defence (the noise curve: figure and table),
examples (best and worst recovered records beside their originals), errors (records not
inverted), settings. Every text that comes from the store is HTML-escaped.
"""
from __future__ import annotations

import html
import io
import json
from pathlib import Path

__all__ = ["write_report", "pct", "num"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:70em;color:#222;padding:0 1em}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.n{text-align:right;font-variant-numeric:tabular-nums}
.big{font-size:1.4em;font-weight:600;margin:.4em 0}.note{color:#555;font-size:.92em}
figure{display:inline-block;margin:.5em 1em .5em 0}figcaption{font-size:.9em;color:#444}
.ex td{max-width:30em}td{overflow-wrap:anywhere}
"""


def pct(v) -> str:
    """A share as the report prints it."""
    return "n/a" if v is None else f"{100.0 * v:.1f} %"


def num(v, digits: int = 3) -> str:
    """A number as the report prints it."""
    return "n/a" if v is None else f"{v:.{digits}f}"


def _e(s) -> str:
    return html.escape("" if s is None else str(s), quote=True)


def _figure(width: float, height: float):
    """A matplotlib Figure of its own: no pyplot, so a notebook's backend and figures are left alone."""
    try:
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError(f"the audit report's figures need matplotlib (pip install 'vec2text_c[audit]'): {e}") from None
    return Figure(figsize=(width, height))


def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    text = buf.getvalue()
    return text[text.find("<svg"):]  # drop the XML prolog and DOCTYPE: inline SVG in HTML


def _hist_figure(dist: dict, xlabel: str, color: str) -> str:
    edges, counts = dist["edges"], dist["counts"]
    fig = _figure(4.6, 3.0)
    ax = fig.subplots()
    ax.bar(edges[:-1], counts, width=[b - a for a, b in zip(edges[:-1], edges[1:])], align="edge", color=color,
           edgecolor="white")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("records")
    ax.set_xlim(edges[0], edges[-1])
    return _svg(fig)


def _defence_figure(curve: list[dict], recall_key: str) -> str:
    xs = [c["noise"] for c in curve]
    pos = [x if x > 0 else min([v for v in xs if v > 0] or [1e-3]) / 10 for x in xs]  # 0 on a log axis
    fig = _figure(6.0, 3.4)
    ax = fig.subplots()
    ax.plot(pos, [c[recall_key] for c in curve], "o-", color="#2a7", label=f"retrieval {recall_key.replace('_', ' ')}")
    ax.plot(pos, [c["cosine"] for c in curve], "s-", color="#c63", label="leak: cosine")
    if all(c.get("token_f1") is not None for c in curve):
        ax.plot(pos, [c["token_f1"] for c in curve], "^-", color="#36c", label="leak: token F1")
    ax.set_xscale("log")
    ax.set_xticks(pos)
    ax.set_xticklabels([f"{x:g}" for x in xs])
    ax.set_xlabel("noise level λ")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=8, loc="lower left")
    ax.grid(alpha=0.3)
    return _svg(fig)


def _table(tid: str, header: list[str], rows: list[list], numeric: set[int] = frozenset(), cls: str = "") -> str:
    out = [f'<table id="{tid}"{f" class={cls!r}" if cls else ""}><thead><tr>']
    out += [f"<th>{_e(h)}</th>" for h in header]
    out.append("</tr></thead><tbody>")
    for row in rows:
        out.append("<tr>" + "".join(f'<td class="n">{_e(v)}</td>' if i in numeric else f"<td>{_e(v)}</td>"
                                    for i, v in enumerate(row)) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def write_report(path: str | Path, summary: dict, rows: list[dict]) -> None:
    """Write the report of `summary` (summarize's output) to `path`."""
    h, s, st = summary["headline"], summary["sensitive"], summary["settings"]
    case = " (lowercased: the embedder is uncased)" if h.get("lowercased") else ""
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Leakage audit {_e(summary['audit'])}"
             f"</title><style>{_CSS}</style></head><body>"]
    parts.append(f"<h1>Embedding leakage audit</h1><p class='note'>Source: {_e(st['source'].get('kind'))} "
                 f"{_e(st['source'].get('path'))} {_e(st['source'].get('collection') or st['source'].get('table') or '')}"
                 f" · model {_e(st['corrector'])}{' via aligner ' + _e(st['aligner']) if st.get('aligner') else ''}"
                 f" · audit {_e(summary['audit'])}</p>")

    parts.append("<section id='headline'><h2>Headline</h2>")
    if h.get("with_documents"):
        parts.append(f"<p class='big' id='headline-text'>{pct(h['substantially_recovered_share'])} of the audited records "
                     f"give their text back substantially (token F1 ≥ {h['threshold_token_f1']:g}"
                     f"{'; lowercased: the embedder is uncased' if h.get('lowercased') else ''}).</p>")
    else:
        parts.append(f"<p class='big' id='headline-text'>Mean cosine of the recovered texts to the stored vectors: "
                     f"{num(h['mean_cosine'])}. The store keeps no documents, so text overlap is not measured.</p>")
    hrows = [["records audited", h["records"]], ["inverted", h["inverted"]], ["not inverted (errors)", h["errors"]],
             ["mean cosine (recovered text's embedding vs stored vector)", num(h["mean_cosine"])],
             ["median cosine", num(h["median_cosine"])]]
    if h.get("with_documents"):
        hrows += [[f"substantially recovered (token F1 ≥ {h['threshold_token_f1']:g})",
                   f"{h['substantially_recovered']} ({pct(h['substantially_recovered_share'])})"],
                  [f"mean token F1{case}", num(h["mean_token_f1"])], [f"mean BLEU{case}", num(h["mean_bleu"], 1)],
                  [f"exact match{case}", pct(h["exact_match"])]]
    parts.append(_table("headline-table", ["measure", "value"], hrows, numeric={1}) + "</section>")

    parts.append("<section id='sensitive'><h2>Sensitive items recovered</h2>")
    if h.get("with_documents"):
        srows = [[k, v["found"], v["recovered"], pct(v["share"]), v["records_with_item"]] for k, v in s.items()]
        parts.append(_table("sensitive-table", ["kind", "in the documents", "recovered", "share recovered",
                                                "records holding one"], srows, numeric={1, 2, 3, 4}))
        parts.append("<p class='note'>An item counts as recovered when it appears in the recovered text "
                     "(case-insensitive; phone numbers by their digits).</p>")
    else:
        parts.append("<p class='note'>The store keeps no documents: sensitive items cannot be checked.</p>")
    parts.append("</section>")

    d = summary["distributions"]
    parts.append("<section id='distributions'><h2>Distributions</h2>")
    parts.append(f"<figure id='fig-cosine'>{_hist_figure(d['cosine'], 'cosine to the stored vector', '#c63')}"
                 "<figcaption>Cosine of each recovered text's embedding to its stored vector</figcaption></figure>")
    if "token_f1" in d:
        parts.append(f"<figure id='fig-token-f1'>{_hist_figure(d['token_f1'], 'token F1', '#36c')}"
                     f"<figcaption>Token F1 of each recovered text against its document{case}</figcaption></figure>")
    parts.append("</section>")

    curve = summary["defence"]
    parts.append("<section id='defence'><h2>Defence: Gaussian noise on the stored vectors</h2>")
    if curve:
        rk = next(k for k in curve[0] if k.startswith("recall_at_"))
        parts.append("<p class='note'>Each stored vector v becomes v + λ·|v|·ε, ε ~ N(0, I). Leakage: inverting the "
                     f"noisy vectors of {curve[0]['records']} records (cosine to the clean vector, token F1 to the "
                     f"document). Retrieval cost: {rk.replace('_', ' ')}, the share of noisy vectors whose own record is "
                     f"among the {rk.rsplit('_', 1)[1]} nearest of the store's {curve[0]['retrieval_database']} clean "
                     "vectors (all of them, not only the audited sample).</p>")
        parts.append(f"<figure id='fig-defence'>{_defence_figure(curve, rk)}<figcaption>Leakage and retrieval against "
                     "the noise level</figcaption></figure>")
        drows = [[f"{c['noise']:g}", num(c["cosine"]), num(c.get("token_f1")), num(c.get("bleu"), 1), pct(c[rk])]
                 for c in curve]
        parts.append(_table("defence-table", ["noise λ", "leak: cosine", "leak: token F1", "leak: BLEU",
                                              rk.replace("_", " ")], drows, numeric={1, 2, 3, 4}))
    else:
        parts.append("<p class='note'>Not measured (no noise levels above 0, or defence sample 0).</p>")
    parts.append("</section>")

    parts.append("<section id='examples'><h2>Examples</h2>")
    for name, title in (("best", "Best recovered"), ("worst", "Worst recovered")):
        ex = summary[name]
        if ex and "document" in ex[0]:
            erows = [[e["id"], e["document"], e["recovered"], num(e["token_f1"]), num(e["cosine"])] for e in ex]
            header = ["id", "original", "recovered", "token F1", "cosine"]
            numeric = {3, 4}
        else:
            erows = [[e["id"], e["recovered"], num(e["cosine"])] for e in ex]
            header, numeric = ["id", "recovered", "cosine"], {2}
        parts.append(f"<h3>{title}</h3>" + _table(f"{name}-table", header, erows, numeric=numeric, cls="ex"))
    parts.append("</section>")

    if summary["errors"]:
        parts.append("<section id='errors'><h2>Records not inverted</h2>")
        parts.append(_table("errors-table", ["id", "why"], [[e["id"], e["error"]] for e in summary["errors"]]))
        parts.append("</section>")

    parts.append("<section id='settings'><h2>Settings</h2>")
    flat = [[k, json.dumps(v, default=str) if isinstance(v, (dict, list)) else "none" if v is None else v]
            for k, v in st.items()]
    flat += [[f"timing: {k}", v] for k, v in summary["timing"].items()]
    parts.append(_table("settings-table", ["setting", "value"], flat) + "</section>")
    parts.append("</body></html>\n")
    Path(path).write_text("".join(parts), encoding="utf-8")
