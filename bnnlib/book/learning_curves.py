"""The learning curves chapter (``05_learning_curves``): test accuracy epoch by epoch beside the
paper's figure, and whether the runs are still learning when the budget ends."""

from __future__ import annotations

from typing import Dict, Optional

import pandas as pd

from ..protocol import ALGORITHMS, CONTROLS, Budget, epoch_records, final_configs, get_budget
from .labels import (DATASET_NAMES, SETTINGS, algorithm_palette, algorithms_in, bn_short, bn_slug, bn_switch,
                     bn_with, dataset_name, with_setting)
from .records import epochs_label
from .render import READABLE_WIDTH, readable, save_figure, signed_points
from .stats import holm


def curves_by_setting(finals: Dict[tuple, tuple], device: str) -> tuple:
    """Each setting's learning curves (its sign configurations, as the paper's figure) and whether
    its runs are still learning when the budget ends (every configuration, tanh too). ``finals``:
    :func:`~bnnlib.book.records.final_runs_by_setting`. Returns (curves, late gains, budgets), each
    by (dataset, batch_norm)."""
    curves, late, budgets = {}, {}, {}
    for (dataset, batch_norm), (budget, store, selection, _) in finals.items():
        every = final_configs(selection, dataset, batch_norm, budget, device)
        configs = [c for c in every if c.activation == "sign"]  # the paper's figure: sign activations
        curves[dataset, batch_norm] = epoch_records(store, configs, budget)
        # every final configuration (tanh too): are the runs still learning when the budget ends?
        late[dataset, batch_norm] = late_gains(epoch_records(store, every, budget), budget)
        budgets[dataset, batch_norm] = budget
    return curves, late, budgets


def draw_curves(curves: Dict[tuple, pd.DataFrame], budgets: Dict[tuple, Budget], paper_curve: dict) -> None:
    """A figure per setting of :func:`curves_by_setting`'s curves, drawn and saved; the paper's
    points on its own setting's."""
    for (dataset, batch_norm), epochs in curves.items():
        title = f"{DATASET_NAMES[dataset]}, BN {bn_switch(batch_norm)} ({epochs_label(budgets[dataset, batch_norm])})"
        figure = learning_curves_figure(epochs, title,
                                        paper_curve if (dataset, batch_norm) == paper_curve["setting"] else None)
        save_figure(figure, f"learning_curves_{dataset}_{bn_slug(batch_norm)}")


def learning_curves_figure(epochs: pd.DataFrame, title: str, paper_curve: Optional[dict] = None):
    """Test accuracy versus epoch, mean ± std over seeds, one panel per weight kind (sign activations),
    one above the other at the book's readable width, the legend below. ``paper_curve``
    (:func:`~bnnlib.book.paper.paper_learning_curve`): the paper's points for BP with binary
    weights, and its plateau band, drawn where they fall within the epochs shown."""
    import matplotlib.pyplot as plt
    import seaborn as sns
    frame = with_setting(epochs)
    frame["test accuracy (%)"] = 100 * frame["test_accuracy"]
    weights = ["continuous", "binary"]
    rules, palette = algorithms_in(frame), algorithm_palette()
    # a marker per epoch helps read a few epochs; over the paper's 100 it hides the spread band
    marker = "o" if len(frame) == 0 or frame["epoch"].max() <= 20 else None
    with readable():
        fig, axes = plt.subplots(2, 1, figsize=(READABLE_WIDTH, 7.4), sharex=True, sharey=True)
        for ax, kind in zip(axes, weights):
            part = frame[frame["weights"] == kind]
            sns.lineplot(data=part, x="epoch", y="test accuracy (%)", hue="algorithm", errorbar="sd", ax=ax,
                         marker=marker, hue_order=rules, palette=palette, legend=False)
            ax.set_title(f"{kind} weights, sign activations")
            ax.xaxis.get_major_locator().set_params(integer=True)
        handles = [plt.Line2D([], [], color=palette[rule], marker=marker) for rule in rules]
        papers, paper_names = [], []  # the paper's marks: a legend row of their own, under the rules'
        if paper_curve is not None and len(frame):
            last = int(frame["epoch"].max())
            points = [(e, a) for e, a in paper_curve["bp_binary_sign"] if e <= last]
            if points:
                papers += axes[-1].plot([e for e, _ in points], [100 * a for _, a in points], "X", color="black",
                                        markersize=9)
                paper_names.append("paper, BP (read from its figure)")
            if paper_curve["plateau_from"] <= last:
                low, high = paper_curve["plateau"]
                for ax in axes:
                    band = ax.fill_between([paper_curve["plateau_from"], last], 100 * low, 100 * high, color="grey",
                                           alpha=0.15, lw=0)
                papers.append(band)
                paper_names.append("paper, other rules' plateau")
        fig.suptitle(title)
        row = 0.045  # a legend row's height, in figure fractions
        fig.legend(handles, rules, loc="lower center", ncol=len(rules), frameon=False,
                   bbox_to_anchor=(0.5, row if papers else 0.0))
        if papers:
            fig.legend(papers, paper_names, loc="lower center", ncol=len(papers), frameon=False,
                       bbox_to_anchor=(0.5, 0.0))
        fig.tight_layout(rect=(0, row * (2 if papers else 1) + 0.01, 1, 1))
    return fig


def learning_curve_comparison(epochs: pd.DataFrame, paper_curve: dict, budget: Budget, with_paper: bool = True,
                              heading: Optional[str] = None) -> str:
    """The paper's published curve (Fashion-MNIST, sign activations, no BN) beside ours at the
    same epochs: BP with binary weights, and where the other configurations end up
    (``with_paper=False``: ours only, introduced by ``heading``)."""
    last, bp, others = _curve_ends(epochs)
    paper_points = ", ".join(f"{100 * a:.0f} % {'after epoch' if e == 1 else 'at epoch'} {e}"
                             for e, a in paper_curve["bp_binary_sign"])
    epochs = [e for e, _ in paper_curve["bp_binary_sign"]]
    ours = [f"{100 * bp[e]:.1f} % {'after epoch' if e == 1 else 'at epoch'} {e}" for e in epochs if e in bp.index]
    if last and last not in epochs and last in bp.index:
        ours.append(f"{100 * bp[last]:.1f} % at epoch {last}, the last of this budget")
    unreached = [str(e) for e in epochs if e > last]
    if unreached and ours:
        ours[-1] += f" (epoch{'s' if len(unreached) > 1 else ''} {' and '.join(unreached)} not reached at this budget)"
    low, high = paper_curve["plateau"]
    if not len(others):
        return "No Fashion-MNIST runs without BN are recorded at this budget."
    theirs = (f"The paper's figure (Fashion-MNIST, sign activations, no BN; read by eye): BP with binary weights at "
              f"about {paper_points}; every other configuration on a plateau of {100 * low:.0f}–{100 * high:.0f} % by "
              f"about epoch {paper_curve['plateau_from']}. ")
    bp_text = f"BP with binary weights {', '.join(ours)}; " if ours else ""
    return (f"{theirs if with_paper else ''}{heading or f'Ours after **{epochs_label(budget)}**'} (mean over the "
            f"seeds): {bp_text}every other configuration {_span(others)} % at epoch {last}.")


def _curve_ends(epochs: pd.DataFrame) -> tuple:
    """What the paper's figure is read against: the last epoch recorded, BP's mean curve with binary
    weights and sign activations (by epoch), and every other configuration's mean at that last
    epoch (BP with binary tanh left out too, as the paper's plateau leaves out BP's binary runs)."""
    frame = with_setting(epochs)
    mean = frame.groupby(["algorithm", "setting", "epoch"], observed=True)["test_accuracy"].mean()
    last = int(frame["epoch"].max()) if len(frame) else 0
    bp = mean.xs(("BP", "binary sign"), level=["algorithm", "setting"]) if ("BP", "binary sign") in \
        mean.index.droplevel("epoch") else pd.Series(dtype=float)
    others = mean[mean.index.get_level_values("epoch") == last]
    others = others[~((others.index.get_level_values("algorithm") == "BP") &
                      (others.index.get_level_values("setting").str.startswith("binary")))]
    return last, bp, others


def _span(values: pd.Series) -> str:
    """"83.9–88.2" (percent), or one number where both ends read the same."""
    low, high = f"{100 * values.min():.1f}", f"{100 * values.max():.1f}"
    return low if low == high else f"{low}–{high}"


def finding(curves: Dict[tuple, pd.DataFrame], late: Dict[tuple, pd.DataFrame], budgets: Dict[tuple, Budget],
            paper_curve: dict, named: int = 4) -> str:
    """The page's finding for its first screen (Markdown): how many configurations are still rising
    when the budget ends, which (the ``named`` largest rises), and how far our curves end beside the
    paper's figure. ``curves``, ``late``, ``budgets``: :func:`curves_by_setting`'s."""
    tables = {key: table for key, table in late.items() if not table.empty}
    if not tables:
        return "No complete final runs are recorded to tell whether the runs have finished learning."
    labels = {epochs_label(budgets[key]) for key in tables}
    end = f"the {labels.pop()} end" if len(labels) == 1 else "each setting's budget ends"
    rising = pd.concat([table[table["rising"]].assign(dataset=dataset, batch_norm=batch_norm)
                        for (dataset, batch_norm), table in tables.items()]).sort_values("change", ascending=False)
    total = sum(len(table) for table in tables.values())
    names = [f"{r.algorithm} {r.setting} on {dataset_name(r.dataset)} {bn_with(r.batch_norm)} BN "
             f"({signed_points(r.change)} points)" for r in rising.itertuples()]
    if len(names) > named:
        names = names[:named] + [f"{len(names) - named} more"]
    quiet = [f"{dataset_name(d)} {bn_with(bn)} BN" for (d, bn), table in tables.items() if not table["rising"].any()]
    windows = {f"epochs {t.attrs['first']} → {t.attrs['last']}" for t in tables.values()}
    window = windows.pop() if len(windows) == 1 else "each budget's last tenth of epochs"
    text = (f"**{len(rising)} of {total} configurations are still rising when {end}**"
            + (f" (mean gain over {window}): {', '.join(names)}" if names else "")
            + (f"; none in {' or '.join(quiet)}" if quiet and names else "") + ".")
    if paper_curve["setting"] in curves:
        last, bp, others = _curve_ends(curves[paper_curve["setting"]])
        epoch, accuracy = paper_curve["bp_binary_sign"][-1]
        low, high = paper_curve["plateau"]
        if last == epoch and last in bp.index and len(others):
            text += (f"\n\nBeside the paper's figure ({dataset_name(paper_curve['setting'][0])} without BN, sign "
                     f"activations), BP with binary weights ends at {100 * bp[last]:.1f} % (the paper's: about "
                     f"{100 * accuracy:.0f} %) and every other configuration at {_span(others)} % (the paper's "
                     f"plateau: {100 * low:.0f}–{100 * high:.0f} %).")
    return text


def learning_curve_so_far(so_far: pd.DataFrame, epochs: pd.DataFrame, paper_curve: dict) -> str:
    """:func:`learning_curve_comparison`'s sentence for the sign configurations finished so far at
    the paper budget (``so_far``: :func:`paper_finals_so_far`; ``epochs``: the paper budget's
    records), while the page shows another budget; "" when none of them has sign activations."""
    sign = so_far[so_far["activation"] == "sign"]
    if sign.empty:
        return ""
    names = ", ".join(f"{a} {w} sign" for a, w in
                      sign[["algorithm", "weights"]].drop_duplicates().sort_values(["algorithm", "weights"]).values)
    finished = epochs[epochs["run_id"].isin(sign["run_id"]) & (epochs["epoch"] <= get_budget("paper").epochs)]
    return learning_curve_comparison(finished, paper_curve, get_budget("paper"), with_paper=False,
                                     heading=f"Our **{get_budget('paper').epochs}-epoch** runs so far — provisional, from the sign "
                                             f"configurations whose seeds have all finished ({names}) — ours")


def late_gains(epochs: pd.DataFrame, budget: Budget, alpha: float = 0.05) -> pd.DataFrame:
    """Are the runs still learning when the budget ends? Per configuration (setting × algorithm):
    the change of test accuracy over the last tenth of the budget's epochs (at least one), epoch
    N − w → N, mean over the seeds; a one-sided paired t-test over the seeds that it is above 0,
    Holm-corrected over the configurations; and how much those epochs raised the figure of merit
    (best test accuracy over epochs 1…N against 1…N − w), which only grows. A seed lacking either
    epoch (diverged, or not that far) is left out."""
    from scipy import stats

    last = budget.epochs
    window = max(1, last // 10)
    frame = with_setting(epochs[epochs["epoch"] <= last])
    rows = []
    for (setting, algorithm), runs in frame.groupby(["setting", "algorithm"], observed=True):
        accuracy = runs.pivot_table(index="seed", columns="epoch", values="test_accuracy")
        if last not in accuracy or last - window not in accuracy:
            continue
        change = (accuracy[last] - accuracy[last - window]).dropna()
        best_gain = (accuracy.max(axis=1) - accuracy.loc[:, :last - window].max(axis=1))[change.index]
        p = float("nan")
        if len(change) >= 2 and change.std() > 0:
            p = float(stats.ttest_1samp(change, 0.0, alternative="greater").pvalue)
        elif len(change) >= 2:  # every seed changed by the same amount: no doubt about its sign
            p = 0.0 if change.mean() > 0 else 1.0
        rows.append({"setting": str(setting), "algorithm": str(algorithm),
                     "accuracy": float(accuracy[last][change.index].mean()), "change": float(change.mean()),
                     "best_gain": float(best_gain.mean()), "seeds": len(change), "p": p})
    table = pd.DataFrame(rows, columns=["setting", "algorithm", "accuracy", "change", "best_gain", "seeds", "p"])
    table["p_holm"] = holm(table["p"].tolist())
    table["rising"] = table["p_holm"] < alpha
    table.attrs.update(first=last - window, last=last)
    return table


def late_gains_display(gains: Dict[tuple, pd.DataFrame], budgets: Dict[tuple, Budget]) -> pd.DataFrame:
    """:func:`late_gains` of several dataset × BN settings side by side: per configuration, the
    change of mean test accuracy over each setting's last epochs (points), starred where it is
    significantly above 0."""
    columns = {}
    for key, table in gains.items():
        if table.empty:
            continue
        dataset, batch_norm = key
        name = (f"{dataset_name(dataset)}, {bn_short(batch_norm)} "
                f"(ours, epoch {table.attrs['first']} → {table.attrs['last']})")
        starred = [f"{signed_points(c)}{' *' if r else ''}" for c, r in zip(table["change"], table["rising"])]
        columns[name] = pd.Series(starred,
                                  index=pd.MultiIndex.from_arrays([table["setting"], table["algorithm"]]))
    if not columns:
        return pd.DataFrame(columns=["setting", "algorithm"])
    out = pd.DataFrame(columns).reindex(pd.MultiIndex.from_tuples(
        [(s, a) for s in SETTINGS for a in (*ALGORITHMS, *CONTROLS)], names=["setting", "algorithm"]))
    out = out.dropna(how="all").fillna("–").reset_index()
    return out


def late_gains_sentence(gains: Dict[tuple, pd.DataFrame], budgets: Dict[tuple, Budget], named: int = 3) -> str:
    """Which configurations are still rising when each setting's budget ends (the ``named``
    largest rises by name), and the largest late rise of the figure of merit: a Markdown list."""
    items = []
    for (dataset, batch_norm), table in gains.items():
        if table.empty:
            continue
        rising = table[table["rising"]].sort_values("change", ascending=False)
        top = table.loc[table["best_gain"].idxmax()]
        names = [f"{r.algorithm} {r.setting} ({100 * r.change:+.2f} points)" for r in rising.itertuples()]
        if len(names) > named:
            names = names[:named] + [f"{len(names) - named} more"]
        items.append(f"- {dataset_name(dataset)} {bn_with(batch_norm)} BN "
                     f"({epochs_label(budgets[dataset, batch_norm])}: epoch {table.attrs['first']} → "
                     f"{table.attrs['last']}): **{len(rising)} of {len(table)}** configurations still rising"
                     + (f" — {', '.join(names)}" if names else "")
                     + f". Over those epochs the figure of merit rose by at most {100 * top.best_gain:.2f} points "
                       f"({top.algorithm}, {top.setting}).")
    if not items:
        return "No complete final runs are recorded to tell."
    return ("Still rising when the budget ends: mean test accuracy higher at the last epoch than a tenth of the "
            "budget before (one-sided paired t-test over the seeds, Holm-corrected per setting).\n\n"
            + "\n".join(items))
