"""Figures of the statistics (PNG)."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402


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
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def survival_curves(surv, by_quartile, path):
    types = sorted(surv["cell_type"].unique())
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for ct in types:
        s = surv[surv["cell_type"] == ct]
        axes[0].errorbar(s["day"], s["survival"], yerr=s["sem"], marker="o", capsize=3, label=ct)
    axes[0].set(xlabel="day", ylabel="surviving share of first-session synapses", ylim=(0, 1.05))
    axes[0].legend()
    for (ct, q), s in by_quartile.groupby(["cell_type", "quartile"]):
        axes[1].plot(s["day"], s["survival"], marker=".", label=f"{ct} Q{q}")
    axes[1].set(xlabel="day", ylabel="survival by first-session weight quartile", ylim=(0, 1.05))
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def kesten_moments(fits: dict, path):
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for ct, fit in fits.items():
        b = fit["bins"]
        x = np.linspace(0, b["mean_w"].max(), 100)
        axes[0].plot(b["mean_w"], b["mean_dw"], "o", label=ct)
        axes[0].plot(x, fit["a"] * x + fit["c"], "-", color=axes[0].lines[-1].get_color())
        axes[1].plot(b["mean_w"], b["var_dw"], "o", label=ct)
        axes[1].plot(x, fit["b"] * x ** 2 + fit["d"], "-", color=axes[1].lines[-1].get_color())
    if not fits:
        axes[0].text(0.5, 0.5, "too few pairs for a Kesten fit", ha="center",
                     transform=axes[0].transAxes)
    axes[0].axhline(0, color="0.6", lw=0.5)
    axes[0].set(xlabel="w (bin mean)", ylabel="mean dw")
    axes[1].set(xlabel="w (bin mean)", ylabel="var dw")
    if fits:
        axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
