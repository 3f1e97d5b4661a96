"""The results chapter: a page per dataset × BN setting (``04_results_template``) — our final
runs, beside the paper's — and the index of every cell beside the paper (``04_results``)."""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from ..data import DatasetError
from ..protocol import Budget, final_configs, get_budget
from ..store import ResultsStore
from .labels import SETTINGS, algorithms_in, bn_slug, data_label, with_setting
from .pages import Page
from .paper import MEASUREMENT_UNCERTAINTY, paper_final_quartiles
from .records import (_agreement, agreement_sentence, budget_statement, epochs_beside_paper, epochs_bold,
                      epochs_label, final_runs, open_store, paper_finals_so_far, recorded_finals, with_controls)
from .render import html_table, percent, prose, save_figure
from .results_figure import best_test_boxplot, caption as figure_caption
from .shallow import control_sentence
from .stats import anova_sentence, one_way_anova

#: a results page's final runs: (selection, summary), or None where its dataset could not be had
Finals = Optional[Tuple[pd.DataFrame, pd.DataFrame]]


# ---------------------------------------------------------------------- a results page, section by section
def page_finals(page: Page) -> Finals:
    """The page's final runs with the SHALLOW control's where recorded — read, or trained where
    missing —, or None after the page says its dataset could not be had (:meth:`Page.data_unavailable`);
    every section below then shows nothing."""
    try:
        [(selection, summary)] = final_runs([(page.dataset, page.batch_norm)], page.budget, page.store, page.data,
                                            page.device, controls=True).values()
    except DatasetError:
        page.data_unavailable()
        show_paper_only(page)
        return None
    return selection, summary


def show_paper_only(page: Page) -> None:
    """Where our runs cannot be had, the paper's own numbers for the setting: what the page will
    set ours beside."""
    table = paper_only_table(page.dataset, page.batch_norm)
    if table.empty:
        display(Markdown(f"The paper published no {page.name} numbers {page.bn_text} batch normalisation."))
        return
    display(Markdown(f"The paper's final runs on {page.name} {page.bn_text} batch normalisation, after 100 epochs "
                     f"(median and inter-quartile range over its 10 seeds, measured from its box plots):"))
    display(html_table(table))


def paper_only_table(dataset: str, batch_norm: bool) -> pd.DataFrame:
    """The paper's median and IQR per configuration of a setting (section 1b), in %."""
    paper = paper_final_quartiles(dataset, batch_norm)
    if paper.empty:
        return pd.DataFrame()
    paper = with_setting(paper).sort_values(["setting", "algorithm"])
    return pd.DataFrame({"setting": paper["setting"].astype(str), "algorithm": paper["algorithm"].astype(str),
                         "paper median (%)": paper["paper_median"].map(percent),
                         "paper IQR (%)": [f"{percent(a)}–{percent(b)}" for a, b in
                                           zip(paper["paper_q1"], paper["paper_q3"])]}).reset_index(drop=True)


def show_finding(page: Page, finals: Finals) -> None:
    """The page's finding first (:func:`finding`)."""
    if finals is not None:
        display(Markdown(finding(paper_comparison(finals[1], page.dataset, page.batch_norm), page.budget)))


def show_figure(page: Page, finals: Finals) -> None:
    """The figure of every seed's best test accuracy."""
    if finals is None:
        return
    figure = best_test_boxplot(finals[1], f"{page.name}, {page.bn_text} BN: best test accuracy of each seed",
                               paper_final_quartiles(page.dataset, page.batch_norm))
    save_figure(figure, f"results_{page.dataset}_{bn_slug(page.batch_norm)}")


def show_figure_caption(page: Page, finals: Finals) -> None:
    if finals is not None:
        page.caption(figure_caption(finals[1], paper_final_quartiles(page.dataset, page.batch_norm)))


def show_provenance(page: Page, finals: Finals) -> None:
    """Which budget the page shows and why, which runs it rests on, whether the SHALLOW control
    and our extensions are among them."""
    if finals is None:
        return
    selection, summary = finals
    configs = final_configs(selection, page.dataset, page.batch_norm, page.budget, page.device)
    display(Markdown(page.budget_sentence))
    display(Markdown(budget_statement(page.budget, page.store, configs)))
    display(Markdown(control_sentence(summary, page.dataset, page.batch_norm, page.budget, page.store)))


def show_accuracy_table(finals: Finals) -> None:
    if finals is None:
        return
    table = accuracy_table(finals[1])
    display(html_table(table[["setting", "algorithm", "mean ± std (%)", "median (%)", "seeds", "diverged",
                              "collapsed"]]))


def show_paper_comparison(page: Page, finals: Finals) -> None:
    if finals is None:
        return
    comparison = paper_comparison(finals[1], page.dataset, page.batch_norm)
    # the verdicts the paper's reading precision could turn are named beside the count they enter
    display(Markdown(prose(" ".join(filter(None, (agreement_sentence(comparison, page.budget, AGREEMENT_TEXT),
                                                  borderline_sentence(comparison)))))))
    display(html_table(marked_verdicts(comparison)))


def show_paper_so_far(page: Page, finals: Finals) -> None:
    """The long run's finished configurations at the paper budget, while the page waits for all of them."""
    so_far = paper_finals_so_far(page.dataset, page.batch_norm, page.results_base) if finals is not None else None
    if so_far is not None:
        sentence, rows = paper_so_far_comparison(so_far, page.dataset, page.batch_norm, page.budget)
        display(Markdown(sentence))
        display(html_table(marked_verdicts(rows)))


def show_anova(finals: Finals) -> None:
    if finals is None:
        return
    display(Markdown(anova_sentence(one_way_anova(finals[1], "DFA", "BP", "binary sign"))))


# ---------------------------------------------------------------------- tables and figures

def accuracy_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Best test accuracy over seeds per algorithm × setting: mean ± std, median, n (diverged apart)."""
    frame = with_setting(summary)
    usable = frame[~frame["diverged"]]
    grouped = usable.groupby(["setting", "algorithm"], observed=True)["best_test_accuracy"]
    table = pd.DataFrame({"mean": grouped.mean(), "std": grouped.std(), "median": grouped.median(),
                          "seeds": grouped.size()})
    table["diverged"] = frame.groupby(["setting", "algorithm"], observed=True)["diverged"].sum()
    # a collapsed run (one class for every test image) is kept in the statistics but counted apart
    table["collapsed"] = frame.groupby(["setting", "algorithm"], observed=True)["collapsed"].agg(collapsed_count) \
        if "collapsed" in frame.columns else "–"  # not recorded: not known
    table["mean ± std (%)"] = [f"{100 * m:.2f} ± {100 * s:.2f}" for m, s in zip(table["mean"], table["std"].fillna(0))]
    # the same formatter as paper_comparison's: numpy's round(2) and Python's decimal rounding
    # disagree on ties such as 60.085, and both tables stand on one page
    table["median (%)"] = table["median"].map(percent)
    return table.reset_index()


def collapsed_count(collapsed: pd.Series) -> str:
    """How many runs collapsed, from a column that is True, False or NA (class counts not
    recorded): "k" when every run is known, "–" when none is, "k of n recorded" otherwise."""
    known = collapsed.dropna()
    if len(known) == len(collapsed):
        return str(int(known.sum()))
    return "–" if known.empty else f"{int(known.sum())} of {len(known)} recorded"


#: the agreement criterion of every comparison with the paper's final runs, as its column is headed
AGREEMENT = "IQRs overlap"
#: ... and as the pages' sentences state it
AGREEMENT_TEXT = "the paper's inter-quartile range overlaps ours"
#: appended to a verdict the paper's reading precision could turn ("yes*"), where a table shows it
BORDERLINE_MARK = "*"


def paper_comparison(summary: pd.DataFrame, dataset: str, batch_norm: bool) -> pd.DataFrame:
    """Our final runs beside the paper's, per algorithm × setting: the paper's median and
    inter-quartile range (measured from its box plots' pixels, to about ±0.01 points:
    ``paper_results.md``, section 1b), our median, inter-quartile range and range over the seeds,
    the difference of the medians, and whether the two inter-quartile ranges overlap (the
    agreement criterion: each half of the seeds of one lies on the other's side of a quartile of
    the other's). Diverged runs are left out of our statistics. Percent, 2 decimals."""
    frame = with_setting(summary[~summary["diverged"]])
    grouped = frame.groupby(["setting", "algorithm"], observed=True)["best_test_accuracy"]
    ours = pd.DataFrame({"median": grouped.median(), "q1": grouped.quantile(0.25), "q3": grouped.quantile(0.75),
                         "min": grouped.min(), "max": grouped.max(), "seeds": grouped.size()}).reset_index()
    paper = with_setting(paper_final_quartiles(dataset, batch_norm))[["setting", "algorithm", "paper_q1",
                                                                       "paper_median", "paper_q3"]]
    grid = pd.DataFrame([(s, a) for s in SETTINGS for a in algorithms_in(summary)], columns=["setting", "algorithm"])
    grid = with_setting(grid.assign(weights=grid["setting"].str.split().str[0],
                                    activation=grid["setting"].str.split().str[1]))[["setting", "algorithm"]]
    table = grid.merge(paper, on=["setting", "algorithm"], how="left").merge(ours, on=["setting", "algorithm"],
                                                                             how="left")
    compared = table["paper_median"].notna() & table["median"].notna()
    overlap = (table["q1"] <= table["paper_q3"]) & (table["paper_q1"] <= table["q3"])
    # how far apart the two IQRs are (negative: by how much they overlap); within the paper's
    # reading uncertainty of touching, the verdict could go either way
    gap = np.maximum(table["q1"] - table["paper_q3"], table["paper_q1"] - table["q3"])
    borderline = compared & (gap.abs() <= MEASUREMENT_UNCERTAINTY[dataset] + 1e-12)

    def spans(low, high):
        return [f"{percent(a)}–{percent(b)}" if a == a else "–" for a, b in zip(low, high)]

    def closest(row):
        """The two quartiles that decide the verdict, to three decimals: at two they can read equal."""
        if row.q1 - row.paper_q3 >= row.paper_q1 - row.q3:  # ours lies above the paper's
            return f"our Q1 {100 * row.q1:.3f} %, the paper's Q3 {100 * row.paper_q3:.3f} %"
        return f"our Q3 {100 * row.q3:.3f} %, the paper's Q1 {100 * row.paper_q1:.3f} %"

    # the verdict and the difference first: on a narrow screen the first columns are what shows
    out = pd.DataFrame({
        "setting": table["setting"].astype(str), "algorithm": table["algorithm"].astype(str),
        AGREEMENT: ["yes" if i else "no" if c else "–" for i, c in zip(overlap, compared)],
        "Δ (points)": [f"{100 * (m - p):+.2f}" if c else "–"
                       for m, p, c in zip(table["median"], table["paper_median"], compared)],
        "our median (%)": table["median"].map(percent),
        "paper median (%)": table["paper_median"].map(percent),
        "our IQR (%)": spans(table["q1"], table["q3"]),
        "paper IQR (%)": spans(table["paper_q1"], table["paper_q3"]),
    })  # no lowest–highest column: the figure shows every seed, and 8 columns fit the page at 1280 px
    out.attrs["compared"] = int(compared.sum())
    out.attrs["agree"] = int((overlap & compared).sum())
    out.attrs["borderline"] = [f"{row.setting} {row.algorithm}: {closest(row)}"
                               for row in table[borderline].itertuples()]
    # keyed by configuration, not position: it still names the right rows after a filter
    out.attrs["borderline_cells"] = {(row.setting, row.algorithm) for row in table[borderline].itertuples()}
    out.attrs["precision"] = 100 * MEASUREMENT_UNCERTAINTY[dataset]  # points
    return out


def marked_verdicts(comparison: pd.DataFrame) -> pd.DataFrame:
    """The comparison as a table shows it: each borderline verdict (:func:`paper_comparison`'s
    ``attrs["borderline_cells"]``) carries :data:`BORDERLINE_MARK`."""
    cells = comparison.attrs.get("borderline_cells", set())
    out = comparison.copy()
    marked = [(s, a) in cells for s, a in zip(out["setting"], out["algorithm"])]
    out.loc[marked, AGREEMENT] = out.loc[marked, AGREEMENT] + BORDERLINE_MARK
    return out


def verdicts(table: pd.DataFrame) -> pd.Series:
    """A table's verdicts without :data:`BORDERLINE_MARK`: "yes", "no" or "–"."""
    return table[AGREEMENT].str.removesuffix(BORDERLINE_MARK)


def borderline_sentence(comparison: pd.DataFrame) -> str:
    """The verdicts the paper's reading uncertainty could turn: IQRs within ±0.01 points of touching."""
    cells = comparison.attrs.get("borderline", [])
    if not cells:
        return ""
    return (f"In {len(cells)} configuration{'s' if len(cells) > 1 else ''} ({'; '.join(cells)}; marked "
            f"{BORDERLINE_MARK} in the table) the two IQRs lie "
            f"within {comparison.attrs['precision']:g} points of touching, the precision of the paper's quartiles: "
            f"{'these verdicts' if len(cells) > 1 else 'that verdict'} could go either way.")


def finding(comparison: pd.DataFrame, budget: Budget) -> str:
    """A results page's finding, from its comparison with the paper (:func:`paper_comparison`):
    how many configurations agree with the paper and how far the medians lie from its, and the
    fully binary networks' medians of DFA and BP (the paper's C1), ours and its."""
    compared = comparison[comparison[AGREEMENT] != "–"]
    if compared.empty:
        return f"After **{epochs_beside_paper(budget)}**: the paper published no numbers for this setting."
    deltas = compared["Δ (points)"].astype(float)
    text = (f"After **{epochs_beside_paper(budget)}**, {AGREEMENT_TEXT} for **{len(compared[compared[AGREEMENT] == 'yes'])} "
            f"of {len(compared)}** configurations, and our medians lie {deltas.min():+.2f} to {deltas.max():+.2f} "
            f"points from the paper's.")
    binary = comparison[(comparison["setting"] == "binary sign") & comparison["algorithm"].isin(["DFA", "BP"])]
    if len(binary) == 2 and (binary["our median (%)"] != "–").all():
        dfa, bp = (binary[binary["algorithm"] == a].iloc[0] for a in ("DFA", "BP"))
        text += (f" Fully binary (binary weights, sign activations), DFA's median is **{dfa['our median (%)']} %** and "
                 f"BP's **{bp['our median (%)']} %** (the paper: {dfa['paper median (%)']} % and {bp['paper median (%)']} %).")
    return text


def paper_so_far_comparison(so_far: pd.DataFrame, dataset: str, batch_norm: bool,
                            page_budget: Budget) -> Tuple[str, pd.DataFrame]:
    """(sentence, table): :func:`paper_comparison` of the configurations finished so far at the
    paper budget (:func:`paper_finals_so_far`), only their rows, with how many of the setting's
    they are; ``page_budget``: the budget the rest of the page shows."""
    table = paper_comparison(so_far, dataset, batch_norm)
    rows = table[table["our median (%)"] != "–"].reset_index(drop=True)
    finished, total = so_far.attrs["configurations"]
    agree = int((rows[AGREEMENT] == "yes").sum())
    compared = int((rows[AGREEMENT] != "–").sum())
    sentence = (f"The long run of {epochs_bold(get_budget('paper'))} has finished every seed of "
                f"**{finished} of the {total}** configurations of this setting so far; until it finishes all, "
                f"this page shows our runs of {epochs_label(page_budget)} above, and here only those {finished}, "
                f"beside the paper: {AGREEMENT_TEXT} "
                f"for **{agree} of {compared}**. Provisional: the table grows as the run "
                f"goes on.")
    return sentence, rows


def results_overview(budget: Budget, store: ResultsStore,
                     settings: Sequence[tuple] = (("mnist", False), ("mnist", True), ("fashion-mnist", False),
                                                  ("fashion-mnist", True))) -> pd.DataFrame:
    """Every cell of the results pages beside the paper: one row per dataset × BN × algorithm ×
    setting (only settings whose runs are all recorded at this budget)."""
    parts, borderline = [], 0
    for dataset, batch_norm in settings:
        summary = recorded_finals(dataset, batch_norm, budget, store)
        if summary is None:
            continue
        table = paper_comparison(with_controls(summary, dataset, batch_norm, budget, store), dataset, batch_norm)
        borderline += len(table.attrs["borderline"])
        parts.append(_overview_rows(marked_verdicts(table), dataset, batch_norm))
    if not parts:
        return pd.DataFrame()
    out = _with_agreement(pd.concat(parts, ignore_index=True))
    out.attrs["borderline_count"] = borderline  # verdicts within the paper's reading precision (each page names them)
    return out


def _overview_rows(comparison: pd.DataFrame, dataset: str, batch_norm: bool, note: str = "") -> pd.DataFrame:
    """A results page's comparison with the paper as rows of the results index: one paper column
    (the paper's median and IQR from section 1b), a data column first."""
    table = comparison.drop(columns=["our IQR (%)", "paper IQR (%)"])  # the index's 48 rows fit the page
    table.insert(0, "data", f"{data_label(dataset, batch_norm)}{note}")
    return table


def _with_agreement(table: pd.DataFrame) -> pd.DataFrame:
    table.attrs["compared"] = int((verdicts(table) != "–").sum())
    table.attrs["agree"] = int((verdicts(table) == "yes").sum())
    return table


def results_overview_so_far(requested: str, results_base: Optional[str], settings: Sequence[tuple]) -> pd.DataFrame:
    """The rows the results index adds while the long run goes on: for each setting shown at
    another budget than paper, its configurations finished so far at the paper budget
    (:func:`paper_finals_so_far`), named "(paper, 8 of 12 so far)" in the data column."""
    parts = []
    for dataset, batch_norm in settings:
        budget, _ = open_store(requested, results_base, needs=[(dataset, batch_norm)])
        so_far = None if budget.name == "paper" else paper_finals_so_far(dataset, batch_norm, results_base)
        if so_far is None:
            continue
        _, rows = paper_so_far_comparison(so_far, dataset, batch_norm, budget)
        finished, total = so_far.attrs["configurations"]
        parts.append(_overview_rows(marked_verdicts(rows), dataset, batch_norm,
                                    f" ({epochs_label(get_budget('paper'))}, {finished} of {total} so far)"))
    return _with_agreement(pd.concat(parts, ignore_index=True)) if parts else pd.DataFrame()


def overview_so_far_sentence(table: pd.DataFrame) -> str:
    """The sentence above :func:`results_overview_so_far`'s table."""
    return (f"While the long run goes on, the configurations it has finished with {epochs_bold(get_budget('paper'))} "
            f"in the settings shown above with fewer epochs, beside the paper. Provisional: {AGREEMENT_TEXT} "
            f"for **{table.attrs['agree']} of {table.attrs['compared']}** "
            f"of them so far.")


def results_overview_by_setting(requested: str, results_base: Optional[str],
                                settings: Sequence[tuple]) -> pd.DataFrame:
    """:func:`results_overview` with each setting at its own budget — with ``best``, the paper
    budget as soon as all of that setting's runs are recorded at it, else cpu — named in the data
    column ("MNIST, no BN (cpu)"); ``attrs["by_budget"]``: {budget: (agree, compared, borderline)}."""
    parts, by_budget = [], {}
    for setting in settings:
        budget, store = open_store(requested, results_base, needs=[setting])
        table = results_overview(budget, store, [setting])
        if table.empty:
            continue
        table["data"] = table["data"] + f" ({epochs_label(budget)})"
        agree, compared, borderline = by_budget.get(budget.name, (0, 0, 0))
        by_budget[budget.name] = (agree + table.attrs["agree"], compared + table.attrs["compared"],
                                  borderline + table.attrs["borderline_count"])
        parts.append(table)
    if not parts:
        return pd.DataFrame()
    out = pd.concat(parts, ignore_index=True)
    out.attrs["by_budget"] = by_budget
    return out


def overview_agreement(table: pd.DataFrame, what: str, where: str = f"marked {BORDERLINE_MARK} below; ") -> str:
    """:func:`agreement_sentence` for each budget the overview's rows come from, with how many of
    its verdicts the paper's reading precision could turn (``where``: how the page shows them)."""
    def borderline(n: int, compared: int) -> str:
        return (f" For {n} of the {compared} the two IQRs lie within {100 * max(MEASUREMENT_UNCERTAINTY.values()):g} points of "
                f"touching, the precision of the paper's quartiles: those verdicts could go either way ({where}each "
                f"results page names them)." if n else "")
    return " ".join(_agreement(agree, compared, get_budget(name), what) + borderline(n, compared)
                    for name, (agree, compared, n) in table.attrs["by_budget"].items())
