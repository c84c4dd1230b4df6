"""``pareto.html``: one self-contained interactive page of the Pareto fronts (works offline).

No script is loaded from the network: each cost gets an inline SVG scatter drawn here in Python (one
``<circle>`` per configuration with its 95% interval as a vertical line, the front as a step path from
the constant predictor's dashed line), and about twenty lines of inline JavaScript show a tooltip with
the trial's hyperparameters and metrics on hover. The default costs (``pareto.DEFAULT_PLOTS``) come
first; the others are folded in ``<details>``. A table of every configuration (failed ones too) closes
the page.

    from study.analysis.page import write_page
    write_page(configs, fronts, "results/demo/pareto.html", anchor={"val_acc": 0.5})
"""
from __future__ import annotations

import html
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.ticker import LogLocator, MaxNLocator

from study.analysis import format as fmt
from study.analysis import pareto
from study.analysis.plots import arch_colors, use_log
from study.analysis.table import METRICS, OPTIONAL_METRICS

W, H = 960, 560                       # SVG canvas (px)
LEFT, RIGHT, TOP, BOTTOM = 80, 30, 20, 60
# The tooltip: status, the numeric metrics (one list, table.METRICS), the derived costs, then the flags.
TOOLTIP = ["status", "n_runs", "run_ids", "val_acc_ci95", "test_acc_ci95", *METRICS, *OPTIONAL_METRICS,
           *pareto.DERIVED_COSTS, *(c for c in pareto.COSTS if c not in METRICS + OPTIONAL_METRICS),
           "pred_hist", "collapsed", "below_constant"]
TABLE = ["trial_id", "arch", "status", "n_runs", "val_acc", "val_acc_ci95", "test_acc", "test_acc_ci95",
         "collapsed", "below_constant", "epochs", "train_time_s", "eval_time_s", "infer_ms_per_review",
         "peak_rss_mb", "params_no_embedding", "samples_per_s", "train_cost", "cost_per_1m_reviews"]

SCRIPT = """
const tip = document.getElementById('tip');
function show(ev) {
  const t = TRIALS[ev.target.dataset.i];
  let rows = '';
  for (const [k, v] of Object.entries(t)) {
    rows += '<tr><th>' + esc(k) + '</th><td>' + esc(String(v)) + '</td></tr>';
  }
  tip.innerHTML = '<table>' + rows + '</table>';
  tip.style.display = 'block';
  const x = Math.min(ev.pageX + 14, window.scrollX + window.innerWidth - tip.offsetWidth - 10);
  tip.style.left = x + 'px';
  tip.style.top = (ev.pageY + 14) + 'px';
}
function esc(s) {
  return s.replace(/[&<>"]/g, c => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;'}[c]));
}
for (const c of document.querySelectorAll('circle[data-i]')) {
  c.addEventListener('mousemove', show);
  c.addEventListener('mouseleave', () => { tip.style.display = 'none'; });
}
"""

STYLE = """
body { font-family: sans-serif; margin: 24px; color: #222; }
svg { background: #fff; border: 1px solid #ddd; max-width: 100%; height: auto; }  /* shrinks to the screen */
circle[data-i] { cursor: pointer; pointer-events: visible; }  /* hollow marks hover inside too */
circle[data-i]:hover { stroke: #000; stroke-width: 2; }
#tip { position: absolute; display: none; background: #fffff4; border: 1px solid #888; padding: 6px;
       font-size: 12px; box-shadow: 2px 2px 6px #0003; max-width: 420px;
       pointer-events: none; }  /* never hides the mark next to the one hovered */
#tip th { text-align: left; padding-right: 10px; font-weight: normal; color: #555; }
table.trials { border-collapse: collapse; font-size: 13px; display: block; overflow-x: auto; }
@media (max-width: 640px) {  /* a phone: the charts shrink ~2.5x, so their text is drawn larger */
  body { margin: 10px; }
  h2 { font-size: 1.2em; }
  svg.pareto text { font-size: 22px; }
  svg.pareto circle.trial { r: 11px; }   /* a mark a finger can hit */
  #tip { max-width: 85vw; }
}
table.trials td, table.trials th { border: 1px solid #ccc; padding: 2px 6px; }
"""


def write_page(table: pd.DataFrame, fronts: dict[str, list[str]], path,
               accuracy: str = pareto.ACCURACY, title: str = "Pareto fronts", anchor: dict | None = None) -> Path:
    """Write the page; ``fronts`` is ``{cost: [trial ids]}``; ``anchor`` the constant predictor
    (``{"val_acc": ...}`` as in ``pareto.json``)."""
    colors = arch_colors(table["arch"]) if len(table) else {}
    records = [_record(r) for _, r in table.iterrows()]
    base = (anchor or {}).get(accuracy)
    base = float(base) if base is not None and np.isfinite(base) else None
    sections = [_section(table, cost, ids, accuracy, colors, base) for cost, ids in fronts.items()
                if cost in pareto.DEFAULT_PLOTS]
    more = [_section(table, cost, ids, accuracy, colors, base) for cost, ids in fronts.items()
            if cost not in pareto.DEFAULT_PLOTS]
    if more:
        sections.append(f"<details><summary>More cost axes ({len(more)})</summary>{''.join(more)}</details>")
    constant = ("" if base is None else f" Grey dashed line: the constant predictor (always the train "
                f"split's majority class, {100 * base:.1f}% at zero cost), where every front starts; "
                "trials at or below it (crossed out) are on no front.")
    legend = " ".join(f'<span style="color:{c}">&#9679;</span> {html.escape(a)}'
                      for a, c in colors.items())
    data = json.dumps(records, default=str).replace("</", "<\\/")   # cannot close the script tag
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{html.escape(title)}</title>
<style>{STYLE}</style></head><body>
<h1>{html.escape(title)}</h1>
<p>Fronts are selected on <b>{accuracy}</b> (validation accuracy, the y axis: the mean over a
configuration's runs, with its 95% interval as a vertical bar); test accuracy is shown in each trial's
tooltip and in the table below. Filled dots: finished trials; hollow: running or failed (never on a
front). Black step line: the front.{constant} Hover a dot for the trial's hyperparameters and
metrics. {legend}</p>
{''.join(sections)}
<h2>All trials</h2>
{_trials_table(table)}
<div id="tip"></div>
<script>
const TRIALS = {data};
{SCRIPT}</script>
</body></html>
"""
    path = Path(path)
    path.write_text(page, encoding="utf-8")
    return path


def _record(row: pd.Series) -> dict:
    """The tooltip's fields for one trial: id, arch, metrics, then hyperparameters."""
    out = {"trial_id": row.get("trial_id"), "arch": row.get("arch")}
    for key in TOOLTIP + sorted(k for k in row.index if str(k).startswith("config/")):
        if key in row.index and (value := fmt.cell(row[key])) != "n/a":    # skip other archs' keys
            out[key] = value
    return out




def _section(table, cost, ids, accuracy, colors, base=None) -> str:
    label = pareto.COSTS.get(cost, (cost, ""))[0]
    acc = pd.to_numeric(table.get(accuracy), errors="coerce").to_numpy(float)
    cst = pd.to_numeric(table.get(cost), errors="coerce").to_numpy(float)
    ci = pd.to_numeric(table.get(f"{accuracy}_ci95", pd.Series(np.nan, index=table.index)),
                       errors="coerce").fillna(0.0).to_numpy(float)
    has = np.isfinite(acc) & np.isfinite(cst) & (cst > 0)
    if not has.any():
        return f"<h2>{html.escape(accuracy)} vs {html.escape(label)}</h2><p>No trial has both yet.</p>"
    log = use_log(cst[has])
    x0, x1 = cst[has].min(), cst[has].max()
    y0, y1 = (acc[has] - ci[has]).min(), (acc[has] + ci[has]).max()
    if base is not None:
        y0, y1 = min(y0, base), max(y1, base)
    if log:
        x0, x1 = x0 / 1.3, x1 * 1.3
    else:
        pad = (x1 - x0) * 0.05 or max(abs(x0) * 0.1, 1.0)
        x0, x1 = max(0.0, x0 - pad), x1 + pad
    ypad = (y1 - y0) * 0.08 or 0.02
    y0, y1 = max(0.0, y0 - ypad), min(1.0, y1 + ypad)
    tx = (lambda v: math.log10(v)) if log else (lambda v: v)

    def sx(v):
        return LEFT + (tx(v) - tx(x0)) / (tx(x1) - tx(x0)) * (W - LEFT - RIGHT)

    def sy(v):
        return H - BOTTOM - (v - y0) / (y1 - y0) * (H - TOP - BOTTOM)

    parts = [_axes(x0, x1, y0, y1, log, sx, sy, label, accuracy)]
    if base is not None:
        parts.append(f'<line class="anchor" x1="{LEFT}" y1="{sy(base):.1f}" x2="{W - RIGHT}" y2="{sy(base):.1f}" '
                     f'stroke="#888" stroke-dasharray="6,4"/><text x="{W - RIGHT - 4}" y="{sy(base) - 5:.1f}" '
                     f'font-size="12" fill="#666" text-anchor="end">constant predictor (majority class) '
                     f'{100 * base:.1f}%, zero cost</text>')
    finished = pareto.measured(table, cost, accuracy).to_numpy()
    low = table["below_constant"].astype(bool).to_numpy() if "below_constant" in table else np.zeros(len(table), bool)
    for i in np.flatnonzero(has):
        color = colors[str(table["arch"].iloc[i])]
        fill = color if finished[i] else "none"
        x, y = sx(cst[i]), sy(acc[i])
        if ci[i] > 0:
            parts.append(f'<line class="ci" x1="{x:.1f}" y1="{sy(acc[i] - ci[i]):.1f}" x2="{x:.1f}" '
                         f'y2="{sy(acc[i] + ci[i]):.1f}" stroke="{color}" stroke-opacity="0.5" stroke-width="1.5"/>')
        if low[i]:
            parts.append(f'<path d="M{x - 8:.1f},{y - 8:.1f} L{x + 8:.1f},{y + 8:.1f} M{x - 8:.1f},{y + 8:.1f} '
                         f'L{x + 8:.1f},{y - 8:.1f}" stroke="#555" stroke-width="1.2"/>')
        # class and data-* attributes: stable hooks for styling and for the browser test
        who = f'data-trial="{html.escape(str(table["trial_id"].iloc[i]))}" ' \
              f'data-status="{html.escape(str(table["status"].iloc[i]))}"'
        parts.append(f'<circle class="trial" data-i="{i}" {who} cx="{x:.1f}" cy="{y:.1f}" r="6" '
                     f'fill="{fill}" fill-opacity="0.8" stroke="{color}" stroke-width="1.5"/>')
    pos = {str(t): i for i, t in enumerate(table["trial_id"])}
    pts = [(cst[pos[t]], acc[pos[t]]) for t in ids if t in pos]
    if pts:   # step line from the constant predictor: across to each front trial's cost, then up to it
        start = f"M{LEFT},{sy(base):.1f} L{sx(pts[0][0]):.1f},{sy(base):.1f} " if base is not None else "M"
        d = f"{start}{'L' if base is not None else ''}{sx(pts[0][0]):.1f},{sy(pts[0][1]):.1f}"
        for (_, ya), (xb, yb) in zip(pts, pts[1:]):
            d += f" L{sx(xb):.1f},{sy(ya):.1f} L{sx(xb):.1f},{sy(yb):.1f}"
        parts.insert(1, f'<path class="front" data-trials="{html.escape(" ".join(ids))}" d="{d}" '
                        f'fill="none" stroke="#000" stroke-width="1.8"/>')
    return (f"<h2>{html.escape(accuracy)} vs {html.escape(label)}</h2>"
            f"<p>{len(pts)} trials on the front: {html.escape(', '.join(ids))}</p>"
            f'<svg class="pareto" data-cost="{html.escape(cost)}" xmlns="http://www.w3.org/2000/svg" '
            f'width="{W}" height="{H}" viewBox="0 0 {W} {H}">{"".join(parts)}</svg>')


def _axes(x0, x1, y0, y1, log, sx, sy, xlabel, accuracy) -> str:
    base, right = H - BOTTOM, W - RIGHT
    out = [f'<line x1="{LEFT}" y1="{base}" x2="{right}" y2="{base}" stroke="#333"/>',
           f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{base}" stroke="#333"/>']
    xt = LogLocator(base=10, subs=(1.0, 2.0, 5.0)).tick_values(x0, x1) if log \
        else MaxNLocator(8).tick_values(x0, x1)
    for v in [v for v in xt if x0 <= v <= x1]:
        x = sx(v)
        out.append(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{base}" stroke="#eee"/>'
                   f'<text x="{x:.1f}" y="{base + 18}" font-size="12" text-anchor="middle">'
                   f'{_tick(v)}</text>')
    for v in [v for v in MaxNLocator(8).tick_values(100 * y0, 100 * y1) if 100 * y0 <= v <= 100 * y1]:
        y = sy(v / 100)
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" stroke="#eee"/>'
                   f'<text x="{LEFT - 8}" y="{y + 4:.1f}" font-size="12" text-anchor="end">{v:g}</text>')
    out.append(f'<text x="{(LEFT + right) / 2}" y="{H - 15}" font-size="14" text-anchor="middle">'
               f'{html.escape(xlabel)}{", log scale" if log else ""}</text>')
    out.append(f'<text transform="translate(20,{(TOP + base) / 2}) rotate(-90)" font-size="14" '
               f'text-anchor="middle">{html.escape(accuracy)} (%)</text>')
    return "".join(out)


def _tick(v: float) -> str:
    if v >= 1e6:
        return f"{v / 1e6:g}M"
    if v >= 1e3:
        return f"{v / 1e3:g}k"
    return f"{v:g}"


def _trials_table(table: pd.DataFrame) -> str:
    cols = [c for c in TABLE if c in table.columns]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(fmt.cell(r[c])))}</td>" for c in cols) + "</tr>"
                   for _, r in table.iterrows())
    return f'<table class="trials"><tr>{head}</tr>{body}</table>'
