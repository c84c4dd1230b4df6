"""Static Pareto plots (PNG + SVG) of accuracy against one cost, with matplotlib's Agg backend.

Every configuration with metrics is a point coloured by architecture (finished: filled; running or
errored: hollow, never on the front), with a vertical error bar: the 95% interval of its validation
accuracy (``val_acc_ci95``, see ``study.analysis.noise``). The front (selected on validation accuracy, see
``study.analysis.pareto``) is a black step line that starts at the constant predictor (the grey dashed
line: the majority class, at zero cost); trials at or below it are crossed out in grey. Each front
trial's *test* accuracy is a small cross with its own interval, joined to its validation point by a
dotted line, so the selection metric and the reported one are both visible. The best trial of each
architecture is labelled. The cost axis is logarithmic when it spans more than ~1.5 decades.

    from study.analysis.plots import plot_front
    png, svg = plot_front(configs, "train_time_s", "results/demo", anchor={"val_acc": 0.5})
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from study.analysis import format as fmt  # noqa: E402
from study.analysis import pareto  # noqa: E402

ARCH_COLORS = {"cnn": "#1f77b4", "lstm": "#d62728", "fasttext": "#2ca02c"}
EXTRA_COLORS = ["#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#7f7f7f"]
LOG_SPAN = 10 ** 1.5          # a cost axis spanning more than this ratio is drawn in log scale
FIGSIZE, DPI = (11.0, 7.0), 120   # 1320 x 840 px


def arch_colors(archs) -> dict[str, str]:
    """A stable colour per architecture name: fixed for the known three, then a cycle."""
    extra = iter(EXTRA_COLORS * 4)
    return {a: ARCH_COLORS.get(a) or next(extra) for a in sorted(set(map(str, archs)))}


def use_log(values) -> bool:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    return v.size >= 2 and v.max() / v.min() > LOG_SPAN


def chance_level(table: pd.DataFrame) -> float | None:
    """1 / num_classes when the table knows it (``num_classes`` column from the report)."""
    if "num_classes" in table.columns:
        k = pd.to_numeric(table["num_classes"], errors="coerce").dropna()
        if len(k) and k.max() > 0:
            return 1.0 / float(k.max())
    return None


def _bars(table: pd.DataFrame, column: str) -> np.ndarray:
    """100 x the 95% half-widths in ``column`` (0 where unknown: no bar)."""
    ci = pd.to_numeric(table.get(column, pd.Series(np.nan, index=table.index)), errors="coerce")
    return 100 * ci.fillna(0.0).to_numpy(float)


def plot_front(table: pd.DataFrame, cost: str, out_dir, accuracy: str = pareto.ACCURACY,
               reported: str = pareto.REPORTED_ACCURACY, anchor: dict | None = None) -> tuple[Path, Path]:
    """Draw ``pareto_<cost>.png`` and ``.svg`` into ``out_dir``; returns both paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    label, _ = pareto.COSTS.get(cost, (cost, ""))
    acc = pd.to_numeric(table.get(accuracy), errors="coerce")
    cst = pd.to_numeric(table.get(cost), errors="coerce")
    has = np.isfinite(acc) & np.isfinite(cst) & (cst > 0)
    rows = table[has]
    finished = pareto.measured(table, cost, accuracy)[has]
    colors = arch_colors(table["arch"]) if len(table) else {}

    fig, ax = plt.subplots(figsize=FIGSIZE, dpi=DPI)
    for arch, color in colors.items():
        mine = rows["arch"].astype(str) == arch
        done, other = rows[mine & finished], rows[mine & ~finished]
        if len(done):
            ax.errorbar(done[cost], 100 * done[accuracy], yerr=_bars(done, f"{accuracy}_ci95"), fmt="none",
                        ecolor=color, alpha=0.45, elinewidth=1.2, capsize=3, zorder=2)
            ax.scatter(done[cost], 100 * done[accuracy], s=46, color=color, alpha=0.8,
                       edgecolors="white", linewidths=0.6, label=f"{arch} ({len(done)} finished)",
                       zorder=3)
        if len(other):
            ax.scatter(other[cost], 100 * other[accuracy], s=46, facecolors="none", edgecolors=color,
                       linewidths=1.2, label=f"{arch} ({len(other)} not finished)", zorder=3)

    base = anchor.get(accuracy) if anchor else None
    base = 100 * float(base) if base is not None and np.isfinite(base) else None
    log = use_log(rows[cost])
    positive = rows[cost][rows[cost] > 0]
    left = (positive.min() / 1.6 if log else 0.0) if len(positive) else 0.0
    front = pareto.front(table, cost, accuracy)
    if len(front):
        fx, fy = front[cost].to_numpy(float), 100 * front[accuracy].to_numpy(float)
        if base is not None:    # the front starts at the constant predictor: zero cost (the axis' left end)
            fx, fy = np.r_[left, fx], np.r_[base, fy]
        ax.step(fx, fy, where="post", color="black", linewidth=1.6, zorder=2,
                label=f"Pareto front on {accuracy} ({len(front)} trials)")
        fx, fy = front[cost].to_numpy(float), 100 * front[accuracy].to_numpy(float)
        test = 100 * pd.to_numeric(front.get(reported), errors="coerce").to_numpy(float)
        ok = np.isfinite(test)
        ax.vlines(fx[ok], fy[ok], test[ok], colors="0.45", linestyles=":", linewidth=1, zorder=2)
        ax.errorbar(fx[ok], test[ok], yerr=_bars(front, f"{reported}_ci95")[ok], fmt="none", ecolor="0.5",
                    elinewidth=0.8, capsize=2, zorder=3)
        ax.scatter(fx[ok], test[ok], marker="x", s=40, color=[colors[str(a)] for a in front["arch"][ok]],
                   linewidths=1.6, zorder=4)
        ax.plot([], [], "x", color="0.3", markersize=7, mew=1.6, label=f"{reported} of front trials (95% interval)")
    if "below_constant" in rows.columns and rows["below_constant"].astype(bool).any():
        low = rows[rows["below_constant"].astype(bool)]
        ax.scatter(low[cost], 100 * low[accuracy], marker="x", s=90, color="0.35", linewidths=1.2, zorder=4,
                   label=f"at or below the constant predictor ({len(low)}): never on a front")

    if "collapsed" in rows.columns and rows["collapsed"].astype(bool).any():
        bad = rows[rows["collapsed"].astype(bool)]
        ax.scatter(bad[cost], 100 * bad[accuracy], s=150, facecolors="none", edgecolors="black",
                   linewidths=1.0, zorder=2, label=f"collapsed to one class ({len(bad)})")

    chance = chance_level(table)
    if base is not None:
        ax.axhline(base, color="0.5", linestyle="--", linewidth=1, zorder=1,
                   label=f"constant predictor (majority class): {base:.1f}% at zero cost")
    elif chance is not None:
        ax.axhline(100 * chance, color="0.5", linestyle="--", linewidth=1, zorder=1,
                   label=f"chance (1/{round(1 / chance)} = {100 * chance:.1f}%)")

    if log:
        ax.set_xscale("log")
    if len(positive):
        ax.set_xlim(left=left)
    ax.set_xlabel(label + (", log scale" if ax.get_xscale() == "log" else ""), fontsize=12)
    ax.set_ylabel("accuracy (%)", fontsize=12)
    ax.set_title(f"{accuracy} vs {label}\nfront selected on validation accuracy (dots, mean over runs, "
                 f"95% bars); {reported} of each front trial: a cross", fontsize=12)
    ax.grid(True, which="major", alpha=0.3)
    ax.tick_params(labelsize=11)
    has_labels = bool(ax.get_legend_handles_labels()[0])
    legend = ax.legend(loc="best", fontsize=10, framealpha=0.9) if has_labels else None
    fig.tight_layout()      # before labelling: labels are placed in display pixels of the final layout
    if rows.empty:
        ax.text(0.5, 0.5, "no trial has metrics yet", ha="center", va="center",
                transform=ax.transAxes, fontsize=14, color="0.4")
    else:
        _label_best(fig, ax, rows[finished] if finished.any() else rows, rows, cost, accuracy,
                    reported, colors, legend)
    png, svg = out_dir / f"pareto_{cost}.png", out_dir / f"pareto_{cost}.svg"
    fig.savefig(png, dpi=DPI)
    fig.savefig(svg)
    plt.close(fig)
    return png, svg


def _label_best(fig, ax, rows, all_rows, cost, accuracy, reported, colors, legend) -> None:
    """Annotate each architecture's best trial (by ``accuracy``), moving labels apart greedily.

    Each label tries offsets (in points) and keeps the first whose box stays inside the axes, covers no
    data point, and is clear of the legend and of the labels placed before it.
    """
    # ties on accuracy: label the cheaper trial, the one a front would keep
    best = rows.sort_values([accuracy, cost], ascending=[False, True], kind="stable")
    best = best.groupby(best["arch"].astype(str), sort=False).head(1)
    offsets = [(dx, dy) for dy in (22, -42, 60, -80, 100, -120, 0) for dx in (18, -200, 60, -260)]
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    axes_box = ax.get_window_extent(renderer)
    placed = [legend.get_window_extent(renderer)] if legend is not None else []
    xy = np.column_stack([all_rows[cost].to_numpy(float), 100 * all_rows[accuracy].to_numpy(float)])
    points = ax.transData.transform(xy) if len(xy) else np.empty((0, 2))   # (n, 2) display px
    for _, r in best.iterrows():
        state = "" if r.get("status") in pareto.FINISHED else f" ({str(r.get('status')).lower()})"
        text = (f"best {r['arch']}: {r['trial_id']}{state}\n{accuracy} {100 * r[accuracy]:.1f}%, "
                f"{reported} {fmt.percent(r.get(reported))}")
        ann = ax.annotate(text, (r[cost], 100 * r[accuracy]), textcoords="offset points",
                          xytext=offsets[0], fontsize=10, color="black", zorder=5,
                          bbox=dict(boxstyle="round,pad=0.3", fc="white", ec=colors[str(r["arch"])],
                                    alpha=0.92),
                          arrowprops=dict(arrowstyle="-", color=colors[str(r["arch"])], lw=1.2))
        for off in offsets:
            box = _text_box(ann, off, renderer)
            inside = (box.x0 >= axes_box.x0 and box.x1 <= axes_box.x1 and box.y0 >= axes_box.y0
                      and box.y1 <= axes_box.y1)
            covers = ((points[:, 0] > box.x0 - 4) & (points[:, 0] < box.x1 + 4)
                      & (points[:, 1] > box.y0 - 4) & (points[:, 1] < box.y1 + 4)).any()
            if inside and not covers and not any(box.overlaps(p) for p in placed):
                break
        else:   # nowhere clear of everything: settle for the first offset clear of other labels
            for off in offsets:
                box = _text_box(ann, off, renderer)
                if not any(box.overlaps(p) for p in placed) and axes_box.x0 <= box.x0 \
                        and box.x1 <= axes_box.x1 and axes_box.y0 <= box.y0 and box.y1 <= axes_box.y1:
                    break
        placed.append(_text_box(ann, ann.xyann, renderer))


def _text_box(ann, offset, renderer):
    """Display box of the annotation's text (not its arrow) at ``offset`` points from its target."""
    ann.xyann = offset
    ann.update_positions(renderer)      # else the text box still sits at the previous offset
    return Text.get_window_extent(ann, renderer)

