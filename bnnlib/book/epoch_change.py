"""How the mechanism chapter's probed quantities change from the first epoch to the last: per BN
setting, rule and dataset, the alignment with BP's update, the share of binary weights flipped and
the share of pre-activations inside the STE window — the table of
:mod:`~bnnlib.book.mechanism`'s section "How alignment, flips and the STE window change during
training" and the sentence under it."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .labels import ALGORITHMS, ALTERNATIVES, CONTROLS, DATASET_RANK, bn_with, data_label


def _per_run_epoch(frame: pd.DataFrame, value: str) -> pd.DataFrame:
    """One value per run and epoch: the mean over its hidden layers (and probed batches)."""
    hidden = frame[frame["layer_name"] != "output"]
    return hidden.groupby(["dataset", "batch_norm", "algorithm", "epoch", "run_id"], as_index=False)[value].mean()


def epoch_change(frame: pd.DataFrame) -> pd.DataFrame:
    """Per BN setting and rule, the first and the last epoch's alignment with BP, share of weights
    flipped and share of pre-activations inside the STE window: per dataset, the mean over seeds
    of each run's mean over its hidden layers."""
    first, last = int(frame["epoch"].min()), int(frame["epoch"].max())
    rows = []
    for value in ("alignment_cosine", "flip_ratio", "pass_fraction"):
        data = _per_run_epoch(frame, value)
        data = data[data["epoch"].isin([first, last])]
        means = data.groupby(["batch_norm", "algorithm", "dataset", "epoch"])[value].mean().unstack("epoch")
        for (batch_norm, algorithm, dataset), row in means.iterrows():
            rows.append(dict(batch_norm=batch_norm, algorithm=algorithm, dataset=dataset, value=value,
                             first=row.get(first, np.nan), last=row.get(last, np.nan)))
    table = pd.DataFrame(rows)
    table.attrs.update(first=first, last=last)
    return table


def epoch_change_table(change: pd.DataFrame) -> pd.DataFrame:
    """:func:`epoch_change` for a page: one row per BN setting, rule and dataset."""
    first, last = change.attrs["first"], change.attrs["last"]

    def span(part, column, fmt):
        return _span(part[column], fmt)

    def cosine(v):
        return f"{v:.2f}"

    def percent(v):
        return f"{100 * v:.2f}" if v < 0.01 else f"{100 * v:.1f}"

    rows = []
    datasets = sorted(set(change["dataset"]), key=lambda d: DATASET_RANK.get(d, len(DATASET_RANK)))
    for batch_norm in dict.fromkeys(change["batch_norm"]):
        for algorithm in [a for a in ALGORITHMS if a in set(change["algorithm"])]:
            for dataset in datasets:
                part = change[(change["batch_norm"] == batch_norm) & (change["algorithm"] == algorithm) &
                              (change["dataset"] == dataset)]
                if part.empty:
                    continue
                aligned = part[part["value"] == "alignment_cosine"]
                flipped = part[part["value"] == "flip_ratio"]
                window = part[part["value"] == "pass_fraction"]
                rows.append({"data": data_label(dataset, batch_norm), "rule": algorithm,
                             f"cosine with BP, epoch {first}": "–" if algorithm == "BP" else
                             span(aligned, "first", cosine),
                             f"cosine with BP, epoch {last}": "–" if algorithm == "BP" else
                             span(aligned, "last", cosine),
                             f"flipped (%), epoch {first}": span(flipped, "first", percent),
                             f"flipped (%), epoch {last}": span(flipped, "last", percent),
                             f"|z| < 1 (%), epoch {first}": span(window, "first", percent),
                             f"|z| < 1 (%), epoch {last}": span(window, "last", percent)})
    return pd.DataFrame(rows)


def _over_epochs(change: pd.DataFrame) -> str:
    """The table's message in one sentence, each qualifier decided by the numbers."""
    first, last = change.attrs["first"], change.attrs["last"]
    growing, falling, windows, settings = [], [], [], list(dict.fromkeys(change["batch_norm"]))
    for batch_norm in settings:
        where = "with BN" if batch_norm else "without BN"
        aligned = change[(change["batch_norm"] == batch_norm) & (change["value"] == "alignment_cosine")]
        rules = [a for a in ALTERNATIVES if (aligned["algorithm"] == a).any()
                 and ((aligned["last"] - aligned["first"])[aligned["algorithm"] == a] > 0.02).all()]
        if rules:
            growing.append(f"{' and '.join(rules)} {where}")
        flips = change[(change["batch_norm"] == batch_norm) & (change["value"] == "flip_ratio") &
                       ~change["algorithm"].isin(CONTROLS)]
        if len(flips) and (flips["last"] < flips["first"]).all():
            falling.append(where)
        window = change[(change["batch_norm"] == batch_norm) & (change["value"] == "pass_fraction") &
                        ~change["algorithm"].isin(CONTROLS)]
        if len(window):
            windows.append(f"{bn_with(batch_norm)} BN from {_dash_span(100 * window['first'])} in epoch {first} to "
                           f"{_dash_span(100 * window['last'])} in epoch {last}")
    alignment = (f"the alignment with BP's update grows by more than 0.02 on every dataset for "
                 f"{' and for '.join(growing)}" if growing else
                 "no rule's alignment with BP's update grows by more than 0.02 on every dataset")
    fewer = "fewer binary weights flip in the last epoch than in the first"
    if len(falling) == len(settings):
        flipping = f"{fewer}, for every rule, dataset and BN setting"
    elif falling:
        flipping = f"{fewer} for every rule {' and '.join(falling)}"
    else:
        flipping = "the share of binary weights flipped does not fall for every rule in any BN setting"
    window = (f"; the share of the hidden blocks' pre-activations inside the STE window |z| < 1 goes "
              f"{' and '.join(windows)} (every rule and dataset)" if windows else "")
    return f"From epoch {first} to epoch {last}, {alignment}; {flipping}{window}."


def _span(values, fmt) -> str:
    """"0.14" or "0.14–0.29": the values' range as ``fmt`` writes them ("–" where none is known:
    a run without a record at that epoch has none)."""
    values = [v for v in values if v == v]
    if not values:
        return "–"
    low, high = fmt(min(values)), fmt(max(values))
    return low if low == high else f"{low}–{high}"


def _dash_span(values) -> str:
    """"0.55–3.4 %": a range of percentages inside a sentence that says "from … to …" itself."""
    span = _span(values, lambda value: f"{value:.2g}" if value < 1 else f"{value:.1f}")
    return span if span == "–" else f"{span} %"
