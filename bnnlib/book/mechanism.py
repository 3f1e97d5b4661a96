"""The mechanism study: why do DFA and DRTP train binary networks better than BP?

For the fully binary setting (binary weights + sign activations), every rule's final runs —
the paper's three and the SHALLOW control, at the hyper-parameters its own grid search chose —
are re-run with per-layer diagnostics (:mod:`bnnlib.diagnostics`) into
``<results>/<budget>/diagnostics/``, a folder of their own: diagnostics change no number, but a
run already complete in the budget's folder is never recomputed, so the probed copies live
apart. Probing changes no number (a test pins it), so their records are those the final runs
have at the same arithmetic version (every committed record is version 3 since results/cpu was
recomputed); where a budget's finals predated the current version, their accuracies could differ
slightly from the results pages', and the chapter says which version.

:func:`~bnnlib.book.probes.verdicts` turns the records into one statement per rule and setting,
each backed by a computed number: do its hidden layers learn (better than SHALLOW), how aligned
its hidden updates are with BP's, and how much of BP's signal reaches each block. The probed runs
and their records are in :mod:`~bnnlib.book.probes`; the figures and sentences are here.
"""

from __future__ import annotations

from functools import partial
from typing import Optional, Sequence, Tuple

import pandas as pd

from ..protocol import PROBED_RULES
# the epoch table and its sentence (:mod:`~bnnlib.book.epoch_change`), a step of the chapter's page
from .epoch_change import _over_epochs, epoch_change, epoch_change_table  # noqa: F401
from .labels import (ALGORITHMS, ALTERNATIVES, BASELINE, CONTROLS, DATASET_RANK, algorithm_palette, bn_short,
                     bn_switch, bn_with, dataset_name)
from .pages import Page
from .pages import setup_page as open_page
from .render import READABLE, READABLE_WIDTH, epoch_axis, mean_ci95, readable
from .update_sizes import with_update_ratio
# the chapter's steps, in the order its page takes them (the probed runs: :mod:`~bnnlib.book.probes`)
from .probes import (accuracy_frame, diagnostics_frame, ensure_mechanism,  # noqa: F401
                     open_store, recorded_configs, verdicts)


def setup_page(budget: str, results_base: Optional[str], data_root: Optional[str], data_mirror: Optional[str],
               settings: Sequence[Tuple[str, bool]], device: str = "cpu") -> Page:
    """:func:`~bnnlib.book.pages.setup_page` with the chapter's own budget choice
    (:func:`~bnnlib.book.probes.open_store`: paper where its probed runs are all recorded); its
    sentence is kept for the page's closing provenance (``page.budget_sentence``)."""
    return open_page(budget, results_base, data_root, data_mirror, choose=partial(open_store, settings=settings),
                     device=device, announce=False)


# ---------------------------------------------------------------------- figures
def _panels(frame: pd.DataFrame):
    """The dataset × BN panels a figure has, MNIST first (as every page lists the datasets)."""
    datasets = sorted(set(frame["dataset"]), key=lambda d: DATASET_RANK.get(d, len(DATASET_RANK)))
    return [(d, b) for d in datasets for b in (False, True)
            if ((frame["dataset"] == d) & (frame["batch_norm"] == b)).any()]


def _title(dataset: str, batch_norm: bool) -> str:
    return f"{dataset_name(dataset)}, {bn_with(batch_norm)} BN"


def _per_run(frame: pd.DataFrame, value: str) -> pd.DataFrame:
    """One value per run and layer: the mean over epochs (and probed batches); for
    ``update_vs_bp`` the ratio of the two mean update sizes, as the update-size table's rule factor
    (:func:`~bnnlib.book.update_sizes.decomposition`) takes it."""
    keys = ["dataset", "batch_norm", "algorithm", "layer", "layer_name", "run_id"]
    if value == "update_vs_bp":
        return with_update_ratio(frame.groupby(keys, as_index=False)[["update_rms", "bp_update_rms"]].mean())
    return frame.groupby(keys, as_index=False)[value].mean()


def layer_figure(frame: pd.DataFrame, value: str, label: str, algorithms: Sequence[str], log: bool = False,
                 hidden_only: bool = True, reference: Optional[float] = None):
    """One panel per dataset × BN: ``value`` per layer (x, mean over epochs), one line per rule,
    mean over seeds with a 95 % confidence band (bootstrap, seeded); a dashed line at
    ``reference``. At the book's readable width and font sizes, the legend below the panels. Per
    layer over the epochs: :func:`layer_epoch_figure`."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    data, x = _per_run(frame, value), "layer_name"
    if hidden_only:
        data = data[data["layer_name"] != "output"]
    keys = _panels(data)
    columns = 2 if len(keys) == 4 else len(keys)  # four panels as 2 × 2: legible at page width
    rows = -(-len(keys) // columns)
    palette = algorithm_palette()
    with readable():
        fig, axes = plt.subplots(rows, columns, figsize=(READABLE_WIDTH, 2.9 * rows + 0.8), sharey=True,
                                 squeeze=False)
        for ax, (dataset, batch_norm) in zip(axes.flat, keys):
            part = data[(data["dataset"] == dataset) & (data["batch_norm"] == batch_norm) &
                        data["algorithm"].isin(algorithms)]
            sns.lineplot(data=part, x=x, y=value, hue="algorithm", hue_order=list(algorithms), palette=palette,
                         marker="o" if part[x].nunique() <= 20 else None, errorbar=mean_ci95,
                         ax=ax, legend=False)
            ax.set_title(f"{dataset_name(dataset)}, BN {bn_switch(batch_norm)}")
            ax.set_xlabel("")
            ax.set_ylabel("")
            # "block 1" … "output" under one another would collide: the block's number is enough
            ax.set_xticks(ax.get_xticks(), [t.get_text().replace("block ", "") for t in ax.get_xticklabels()])
            if log:
                ax.set_yscale("log")
            if reference is not None:
                ax.axhline(reference, color="grey", lw=0.8, ls="--")
        fig.supylabel(label, fontsize=READABLE["axes.labelsize"])
        fig.supxlabel("hidden block" + (" (and the output layer)" if not hidden_only else ""),
                      fontsize=READABLE["axes.labelsize"], y=0.075)
        handles = [plt.Line2D([], [], color=palette[a], marker="o") for a in algorithms]
        fig.legend(handles, list(algorithms), loc="lower center", ncol=len(algorithms), frameon=False,
                   bbox_to_anchor=(0.5, -0.01))
        fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig


def layer_epoch_figure(frame: pd.DataFrame, value: str, label: str, algorithms: Sequence[str], dataset: str,
                       log: bool = False, reference: Optional[float] = None, share: bool = False):
    """``value`` of each hidden layer over the epochs, for one dataset: a row of panels per rule,
    BN off and on side by side, one line per hidden block (mean over seeds, 95 % bootstrap band,
    seeded) — how each layer's quantity evolves, where :func:`layer_figure` averages the epochs
    away. At the book's readable width and font sizes, the legend below the panels. ``share``: the
    value is a share, labelled in % (on a log axis up to 100 %), as the page's tables give it."""
    from matplotlib.ticker import FuncFormatter
    import matplotlib.pyplot as plt
    import seaborn as sns

    hidden = frame[(frame["dataset"] == dataset) & (frame["layer_name"] != "output") &
                   frame["algorithm"].isin(algorithms)]
    data = hidden.groupby(["batch_norm", "algorithm", "layer_name", "epoch", "run_id"], as_index=False)[value].mean()
    rules = [a for a in algorithms if a in set(data["algorithm"])]
    settings = [b for b in (False, True) if b in set(data["batch_norm"])]
    layers = sorted(set(data["layer_name"]))
    palette = dict(zip(layers, sns.color_palette("viridis", len(layers))))
    with readable():
        fig, axes = plt.subplots(len(rules), len(settings), figsize=(READABLE_WIDTH, 2.3 * len(rules) + 0.9),
                                 sharex=True, sharey=True, squeeze=False)
        for i, rule in enumerate(rules):
            for j, batch_norm in enumerate(settings):
                ax = axes[i][j]
                part = data[(data["algorithm"] == rule) & (data["batch_norm"] == batch_norm)]
                sns.lineplot(data=part, x="epoch", y=value, hue="layer_name", hue_order=layers, palette=palette,
                             marker="o" if part["epoch"].nunique() <= 20 else None, errorbar=mean_ci95, ax=ax,
                             legend=False)
                ax.set_title(f"{rule}, BN {bn_switch(batch_norm)}")
                ax.set_ylabel("")
                ax.set_xlabel("epoch" if i == len(rules) - 1 else "")
                epoch_axis(ax, int(data["epoch"].max()))
                if log:
                    ax.set_yscale("log")
                if share:
                    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{100 * v:g} %"))
                if reference is not None:
                    ax.axhline(reference, color="grey", lw=0.8, ls="--")
        if share and log:
            axes[0][0].set_ylim(top=1.0)  # the axes share y: up to 100 %, so the top decade has its tick
        fig.supylabel(label, fontsize=READABLE["axes.labelsize"])
        handles = [plt.Line2D([], [], color=palette[layer], marker="o") for layer in layers]
        fig.legend(handles, layers, loc="lower center", ncol=len(layers), frameon=False,
                   bbox_to_anchor=(0.5, 0.0))
        fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig


def verdict_table(table: pd.DataFrame) -> pd.DataFrame:
    """The verdicts for a page: percent, CIs, plain words."""
    def points(v):
        return "–" if v != v else f"{100 * v:+.2f}"

    out = pd.DataFrame({
        "data": [f"{dataset_name(d)}, {bn_short(b)}" for d, b in zip(table["dataset"],
                                                                                         table["batch_norm"])],
        "rule": table["algorithm"],
        "best test acc (%)": (100 * table["mean accuracy"]).map(lambda v: f"{v:.2f}"),
        "vs SHALLOW (points, 95 % CI)": [f"{points(m)} [{points(lo)}, {points(hi)}]" if m == m else "–"
                                         for m, lo, hi in zip(table["vs_shallow"], table["vs_shallow_low"],
                                                              table["vs_shallow_high"])],
        "hidden layers": table["hidden layers"],
        "cos with BP (95 % CI)": [f"{m:.3f} [{lo:.3f}, {hi:.3f}]" if a != BASELINE and a not in CONTROLS and m == m else "–"
                                  for a, m, lo, hi in zip(table["algorithm"], table["alignment"],
                                                          table["alignment_low"], table["alignment_high"])],
        "hidden updates": table["updates"],
    })
    return out


# ---------------------------------------------------------------------- sentences for the text
def _setting_name(dataset: str, batch_norm: bool) -> str:
    """'MNIST without BN': a panel title without its comma, for lists inside a sentence."""
    return _title(dataset, batch_norm).replace(", ", " ")


def _span(values, fmt) -> str:
    values = [v for v in values if v == v]
    if not values:
        return "–"
    low, high = min(values), max(values)
    return fmt(low) if fmt(low) == fmt(high) else f"{fmt(low)} to {fmt(high)}"


def _in_settings(k: int, n: int) -> str:
    """"in 3 of 4 settings"; with one setting measured (the 100-epoch runs as they are recorded),
    "in the one setting" or "in no setting" rather than "in 1 of 1 settings"."""
    return f"in {k} of {n} settings" if n > 1 else ("in the one setting" if k else "in no setting")


def findings(table: pd.DataFrame, frame: pd.DataFrame) -> dict:
    """Sentences for the chapter (``glue``), each computed from the verdict table and the
    diagnostics; nothing in them is typed by hand."""
    out = {}
    per_run = with_update_ratio(frame.groupby(["dataset", "batch_norm", "algorithm", "layer_name", "run_id"],
                                               as_index=False)[["pass_fraction", "flip_ratio", "update_rms",
                                                                "bp_update_rms", "alignment_cosine"]].mean())
    medians = per_run.groupby(["dataset", "batch_norm", "algorithm", "layer_name"]).median(numeric_only=True)
    settings = list(dict.fromkeys(zip(table["dataset"], table["batch_norm"])))
    n = len(settings)
    for algorithm in [a for a in PROBED_RULES if a in set(table["algorithm"])]:
        rows = table[table["algorithm"] == algorithm]
        parts = []
        if algorithm not in CONTROLS:
            for word in ("learn (beat SHALLOW)", "no better than SHALLOW", "hurt (below SHALLOW)"):
                hit = rows[rows["hidden layers"] == word]
                if len(hit):
                    where = ", ".join(_setting_name(d, b) for d, b in zip(hit["dataset"], hit["batch_norm"]))
                    label = {"learn (beat SHALLOW)": "beats SHALLOW", "no better than SHALLOW":
                             "is no better than SHALLOW", "hurt (below SHALLOW)": "is below SHALLOW"}[word]
                    parts.append(f"{label} {_in_settings(len(hit), n)} ({where})")
        if algorithm in ALTERNATIVES:
            aligned = int((rows["updates"] == "aligned").sum())
            parts.append(f"its hidden updates have a mean cosine of {_span(rows['alignment'], lambda v: f'{v:.3f}')} "
                         f"with BP's at the same weights (above 0 with 95 % confidence {_in_settings(aligned, n)})")
            ratios = []
            for dataset, batch_norm in settings:
                key = (dataset, batch_norm, algorithm, "block 1")
                if key in medians.index:
                    ratios.append(medians.loc[key, "update_vs_bp"])
            parts.append(f"it moves block 1 {_span(ratios, lambda v: f'{v:.3g}')} times as much per weight as BP "
                         f"would at the same weights and batch")
        if algorithm == "BP":
            reach = []
            for dataset, batch_norm in settings:
                try:
                    b1 = medians.loc[(dataset, batch_norm, "BP", "block 1"), "update_rms"]
                    top = medians.loc[(dataset, batch_norm, "BP", "output"), "update_rms"]
                    reach.append(b1 / top)
                except KeyError:
                    continue
            parts.append(f"its update of block 1 is {_span(reach, lambda v: f'{v:.2g}')} times its update of the "
                         f"output layer, per weight")
        if algorithm in CONTROLS:
            shallow = rows["mean accuracy"]
            parts.append(f"random fixed binary features alone reach a mean best test accuracy of "
                         f"{_span(100 * shallow, lambda v: f'{v:.1f} %')} "
                         f"{f'across the {n} settings' if n > 1 else _in_settings(1, 1)}")
        out[f"mech_{algorithm.lower()}"] = "; ".join(parts) + "."
    without = per_run[~per_run["batch_norm"] & (per_run["layer_name"] != "output")]
    with_bn = per_run[per_run["batch_norm"] & (per_run["layer_name"] != "output")]
    block1 = without[without["layer_name"] == "block 1"]["pass_fraction"]
    deeper = without[without["layer_name"] != "block 1"]["pass_fraction"]
    out["mech_pass"] = (f"Without BN, |z| < 1 holds for {_span(100 * block1, lambda v: f'{v:.1f} %')} of block 1's "
                        f"pre-activations and {_span(100 * deeper, lambda v: f'{v:.1f} %')} of blocks 2–4's "
                        f"(every rule and seed, mean over epochs); with BN for "
                        f"{_span(100 * with_bn['pass_fraction'], lambda v: f'{v:.1f} %')}.")
    flips = []
    for algorithm in ALGORITHMS:
        part = per_run[(per_run["algorithm"] == algorithm) & (per_run["layer_name"] != "output")]
        if len(part):
            flips.append(f"{algorithm} {_span(100 * part.groupby(['dataset', 'batch_norm'])['flip_ratio'].median(), lambda v: f'{v:.2g} %')}")
    out["mech_flips"] = "; ".join(flips)
    out["mech_answer"] = _answer(table, medians, settings)
    layers = {}
    for batch_norm in (False, True):
        for name in ("block 1", "block 4"):
            part = per_run[(per_run["batch_norm"] == batch_norm) & (per_run["layer_name"] == name) &
                           per_run["algorithm"].isin(list(ALTERNATIVES))]
            layers[(batch_norm, name)] = part.groupby(["dataset", "algorithm"])["alignment_cosine"].median()
    out["mech_over_epochs"] = _over_epochs(epoch_change(frame))
    out["mech_alignment_layers"] = (f"Without BN, the alignment of DFA's and DRTP's updates with BP's "
                                    f"{_from_block_1_to_4(layers[(False, 'block 1')], layers[(False, 'block 4')])}; "
                                    f"with BN it {_from_block_1_to_4(layers[(True, 'block 1')], layers[(True, 'block 4')])}"
                                    f" (medians over seeds, per dataset and rule).")
    return out


def _from_block_1_to_4(first: pd.Series, last: pd.Series) -> str:
    """"grows from 0.02–0.03 in block 1 to 0.53–0.60 in block 4": the verb from the numbers (every
    block-4 median above every block-1 one: grows; below: falls; else "is … and …")."""
    def cosines(values):
        return _span(values, lambda v: f"{v:.2f}").replace(" to ", "–")
    if first.empty or last.empty:
        return "is not measured in blocks 1 and 4"
    verb = "grows from" if last.min() > first.max() else "falls from" if last.max() < first.min() else "is"
    return f"{verb} {cosines(first)} in block 1 {'and' if verb == 'is' else 'to'} {cosines(last)} in block 4"


def _answer(table: pd.DataFrame, medians: pd.DataFrame, settings) -> str:
    """The chapter's answer in one sentence, for the settings without BN (where the paper finds BP
    struggles), with each qualifier chosen by the numbers."""
    nobn = table[~table["batch_norm"].astype(bool)]
    bp = nobn[nobn["algorithm"] == "BP"]
    alternatives = nobn[nobn["algorithm"].isin(list(ALTERNATIVES))]
    if bp.empty or alternatives.empty or bp["vs_shallow"].isna().all():
        return "The records do not hold BP, an alternative and SHALLOW without BN at this budget."
    words = set(bp["hidden layers"])
    effect = ("lowers" if words == {"hurt (below SHALLOW)"} else
              "raises" if words == {"learn (beat SHALLOW)"} else "does not consistently raise")
    points = lambda v: f"{100 * v:+.1f}"  # noqa: E731
    ratios = []
    for dataset, batch_norm in settings:
        if batch_norm:
            continue
        for algorithm in ALTERNATIVES:
            key = (dataset, batch_norm, algorithm, "block 1")
            if key in medians.index:
                ratios.append(medians.loc[key, "update_vs_bp"])
    all_raise = (alternatives["hidden layers"] == "learn (beat SHALLOW)").all()
    alternative_effect = "raise it" if all_raise else "do not all raise it"
    if effect == "raises" and all_raise:  # the same direction: "while" would set them against each other
        more = alternatives["vs_shallow"].min() > bp["vs_shallow"].max()
        alternative_effect = f"{', and' if more else ', as'} DFA and DRTP {'raise it more' if more else 'do'}"
    else:
        alternative_effect = f", while DFA and DRTP {alternative_effect}"
    times = lambda v: f"{v:.2f}" if v < 10 else f"{v:.3g}"  # noqa: E731  (0.80 and 2.43, not 0.799 and 2.43)
    return (f"Without BN, training the hidden layers with BP {effect} the accuracy that the network's random "
            f"binary features give by themselves (BP − SHALLOW: {_span(bp['vs_shallow'], points)} "
            f"points){alternative_effect} ({_span(alternatives['vs_shallow'], points)} points). Their hidden "
            f"updates point partly the way BP's do (cosine {_span(alternatives['alignment'], lambda v: f'{v:.2f}')}) "
            + (f"but are {_span(ratios, times)} times larger per weight in block 1 than BP's"
               if ratios and min(ratios) > 1 else
               f"and are {_span(ratios, times)} times as large per weight in block 1 as BP's")
            + " at the same weights and batch.")


CHAPTER = "06c_mechanism"


