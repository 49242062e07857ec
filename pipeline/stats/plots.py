"""Figures of the statistics (PNG)."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

#: y limits of every panel that shows a share (0-1) of synapses
FRACTION_LIMITS = (0, 1.05)


def _save(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def weight_histograms(table, lognormal, path):
    types = sorted(table["cell_type"].unique())
    fig, axes = plt.subplots(1, len(types), figsize=(4.5 * len(types), 3.5), squeeze=False)
    for ax, ct in zip(axes[0], types):
        w = table.loc[(table["cell_type"] == ct) & (table["present"] == 1), "weight"]
        lw = np.log(w)
        ax.hist(lw, bins=30, density=True, color="0.7", label=f"n = {len(w)}")
        mu, sd = lw.mean(), lw.std(ddof=0)
        x = np.linspace(lw.min(), lw.max(), 200)
        ax.plot(x, stats.norm.pdf(x, mu, sd), "k", label=f"log-normal, sigma = {sd:.2f}")
        ax.set(title=ct, xlabel="ln weight", ylabel="density")
        ax.legend(fontsize=8)
    _save(fig, path)


def survival_curves(surv, by_quartile, path):
    types = sorted(surv["cell_type"].unique())
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for ct in types:
        s = surv[surv["cell_type"] == ct]
        line = axes[0].errorbar(s["day"], s["survival"], yerr=s["sem"], marker="o", capsize=3,
                                label=f"{ct}: first-session share (mean ± SEM over cells)")
        colour = line[0].get_color()
        axes[0].step(s["day"], s["km_survival"], where="post", color=colour, ls="--",
                     label=f"{ct}: Kaplan-Meier, 95 % CI")
        axes[0].fill_between(s["day"], s["km_ci_low"], s["km_ci_high"], step="post",
                             color=colour, alpha=0.15)
    axes[0].set(xlabel="day", ylabel="surviving share", ylim=FRACTION_LIMITS)
    axes[0].legend(fontsize=7)
    for (ct, q), s in by_quartile.groupby(["cell_type", "quartile"]):
        axes[1].plot(s["day"], s["survival"], marker=".", label=f"{ct} Q{q}")
    axes[1].set(xlabel="day", ylabel="survival by first-session weight quartile", ylim=FRACTION_LIMITS)
    axes[1].legend(fontsize=7)
    _save(fig, path)


def kesten_moments(pairs, details: dict, path):
    """Δw vs w for persisting pairs, with binned moments and the fitted mean and variance."""
    types = sorted(details)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for ct in types:
        det = details[ct]
        g = pairs[(pairs["cell_type"] == ct) & (pairs["w_t"] > 0)]
        dots = axes[0].plot(g["w_t"], g["w_next"] - g["w_t"], ".", ms=2, alpha=0.3, label=ct)
        colour = dots[0].get_color()
        b = det["binned"]["bins"]
        x = np.linspace(0, b["mean_w"].max(), 100)
        axes[1].plot(b["mean_w"], b["mean_dw"], "o", color=colour, label=f"{ct} bins")
        axes[2].plot(b["mean_w"], b["var_dw"], "o", color=colour, label=f"{ct} bins")
        for fit, ls, name in ((det["binned"], "-", "binned fit"), (det.get("ml"), ":", "ML (persisting)")):
            if fit is None:
                continue
            axes[0].plot(x, fit["a"] * x + fit["c"], ls, color=colour)
            axes[1].plot(x, fit["a"] * x + fit["c"], ls, color=colour, label=f"{ct} {name}")
            axes[2].plot(x, fit["b"] * x ** 2 + fit["d"], ls, color=colour, label=f"{ct} {name}")
    if not types:
        axes[0].text(0.5, 0.5, "too few pairs for a Kesten fit", ha="center",
                     transform=axes[0].transAxes)
    for ax in axes[:2]:
        ax.axhline(0, color="0.6", lw=0.5)
    axes[0].set(xlabel="w", ylabel="dw (eliminations: -w)")
    axes[1].set(xlabel="w (bin mean)", ylabel="mean dw")
    axes[2].set(xlabel="w (bin mean)", ylabel="var dw")
    for ax in axes:
        if types:
            ax.legend(fontsize=7)
    _save(fig, path)


def transition_matrices(transition, path):
    types = sorted(transition["cell_type"].unique())
    fig, axes = plt.subplots(1, max(len(types), 1), figsize=(5 * max(len(types), 1), 4.2),
                             squeeze=False)
    for ax, ct in zip(axes[0], types):
        t = transition[transition["cell_type"] == ct]
        k = int(t["from_state"].max()) + 1
        P = t["probability"].to_numpy().reshape(k, k)
        im = ax.imshow(P, cmap="viridis", vmin=0, vmax=1)
        for (i, j), v in np.ndenumerate(P):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7,
                    color="w" if v < 0.5 else "k")
        labels = t.drop_duplicates("from_state")["from_label"].tolist()
        ax.set_xticks(range(k), labels, rotation=45, ha="right", fontsize=7)
        ax.set_yticks(range(k), labels, fontsize=7)
        ax.set(title=f"{ct}: P(next state | state)", xlabel="next session", ylabel="this session")
        fig.colorbar(im, ax=ax, shrink=0.8)
    _save(fig, path)


def stationary_vs_observed(stationary, survival, path):
    types = sorted(stationary["cell_type"].unique())
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    width = 0.8 / max(len(types), 1) / 2
    for n, ct in enumerate(types):
        s = stationary[(stationary["cell_type"] == ct) & (stationary["state"] > 0)]
        x = s["state"].to_numpy() + (2 * n - len(types)) * width
        # a percentile interval need not contain the estimate (e.g. a state hardly visited)
        err = np.clip([s["stationary_present"] - s["stationary_present_ci_low"],
                       s["stationary_present_ci_high"] - s["stationary_present"]], 0, None)
        axes[0].bar(x, s["stationary_present"], width, yerr=err, capsize=2,
                    label=f"{ct} stationary (95 % CI)")
        axes[0].bar(x + width, s["observed_present_last_session"], width,
                    label=f"{ct} observed, last session")
        v = survival[survival["cell_type"] == ct]
        line = axes[1].plot(v["day"], v["observed"], "o", label=f"{ct} observed")
        axes[1].fill_between(v["day"], v["predicted_ci_low"], v["predicted_ci_high"],
                             color=line[0].get_color(), alpha=0.2)
        axes[1].plot(v["day"], v["predicted"], "-", color=line[0].get_color(),
                     label=f"{ct} chain prediction (95 % CI)")
    if types:
        s = stationary[(stationary["cell_type"] == types[0]) & (stationary["state"] > 0)]
        axes[0].set_xticks(s["state"], s["label"], rotation=30, ha="right", fontsize=7)
        axes[0].legend(fontsize=7)
        axes[1].legend(fontsize=7)
    axes[0].set(ylabel="share of present synapses", title="weight bins")
    axes[1].set(xlabel="day", ylabel="share of first-session synapses present", ylim=FRACTION_LIMITS)
    _save(fig, path)
