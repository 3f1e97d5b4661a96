"""The two method diagrams of the book, drawn by code (matplotlib)."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from .labels import ALGORITHMS

FORWARD, SIGNAL, STE = "#555555", "#D55E00", "#0072B2"  # colour-blind safe (Okabe–Ito)
#: the page shows a diagram at the text column's width (676 px in a 1280 px window): figure widths
#: and text sizes (points) keep its smallest text at 11 px or more there (tests/test_book.py)
TEXT = 13


def _box(ax, x, y, text, width=0.9, height=0.42, colour="#F0F0F0", fontsize=TEXT):
    ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height,
                                boxstyle="round,pad=0.03", facecolor=colour, edgecolor="#333333", zorder=3))
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize, zorder=4)


def _arrow(ax, start, end, colour, style="-|>", rad=0.0, dashed=False, width=1.4, shrink=14):
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=14, color=colour, lw=width,
                                 linestyle="--" if dashed else "-", connectionstyle=f"arc3,rad={rad}",
                                 shrinkA=shrink, shrinkB=shrink, zorder=5))


def learning_signal_diagram():
    """Where each hidden layer's learning signal comes from, in BP, DFA and DRTP. Arrows run
    between box edges (never through a box); every line style is in the legend."""
    fig, axes = plt.subplots(1, 3, figsize=(10.5, 6))
    layers = ["$x$", "$h_1$", "$h_2$", "$h_3$", "$h_4$", r"$\hat{y}$"]
    column, half_width, half_height = 0.6, 0.45, 0.21
    source_x, source_width = 2.55, 2.0
    for ax, algorithm in zip(axes, list(ALGORITHMS)):
        ax.set_xlim(-0.2, 3.6)
        ax.set_ylim(-0.5, 6.5)
        ax.axis("off")
        ax.set_title(algorithm, fontsize=TEXT + 1, fontweight="bold")
        ys = range(len(layers))
        for y, name in zip(ys, layers):
            _box(ax, column, y, name)
        for y in ys[:-1]:  # forward: top edge of a block to the bottom edge of the next
            _arrow(ax, (column, y + half_height), (column, y + 1 - half_height), FORWARD, shrink=0)
        source_y = 6.1
        _box(ax, source_x, source_y, r"$e = 2(\hat{y} - y^*)$", width=source_width, colour="#FBE3D6")
        # the output layer always gets its true gradient
        _arrow(ax, (source_x - source_width / 2, source_y - 0.1), (column + half_width, 5.05), SIGNAL, shrink=2)
        if algorithm == "BP":
            for y in range(5, 1, -1):  # down the chain, on the right of the column
                _arrow(ax, (column + half_width, y - 0.05), (column + half_width, y - 0.95), SIGNAL, rad=-0.7,
                       shrink=1)
            ax.text(1.55, 2.6, "$\\delta y_k = \\delta z_{k+1}\\, W_{k+1}^{\\top}$\n(the chain,\nthrough sign($W$)\n"
                    "for binary layers)", fontsize=TEXT, color=SIGNAL, va="center")
            continue
        if algorithm == "DRTP":  # hidden blocks get the target, not the error
            source_y = 3.3
            _box(ax, source_x, source_y, "$t$\n(one-hot target)", width=source_width, height=0.8, colour="#FBE3D6")
            start = (source_x - source_width / 2, source_y)  # from the box's left edge
        else:
            start = (source_x - 0.6, source_y - half_height)  # from the error's bottom edge
        for y in range(1, 5):  # straight to each block's right edge: no arrow crosses a box
            _arrow(ax, start, (column + half_width, y), SIGNAL, dashed=True, width=1.2, shrink=2)
        letter = "e" if algorithm == "DFA" else "t"
        ax.text(1.3, 0.15, f"$\\delta y_k = {letter}\\, B_k$\n$B_k \\sim U(-1, 1)$, fixed\nno signal between\nblocks",
                fontsize=TEXT, color=SIGNAL, va="center")
    handles = [plt.Line2D([], [], color=FORWARD, lw=2, label="forward pass"),
               plt.Line2D([], [], color=SIGNAL, lw=2, label="learning signal: true gradient or the chain"),
               plt.Line2D([], [], color=SIGNAL, lw=2, ls="--", label="learning signal through a fixed random $B_k$")]
    fig.legend(handles=handles, loc="lower center", ncol=2, frameon=False, fontsize=TEXT)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig


def binarised_layer_diagram():
    """Latent weights → sign → forward; straight-through estimators on the way back."""
    fig, ax = plt.subplots(figsize=(11, 4.0))
    ax.set_xlim(0, 11)
    ax.set_ylim(0.3, 4.3)
    ax.axis("off")
    _box(ax, 1.0, 3.0, "latent $W$\n(real, clipped\nto $[-1, 1]$)", width=1.6, height=0.9)
    _box(ax, 3.3, 3.0, "sign($W$)\n$\\in \\{-1, +1\\}$", width=1.4, height=0.8)
    _box(ax, 1.0, 1.0, "input $y_{k-1}$", width=1.6)
    _box(ax, 5.6, 2.0, "$z = y_{k-1}\\,$sign$(W)$\n(then BN, if on)", width=2.2, height=0.8)
    _box(ax, 8.0, 2.0, "$y$ = sign$(z)$", width=1.4)
    _box(ax, 10.0, 2.0, "next layer", width=1.3)
    # arrows between box edges (shrink 0), drawn above nothing they could hide
    _arrow(ax, (1.8, 3.0), (2.6, 3.0), FORWARD, shrink=0)
    _arrow(ax, (4.0, 2.75), (4.5, 2.25), FORWARD, shrink=0)
    _arrow(ax, (1.8, 1.0), (4.5, 1.8), FORWARD, shrink=0)
    _arrow(ax, (6.7, 2.0), (7.3, 2.0), FORWARD, shrink=0)
    _arrow(ax, (8.7, 2.0), (9.35, 2.0), FORWARD, shrink=0)
    _arrow(ax, (8.0, 1.79), (6.2, 1.6), STE, rad=-0.45, shrink=0)
    ax.text(7.1, 0.75, "STE: $\\delta z = \\delta y \\cdot 1[|z| < 1]$", color=STE, ha="center", fontsize=TEXT)
    _arrow(ax, (3.3, 3.4), (1.3, 3.45), STE, rad=0.45, shrink=0)
    ax.text(2.2, 3.95, "STE: $\\delta W = \\delta\\,$sign$(W)$ (identity)", color=STE, ha="center", fontsize=TEXT)
    handles = [plt.Line2D([], [], color=FORWARD, lw=2, label="forward"),
               plt.Line2D([], [], color=STE, lw=2, label="backward (straight-through)")]
    ax.legend(handles=handles, loc="upper right", frameon=False, fontsize=TEXT)
    fig.tight_layout()
    return fig
