"""The two method diagrams of the book, drawn by code (matplotlib)."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

FORWARD, SIGNAL, STE = "#555555", "#D55E00", "#0072B2"  # colour-blind safe (Okabe–Ito)


def _box(ax, x, y, text, width=0.9, height=0.42, colour="#F0F0F0"):
    ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height,
                                boxstyle="round,pad=0.03", facecolor=colour, edgecolor="#333333", zorder=3))
    ax.text(x, y, text, ha="center", va="center", fontsize=10, zorder=4)  # boxes above arrows


def _arrow(ax, start, end, colour, style="-|>", rad=0.0, dashed=False, width=1.4):
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=12, color=colour, lw=width,
                                 linestyle="--" if dashed else "-", connectionstyle=f"arc3,rad={rad}",
                                 shrinkA=14, shrinkB=14))


def learning_signal_diagram():
    """Where each hidden layer's learning signal comes from, in BP, DFA and DRTP."""
    fig, axes = plt.subplots(1, 3, figsize=(12, 5.2))
    layers = ["x", "h₁", "h₂", "h₃", "h₄", "ŷ"]
    for ax, algorithm in zip(axes, ["BP", "DFA", "DRTP"]):
        ax.set_xlim(-0.4, 3.4)
        ax.set_ylim(-0.6, 6.4)
        ax.axis("off")
        ax.set_title(algorithm, fontsize=13, fontweight="bold")
        ys = range(len(layers))
        for y, name in zip(ys, layers):
            _box(ax, 0.6, y, name)
        for y in ys[:-1]:
            _arrow(ax, (0.6, y), (0.6, y + 1), FORWARD)
        _box(ax, 2.5, 5.9, "e = 2(ŷ − y*)", width=1.5, colour="#FBE3D6")
        _arrow(ax, (2.5, 5.9), (0.6, 5), SIGNAL)  # the output layer always gets its true gradient
        hidden_source = (2.5, 5.9)
        if algorithm == "DRTP":  # hidden blocks get the target, not the error
            hidden_source = (2.5, 3.6)
            _box(ax, 2.5, 3.6, "t (one-hot target)", width=1.5, colour="#FBE3D6")
        if algorithm == "BP":
            for y in range(5, 1, -1):
                _arrow(ax, (0.6, y), (0.6, y - 1), SIGNAL, rad=-0.6)
            ax.text(1.6, 2.5, "δy_k = δz_{k+1} W_{k+1}ᵀ\n(the chain, through sign(W)\nfor binary layers)",
                    fontsize=9, color=SIGNAL, va="center")
        else:
            for y in range(1, 5):
                _arrow(ax, hidden_source, (0.6, y), SIGNAL, rad=0.15, dashed=True, width=1.1)
            ax.text(1.55, 0.2, f"δy_k = {'e' if algorithm == 'DFA' else 't'} B_k\nB_k ~ U(−1, 1), fixed\n"
                    "no signal between blocks", fontsize=9, color=SIGNAL)
    handles = [plt.Line2D([], [], color=FORWARD, lw=2, label="forward pass"),
               plt.Line2D([], [], color=SIGNAL, lw=2, label="learning signal")]
    fig.legend(handles=handles, loc="lower center", ncol=2, frameon=False)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


def binarised_layer_diagram():
    """Latent weights → sign → forward; straight-through estimators on the way back."""
    fig, ax = plt.subplots(figsize=(11, 3.8))
    ax.set_xlim(0, 11)
    ax.set_ylim(0, 4)
    ax.axis("off")
    _box(ax, 1.0, 3.0, "latent W\n(real, clipped\nto [−1, 1])", width=1.6, height=0.9)
    _box(ax, 3.3, 3.0, "sign(W)\n∈ {−1, +1}", width=1.4, height=0.8)
    _box(ax, 1.0, 1.0, "input y_{k−1}", width=1.6)
    _box(ax, 5.6, 2.0, "z = y_{k−1} sign(W)\n(→ BN)", width=2.0, height=0.8)
    _box(ax, 8.0, 2.0, "y = sign(z)", width=1.4)
    _box(ax, 10.0, 2.0, "next layer", width=1.3)
    _arrow(ax, (1.0, 3.0), (3.3, 3.0), FORWARD)
    _arrow(ax, (3.3, 3.0), (5.6, 2.0), FORWARD)
    _arrow(ax, (1.0, 1.0), (5.6, 2.0), FORWARD)
    _arrow(ax, (5.6, 2.0), (8.0, 2.0), FORWARD)
    _arrow(ax, (8.0, 2.0), (10.0, 2.0), FORWARD)
    _arrow(ax, (8.0, 1.55), (5.6, 1.55), STE, rad=0.35)
    ax.text(6.8, 0.55, "STE: δz = δy · 1[|z| < 1]", color=STE, ha="center", fontsize=10)
    _arrow(ax, (3.3, 3.45), (1.0, 3.45), STE, rad=-0.4)
    ax.text(2.15, 3.95, "STE: δW = δ sign(W) (identity)", color=STE, ha="center", fontsize=10)
    handles = [plt.Line2D([], [], color=FORWARD, lw=2, label="forward"),
               plt.Line2D([], [], color=STE, lw=2, label="backward (straight-through)")]
    ax.legend(handles=handles, loc="lower right", frameon=False)
    fig.tight_layout()
    return fig
