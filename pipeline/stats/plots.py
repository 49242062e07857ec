"""Figures of the statistics, for a paper: PNG and an SVG twin of each.

One colour per cell type in every figure (:func:`colour_of`), axis labels in words with units,
n per group in the legends, panel letters, and each cell type's own weight-bin edges.  Each
figure's caption (what it shows, how it was computed) is in :data:`CAPTIONS`, which the report
prints under it.
"""
from __future__ import annotations

import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

#: y limits of every panel that shows a share (0-1) of synapses
FRACTION_LIMITS = (0, 1.05)
#: the same colour for a cell type in every figure (others take the next of the cycle)
TYPE_COLOURS = {"pyr": "#1f5fa8", "PV": "#c2342b"}
_OTHER = ["#2b8a3e", "#8a5a00", "#6a3d9a", "#0f7c80", "#7f7f7f"]
DAY = "days since the first session"
matplotlib.rcParams.update({"svg.hashsalt": "synapse-pipeline", "svg.fonttype": "none",
                            "font.size": 9, "axes.spines.top": False,
                            "axes.spines.right": False})

#: title and caption of each figure, by file stem (the report prints them)
CAPTIONS = {
    "weights_lognormal": (
        "Synapse weights are log-normal",
        "Histogram of ln weight of every present synapse-session per cell type (weights: "
        "background-subtracted PSD-95 fluorescence normalised per cell and session, median of "
        "present synapses about 1), with the normal density of the same mean and SD; n = "
        "synapse-sessions (cells). The log-normal fit per session and its comparison with gamma "
        "and normal fits are in lognormal.csv."),
    "survival": (
        "Survival of first-session synapses, by cell type and by initial size",
        "A: share of the synapses present in each cell's first session still present on each "
        "later day, among those observed that day (synapses outside the stack or in a badly "
        "registered session are left out, not counted lost): thin lines per cell, points the mean "
        "over cells ± SEM; dashed: Kaplan-Meier estimate of the time to first absence pooled "
        "over synapses (synapses born later enter late; 95 % CI shaded). The two differ by "
        "definition: the first counts a synapse that returns after an absence as surviving, "
        "Kaplan-Meier ends it at its first absence. B: the first definition by quartile of "
        "first-session weight (Q1 smallest), pooled over the cells of a type."),
    "kesten": (
        "Weight changes follow a Kesten process",
        "A: weight change to the next session against weight, for every pair of consecutive "
        "sessions of a synapse (a loss counts as a change to 0). B, C: mean and variance of the "
        "change in equal-count weight bins, with the binned fit (solid; Kesten: mean a*w + c, "
        "variance b*w^2 + d) and the maximum-likelihood fit to persisting pairs (dotted). "
        "Multiplicative noise shows as variance growing with w^2; an additive part as variance "
        "above 0 at w = 0 (kesten.csv: fits with CIs, AIC and likelihood-ratio tests)."),
    "markov_transition": (
        "Transitions between weight states",
        "Probability of each state in the next session given the state in this one (rows sum to "
        "1): absent, or a bin of ln weight with equal counts per cell type; each type's own bin "
        "edges label its panel. Counts and 95 % bootstrap CIs are in markov_transition.csv."),
    "markov_stationary": (
        "The Markov chain reproduces the weight distribution and the survival",
        "Left panels, per cell type: the chain's stationary share of present synapses in each "
        "weight bin (95 % bootstrap CI) beside the share observed in the last session. Right: "
        "the share of first-session synapses present on each later day, observed (points) and "
        "predicted by the chain from the first session's states (line, 95 % CI)."),
}


def colour_of(cell_type: str, types=()) -> str:
    """The cell type's colour in every figure."""
    if cell_type in TYPE_COLOURS:
        return TYPE_COLOURS[cell_type]
    others = [t for t in sorted(types) if t not in TYPE_COLOURS]
    k = others.index(cell_type) if cell_type in others else 0
    return _OTHER[k % len(_OTHER)]


def bin_label(label: str) -> str:
    """A weight bin's label in words: 'w 0-0.654' -> 'w < 0.65', 'w 1.54-inf' -> 'w > 1.54'."""
    m = re.fullmatch(r"w (-?[\d.e+-]+|-inf)-(-?[\d.e+-]+|inf)", str(label))
    if not m:
        return str(label)
    low, high = m.groups()
    if high == "inf":
        return f"w > {float(low):.2g}"
    if low in ("-inf",) or float(low) == 0:
        return f"w < {float(high):.2g}"
    return f"w {float(low):.2g}-{float(high):.2g}"


def _letter(ax, letter: str) -> None:
    ax.text(-0.14, 1.04, letter, transform=ax.transAxes, fontsize=12, fontweight="bold",
            va="bottom")


def _save(fig, path):
    """The figure as PNG at ``path`` and as SVG beside it (same stem)."""
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    fig.savefig(str(path)[:-4] + ".svg", metadata={"Date": None})
    plt.close(fig)


def _n(table, ct) -> str:
    g = table[table["cell_type"] == ct]
    return f"{g['cell'].nunique()} cell{'s' if g['cell'].nunique() != 1 else ''}"


def weight_histograms(table, lognormal, path):
    types = sorted(table["cell_type"].unique())
    fig, axes = plt.subplots(1, len(types), figsize=(3.6 * len(types), 3.0), squeeze=False)
    for k, (ax, ct) in enumerate(zip(axes[0], types)):
        w = table.loc[(table["cell_type"] == ct) & (table["present"] == 1), "weight"]
        lw = np.log(w[w > 0])
        col = colour_of(ct, types)
        ax.hist(lw, bins=30, density=True, color=col, alpha=0.45,
                label=f"n = {len(lw)} ({_n(table, ct)})")
        mu, sd = lw.mean(), lw.std(ddof=0)
        x = np.linspace(lw.min(), lw.max(), 200)
        ax.plot(x, stats.norm.pdf(x, mu, sd), color=col, label=f"normal, SD {sd:.2f}")
        ax.set(title=ct, xlabel="ln weight (weight normalised per session)",
               ylabel="probability density")
        ax.legend(fontsize=7, frameon=False)
        _letter(ax, "ABCDEFGH"[k])
    _save(fig, path)


def survival_curves(surv, by_quartile, path, *, per_cell=None):
    types = sorted(surv["cell_type"].unique())
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ct in types:
        col = colour_of(ct, types)
        s = surv[surv["cell_type"] == ct]
        if per_cell is not None:
            for _, c in per_cell[per_cell["cell_type"] == ct].groupby("cell"):
                axes[0].plot(c["day"], c["survival"], color=col, lw=0.6, alpha=0.35)
        n_cells = int(s["n_cells"].max()) if len(s) else 0
        n_syn = int(s["n_synapses"].iloc[0]) if len(s) else 0
        axes[0].errorbar(s["day"], s["survival"], yerr=s["sem"].fillna(0), marker="o", ms=4,
                         capsize=2, color=col,
                         label=f"{ct}: mean ± SEM over {n_cells} cell{'s' if n_cells != 1 else ''} "
                               f"({n_syn} synapses)")
        axes[0].step(s["day"], s["km_survival"], where="post", color=col, ls="--", lw=1,
                     label=f"{ct}: Kaplan-Meier, 95 % CI")
        axes[0].fill_between(s["day"], s["km_ci_low"], s["km_ci_high"], step="post",
                             color=col, alpha=0.12)
        q = by_quartile[by_quartile["cell_type"] == ct]
        for quartile, g in q.groupby("quartile"):
            shade = 0.35 + 0.65 * (int(quartile) - 1) / 3
            axes[1].plot(g["day"], g["survival"], marker=".", color=col, alpha=shade,
                         label=f"{ct} Q{int(quartile)} (n = {int(g['n_synapses'].iloc[0])})")
    axes[0].set(xlabel=DAY, ylabel="share of first-session\nsynapses present",
                ylim=FRACTION_LIMITS)
    axes[1].set(xlabel=DAY, ylabel="share present, by quartile of\nfirst-session weight",
                ylim=FRACTION_LIMITS)
    for ax, letter in zip(axes, "AB"):
        ax.legend(fontsize=6, frameon=False)
        _letter(ax, letter)
    _save(fig, path)


def kesten_moments(pairs, details: dict, path):
    """Δw vs w for persisting pairs, with binned moments and the fitted mean and variance."""
    types = sorted(details)
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    for ct in types:
        det = details[ct]
        col = colour_of(ct, types)
        g = pairs[(pairs["cell_type"] == ct) & (pairs["w_t"] > 0)]
        axes[0].plot(g["w_t"], g["w_next"] - g["w_t"], ".", ms=2, alpha=0.3, color=col,
                     label=f"{ct} (n = {len(g)} pairs, {g['cell'].nunique()} cells)")
        b = det["binned"]["bins"]
        x = np.linspace(0, b["mean_w"].max(), 100)
        axes[1].plot(b["mean_w"], b["mean_dw"], "o", color=col, ms=4, label=f"{ct} bins")
        axes[2].plot(b["mean_w"], b["var_dw"], "o", color=col, ms=4, label=f"{ct} bins")
        for fit, ls, name in ((det["binned"], "-", "binned fit"),
                              (det.get("ml"), ":", "ML fit, persisting")):
            if fit is None:
                continue
            axes[0].plot(x, fit["a"] * x + fit["c"], ls, color=col)
            axes[1].plot(x, fit["a"] * x + fit["c"], ls, color=col, label=f"{ct} {name}")
            axes[2].plot(x, fit["b"] * x ** 2 + fit["d"], ls, color=col, label=f"{ct} {name}")
    if not types:
        axes[0].text(0.5, 0.5, "too few pairs for a Kesten fit", ha="center",
                     transform=axes[0].transAxes)
    for ax in axes[:2]:
        ax.axhline(0, color="0.6", lw=0.5)
    axes[0].set(xlabel="weight w in this session", ylabel="change of w to the next session\n"
                "(a loss: change = -w)")
    axes[1].set(xlabel="weight w (bin mean)", ylabel="mean change of w")
    axes[2].set(xlabel="weight w (bin mean)", ylabel="variance of the change of w")
    for ax, letter in zip(axes, "ABC"):
        if types:
            ax.legend(fontsize=6, frameon=False)
        _letter(ax, letter)
    _save(fig, path)


def transition_matrices(transition, path):
    types = sorted(transition["cell_type"].unique())
    fig, axes = plt.subplots(1, max(len(types), 1), figsize=(4.6 * max(len(types), 1), 4.0),
                             squeeze=False)
    for k, (ax, ct) in enumerate(zip(axes[0], types)):
        t = transition[transition["cell_type"] == ct]
        n = int(t["count"].sum()) if "count" in t.columns else 0
        n_states = int(t["from_state"].max()) + 1
        P = t["probability"].to_numpy().reshape(n_states, n_states)
        im = ax.imshow(P, cmap="Greys", vmin=0, vmax=1)
        for (i, j), v in np.ndenumerate(P):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7,
                    color="w" if v > 0.5 else "k")
        labels = [bin_label(v) for v in t.drop_duplicates("from_state")["from_label"]]
        ax.set_xticks(range(n_states), labels, rotation=40, ha="right", fontsize=7)
        ax.set_yticks(range(n_states), labels, fontsize=7)
        ax.set_title(f"{ct} (n = {n} transitions)", color=colour_of(ct, types))
        ax.set(xlabel="state in the next session", ylabel="state in this session")
        ax.spines[:].set_visible(False)
        fig.colorbar(im, ax=ax, shrink=0.75, label="probability")
        _letter(ax, "ABCDEFGH"[k])
    _save(fig, path)


def stationary_vs_observed(stationary, survival, path):
    types = sorted(stationary["cell_type"].unique())
    n = max(len(types), 1)
    fig, axes = plt.subplots(1, n + 1, figsize=(3.6 * (n + 1), 3.4), squeeze=False)
    axes = axes[0]
    for k, ct in enumerate(types):
        col = colour_of(ct, types)
        ax = axes[k]
        s = stationary[(stationary["cell_type"] == ct) & (stationary["state"] > 0)]
        x = s["state"].to_numpy(float)
        # a percentile interval need not contain the estimate (e.g. a state hardly visited)
        err = np.clip([s["stationary_present"] - s["stationary_present_ci_low"],
                       s["stationary_present_ci_high"] - s["stationary_present"]], 0, None)
        ax.bar(x - 0.2, s["stationary_present"], 0.4, yerr=np.nan_to_num(err), capsize=2,
               color=col, label="stationary (95 % CI)")
        ax.bar(x + 0.2, s["observed_present_last_session"], 0.4, color=col, alpha=0.4,
               label="observed, last session")
        ax.set_xticks(x, [bin_label(v) for v in s["label"]], rotation=35, ha="right", fontsize=7)
        ax.set(title=f"{ct}: weight bins", ylabel="share of present synapses")
        ax.legend(fontsize=6, frameon=False)
        _letter(ax, "ABCDEFGH"[k])
        v = survival[survival["cell_type"] == ct]
        axes[-1].plot(v["day"], v["observed"], "o", color=col, ms=4, label=f"{ct} observed")
        axes[-1].fill_between(v["day"], v["predicted_ci_low"], v["predicted_ci_high"],
                              color=col, alpha=0.2)
        axes[-1].plot(v["day"], v["predicted"], "-", color=col,
                      label=f"{ct} chain prediction (95 % CI)")
    axes[-1].set(xlabel=DAY, ylabel="share of first-session\nsynapses present",
                 ylim=FRACTION_LIMITS)
    if types:
        axes[-1].legend(fontsize=6, frameon=False)
    _letter(axes[-1], "ABCDEFGH"[n])
    _save(fig, path)
