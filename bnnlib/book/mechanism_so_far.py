"""The mechanism chapter while its probed runs at the paper's budget are being recorded (the long
run, across sessions): what the 100-epoch records already say beside the page's shorter probed
runs — BP against SHALLOW from the results pages' final runs (:func:`at_the_papers_budget`), and,
setting by setting as each setting's probed runs are all recorded, the chapter's findings
(:func:`probed_so_far`) and the gap to SHALLOW epoch by epoch (:func:`gap_so_far`). At the paper's
budget the page itself shows them, and these say nothing."""

from __future__ import annotations

from typing import Optional, Sequence

from ..protocol import PROBED_RULES, Budget, get_budget, probed_store
from . import control_gap
from .labels import bn_short, dataset_name
from .mechanism import _setting_name, _span, findings
from .probes import accuracy_frame, all_probed, diagnostics_frame, finals_agreement, recorded_configs, verdicts
from .records import epochs_label, paper_store, recorded_so_far
from .render import save_figure
from .shallow import bp_against_shallow, shallow_beside


def bp_against_shallow_at_paper(datasets: Sequence[str], results_base: Optional[str] = None,
                                skip: Sequence[tuple] = ()) -> tuple:
    """(BP and SHALLOW fully binary per setting, BP's verdict in words, where SHALLOW's numbers come
    from) from the paper budget's final runs (:func:`~bnnlib.book.shallow.shallow_beside`), the
    (dataset, batch_norm) settings in ``skip`` left out; ([], "", "") where none is recorded."""
    paper = get_budget("paper")
    summaries = {key: summary for key, summary in recorded_so_far(paper.name, datasets, results_base).items()
                 if key not in set(skip)}
    _, fully_binary, source = shallow_beside(summaries, paper, results_base) if summaries else ([], [], "")
    if not fully_binary:
        return [], "", ""
    above, n = sum(bp > shallow for bp, shallow, _ in fully_binary), len(fully_binary)
    every = "there" if n == 1 else "in both settings" if n == 2 else f"in all {n} settings"
    verdict = (f"above its untrained ones {every}" if above == n else
               f"at or below its untrained ones {every}" if above == 0 else
               f"above its untrained ones in {above} of {n} settings")
    return fully_binary, verdict, source


def at_the_papers_budget(budget: Budget, datasets: Sequence[str], results_base: Optional[str] = None) -> str:
    """Where the probed runs are shorter than the paper's: what the results pages' 100-epoch final
    runs already say of BP against SHALLOW fully binary (:func:`~bnnlib.book.shallow.shallow_beside`),
    so that a reader of the short answer sees whether it holds at the paper's budget; "" at it."""
    paper = get_budget("paper")
    if budget.epochs >= paper.epochs:
        return ""
    # a setting whose probed runs are recorded at the paper's budget is told by them (probed_so_far, the
    # admonition's first paragraph), not twice: their BP runs may end apart from the finals' (finals_agreement)
    measured = measured_settings(datasets, results_base)
    fully_binary, verdict, source = bp_against_shallow_at_paper(datasets, results_base, skip=measured)
    if not fully_binary and not measured:
        return ""
    finals = (f"After the paper's {epochs_label(paper)}, the results pages' final runs put BP, fully binary, at "
              f"{bp_against_shallow(fully_binary)}: BP's trained hidden layers end {verdict}; SHALLOW's numbers are "
              f"those of its {source}. " if fully_binary else "")
    # on the page: the settings measured at the paper's budget so far, then what its finals say of the others,
    # then the shorter probed runs' answer, labelled by their epochs
    return (f"{finals}The layer-by-layer measurements below are those of probed runs of {epochs_label(budget)}, "
            f"until the long run has recorded them at {epochs_label(paper)} (the Reproducing chapter shows how far "
            f"it is).")


def _finished(datasets: Sequence[str], results_base: Optional[str] = None) -> tuple:
    """(the settings whose probed runs at the paper's budget are all finished, as (dataset,
    batch_norm, configs); the paper budget's probed store; how many probed runs it has in all).
    A setting whose grid search is not complete is not counted: its probed runs are not known yet."""
    paper, store = get_budget("paper"), paper_store(results_base)
    probed = probed_store(store)
    finished, total = [], 0
    for dataset in datasets:
        for batch_norm in (False, True):
            try:
                configs = recorded_configs(dataset, batch_norm, paper, store)
            except LookupError:  # its grid search is not complete: its probed runs are not even known
                continue
            total += len(configs)
            if all_probed(probed, configs, paper):
                finished.append((dataset, batch_norm, configs))
    return finished, probed, total


def measured_settings(datasets: Sequence[str], results_base: Optional[str] = None) -> list:
    """The (dataset, batch_norm) settings whose probed runs are all recorded at the paper's budget."""
    return [(dataset, batch_norm) for dataset, batch_norm, _ in _finished(datasets, results_base)[0]]


def _so_far_label(finished: list, total: int) -> str:
    """"MNIST without BN: 40 of the 160 probed runs": which settings, how many of all."""
    where = ", ".join(_setting_name(d, b) for d, b, _ in finished)
    return f"{where}: {sum(len(c) for *_, c in finished)} of the {total} probed runs"


def probed_so_far(datasets: Sequence[str], results_base: Optional[str] = None, budget: Optional[Budget] = None) -> str:
    """While the paper budget's probed runs are being recorded: the chapter's findings
    (:func:`~bnnlib.book.mechanism.findings`) from the dataset × BN settings whose probed runs are
    all finished there, so that each setting's 100-epoch answer shows as soon as it is measured; ""
    while none is, or where the page's own ``budget`` is the paper's (it shows them all itself)."""
    paper = get_budget("paper")
    if budget is not None and budget.epochs >= paper.epochs:
        return ""
    finished, probed, total = _finished(datasets, results_base)
    if not finished:
        return ""
    configs = [c for _, _, setting in finished for c in setting]
    frame, accuracy = diagnostics_frame(probed, configs, paper), accuracy_frame(probed, configs, paper)
    table = verdicts(frame, accuracy)
    answer = findings(table, frame)["mech_answer"] if not all(b for _, b, _ in finished) else ""
    gaps = control_gap.of_probed(probed, configs, paper, accuracy)
    # as the 5-epoch answer below it reads, so that the two compare sentence by sentence; plain text:
    # the page glues it into an admonition ({glue:text}), where Markdown stays literal
    return " ".join(part for part in (
        f"Measured after {epochs_label(paper)} so far ({_so_far_label(finished, total)}; provisional until all are "
        f"recorded):", answer, _with_bn(table),
        f"Epoch by epoch, where each rule's 95 % interval lies against SHALLOW's and since when: "
        f"{control_gap.finding(gaps)}" if len(gaps) else "", _finals_apart(table, finished, datasets, results_base))
        if part)


def _finals_apart(table, finished: list, datasets: Sequence[str], results_base: Optional[str]) -> str:
    """Where the results pages' final runs (which Conclusions quotes) put BP − SHALLOW fully binary
    elsewhere than these probed runs do, both numbers named: a reader meets both ("" where they agree
    to the shown 0.1 point, or no final is recorded)."""
    measured = {(d, b) for d, b, _ in finished}
    others = [(d, b) for d in datasets for b in (False, True) if (d, b) not in measured]
    fully_binary, _, _ = bp_against_shallow_at_paper(datasets, results_base, skip=others)
    # keyed as shallow_beside names a setting ("MNIST no BN")
    probed = {f"{dataset_name(r['dataset'])} {bn_short(r['batch_norm'])}": f"{100 * r['vs_shallow']:+.1f}"
              for _, r in table[table["algorithm"] == "BP"].iterrows()}
    apart = [(f"{100 * (bp - shallow):+.1f}", probed[where], where) for bp, shallow, where in fully_binary
             if where in probed and f"{100 * (bp - shallow):+.1f}" != probed[where]]
    if not apart:
        return ""
    return ("The results pages' final runs, which Conclusions quotes, put BP − SHALLOW at " +
            "; ".join(f"{final} points ({where}; here {mine})" for final, mine, where in apart) +
            ": their BP runs do not all repeat the probed ones, as the chapter's gap to SHALLOW after "
            f"{epochs_label(get_budget('paper'))} details.")


def _with_bn(table) -> str:
    """"With BN, BP − SHALLOW: +30.6 points; DFA and DRTP: +27.7 to +33.0 points." from the
    verdict table's settings with BN ("" where it has none)."""
    with_bn = table[table["batch_norm"].astype(bool) & table["vs_shallow"].notna()]
    if with_bn.empty:
        return ""
    def points(rows):
        return _span(100 * rows["vs_shallow"], lambda v: f"{v:+.1f}") + " points"
    bp, alternatives = with_bn[with_bn["algorithm"] == "BP"], with_bn[with_bn["algorithm"] != "BP"]
    return ("With BN, " + "; ".join(part for part in (f"BP − SHALLOW: {points(bp)}" if len(bp) else "",
                                                        f"DFA and DRTP: {points(alternatives)}" if len(alternatives)
                                                        else "") if part) + ".")


def gap_so_far(budget: Budget, datasets: Sequence[str], results_base: Optional[str] = None) -> list:
    """Where the page's probed runs are shorter than the paper's: the gap to SHALLOW epoch by epoch
    (:mod:`~bnnlib.book.control_gap`) of the settings whose probed runs at the paper's budget are
    all recorded, as the page shows it — [a sentence (Markdown), the figure, its caption] — so that
    how early the gap opens at 100 epochs, and whether it holds, is seen beside the shorter runs'.
    The figure is saved as ``mechanism_gap_to_shallow_so_far``. [] at the paper's budget or while no
    setting is recorded."""
    import matplotlib.pyplot as plt
    from IPython.display import Markdown

    paper = get_budget("paper")
    finished, probed, total = _finished(datasets, results_base) if budget.epochs < paper.epochs else ([], None, 0)
    if not finished:
        return []
    configs = [c for _, _, setting in finished for c in setting]
    gaps = control_gap.of_probed(probed, configs, paper, accuracy_frame(probed, configs, paper))
    figure = control_gap.figure(gaps)
    if figure is None:
        return []
    save_figure(figure, "mechanism_gap_to_shallow_so_far")
    plt.close(figure)  # shown once, where the list puts it, not again at the cell's end
    seeds = sorted({len(c) // len(PROBED_RULES) for *_, c in finished})
    # whether these runs end where the results pages' finals (which Conclusions quotes) do, and how far apart
    agreement = finals_agreement(probed, paper_store(results_base), configs, paper)
    return [Markdown(f"**The same after the paper's {epochs_label(paper)}, so far** ({_so_far_label(finished, total)}; "
                     f"provisional until all are recorded): {control_gap.finding(gaps)} {agreement}"),
            figure,
            Markdown(f"*Figure: as above, from the probed runs of {epochs_label(paper)} recorded so far "
                     f"({'/'.join(map(str, seeds))} seeds of each rule per setting; epochs on a logarithmic axis, "
                     f"which keeps the first epochs visible beside the hundredth).*")]


def so_far_note(budget: Budget, datasets: Sequence[str], results_base: Optional[str] = None) -> str:
    """For the page's closing provenance, while it shows a shorter budget: which of its parts already
    come from the paper budget's probed runs, so that "this page shows runs of 5 epochs" is not read
    as the whole page ("" where none is finished, or the page shows the paper's budget)."""
    paper = get_budget("paper")
    if budget.epochs >= paper.epochs:
        return ""
    finished, _, total = _finished(datasets, results_base)
    if not finished:
        return ""
    return (f" The probed runs of {epochs_label(paper)} recorded so far ({_so_far_label(finished, total)}) already "
            f"give the short answer's first paragraph and the figure of the gap to SHALLOW after {epochs_label(paper)}; "
            f"everything else on this page is of {epochs_label(budget)}.")
