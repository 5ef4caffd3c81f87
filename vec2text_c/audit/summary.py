"""The numbers of an audit: headline, sensitive items by kind, distributions, examples."""
from __future__ import annotations

import numpy as np

from .sensitive import KINDS

__all__ = ["summarize", "EXAMPLES"]

EXAMPLES = 5  # best and worst recovered records shown
_BINS = np.linspace(0.0, 1.0, 11)


def _hist(values: list[float], lo: float = 0.0) -> dict:
    edges = _BINS if lo >= 0 else np.linspace(-1.0, 1.0, 21)
    counts, _ = np.histogram(np.clip(values, edges[0], edges[-1]), bins=edges)
    return {"edges": [round(float(e), 3) for e in edges], "counts": [int(c) for c in counts]}


def summarize(rows: list[dict], defence: list[dict], settings: dict, timing: dict, threshold: float = 0.5) -> dict:
    """summary.json's content from the result rows (in sample order) and the defence curve."""
    ok = [r for r in rows if r.get("status") == "ok"]
    errors = [{"id": r["id"], "error": r.get("error", "")} for r in rows if r.get("status") != "ok"]
    with_doc = [r for r in ok if "token_f1" in r]
    cos = [r["cosine"] for r in ok]
    head = {
        "records": len(rows),
        "inverted": len(ok),
        "errors": len(errors),
        "with_documents": len(with_doc),
        "mean_cosine": float(np.mean(cos)) if cos else None,
        "median_cosine": float(np.median(cos)) if cos else None,
        "threshold_token_f1": threshold,
        "lowercased": settings.get("lowercased"),
    }
    if with_doc:
        f1 = [r["token_f1"] for r in with_doc]
        head.update(
            substantially_recovered=int(sum(v >= threshold for v in f1)),
            substantially_recovered_share=float(np.mean([v >= threshold for v in f1])),
            mean_token_f1=float(np.mean(f1)),
            mean_bleu=float(np.mean([r["bleu"] for r in with_doc])),
            exact_match=float(np.mean([bool(r["exact"]) for r in with_doc])),
        )
    sensitive = {}
    for kind in KINDS:
        items = [s for r in with_doc for s in r.get("sensitive", []) if s["kind"] == kind]
        got = sum(bool(s["recovered"]) for s in items)
        sensitive[kind] = {"found": len(items), "recovered": got,
                           "share": (got / len(items)) if items else None,
                           "records_with_item": sum(any(s["kind"] == kind for s in r.get("sensitive", []))
                                                    for r in with_doc)}
    dist = {"cosine": _hist(cos, lo=min(cos, default=0.0))}
    if with_doc:
        dist["token_f1"] = _hist([r["token_f1"] for r in with_doc])

    def example(r: dict) -> dict:
        e = {"id": r["id"], "recovered": r["recovered"], "cosine": r["cosine"]}
        if "token_f1" in r:
            e.update(document=r.get("document"), token_f1=r["token_f1"], bleu=r["bleu"])
        return e

    key = (lambda r: (r["token_f1"], r["cosine"])) if with_doc else (lambda r: (r["cosine"],))
    ranked = sorted(with_doc or ok, key=key, reverse=True)
    return {
        "audit": settings.get("audit"),
        "headline": head,
        "sensitive": sensitive,
        "distributions": dist,
        "defence": defence,
        "best": [example(r) for r in ranked[:EXAMPLES]],
        "worst": [example(r) for r in ranked[::-1][:EXAMPLES]],
        "errors": errors,
        "settings": settings,
        "timing": timing,
    }
