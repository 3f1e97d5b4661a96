"""The Methods chapter (``02_methods``): its diagrams, and the account of the mechanism from the
probed runs as recorded."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ..protocol import get_budget, probed_store
from .diagrams import binarised_layer_diagram, learning_signal_diagram  # noqa: F401 (the page draws them)
from .mechanism import CHAPTER, findings
from .mechanism_so_far import bp_against_shallow_at_paper, measured_settings, probed_so_far
from .probes import accuracy_frame, all_probed, diagnostics_frame, open_store, recorded_configs, verdicts
from .evaluation_check import check_runs_of, moved_by_pass, usable
from .labels import dataset_name
from .records import budget_statement, epochs_bold, epochs_label, recorded_finals
from .records import open_store as open_records
from .results import paper_comparison
from .stats import p_text, sign_test


def opening(requested: str, results_base: Optional[str] = None,
            datasets: Sequence[str] = ("mnist", "fashion-mnist")) -> str:
    """The page's first screen: how many final runs follow the protocol, and what measuring our one
    departure from the original code that could move a number — its training-mode evaluation pass
    with BN — says about the one systematic difference from the paper, our BN medians above its
    medians (read from the records, as the results pages read them)."""
    deltas = {False: [], True: []}  # our median − the paper's, points, per configuration
    shifted, effect, finals, labels = [], [], 0, set()
    for dataset in datasets:
        for batch_norm in (False, True):
            budget, store = open_records(requested, results_base, needs=[(dataset, batch_norm)])
            summary = recorded_finals(dataset, batch_norm, budget, store)
            if summary is None:
                return (f"**In short.** What our runs say about each deviation from the paper is stated here once "
                        f"every final run of {dataset_name(dataset)} is recorded; "
                        f"[Reproducing](08_reproducing.ipynb) shows how far the runs are.")
            finals += len(summary)
            labels.add(epochs_bold(budget))
            comparison = paper_comparison(summary, dataset, batch_norm)
            compared = comparison[comparison["Δ (points)"] != "–"]
            deltas[batch_norm] += list(compared["Δ (points)"].astype(float))
            if batch_norm:
                selection = summary[["algorithm", "weights", "activation", "init", "lr"]].drop_duplicates()
                runs = usable(check_runs_of(store, budget, dataset, selection))
                effect += list(100 * (runs["paper_code"] - runs["standard"]))
                shifted += list(moved_by_pass(compared, runs)["shifted"])  # as the results pages move it
    bn, no_bn = np.array(deltas[True]), np.array(deltas[False])

    def split(deltas: np.ndarray) -> tuple:
        """How many lie above, how many read equal (the sign test leaves those out, and says so)."""
        equal = int((deltas == 0).sum())
        test = f"sign test{f' over the {len(deltas) - equal} that differ' if equal else ''}"
        return (f"{int((deltas > 0).sum())} of {len(deltas)}",
                f" and {equal} equal{'s' if equal == 1 else ''} it to two decimals" if equal else "",
                f"{test}: p = {p_text(sign_test(deltas))}")

    (bn_count, bn_equal, bn_test), (no_bn_count, no_bn_equal, no_bn_test) = split(bn), split(no_bn)
    text = (f"**In short.** Our {finals} final runs, of {' and '.join(sorted(labels))}, follow the paper's "
            f"protocol below. One difference from the paper's numbers is systematic: with BN, **{bn_count}** of our "
            f"medians lie above the paper's{bn_equal} (mean {bn.mean():+.2f} points; {bn_test}); without BN, "
            f"{no_bn_count}{no_bn_equal} (mean {no_bn.mean():+.2f}; {no_bn_test}).")
    if not effect:
        return text + (" Whether the original code's evaluation pass, which this reproduction leaves out, explains "
                       "it is measured by the evaluation check, whose runs are not recorded yet (Reproducing).")
    moved = np.array(shifted)
    accounts = (moved > 0).sum() <= len(moved) / 2
    return text + (
        f" The one departure from the original code that could cause it — its training-mode evaluation pass, which "
        f"moves BN's running statistics before the test set is evaluated (last section) — was measured on "
        f"{len(effect)} runs: it changes a run's best test accuracy by **{np.mean(effect):+.2f}** points on average "
        f"({min(effect):+.2f} to {max(effect):+.2f}); moved by it, our medians would lie above the paper's in "
        f"{int((moved > 0).sum())} of the {len(moved)} configurations measured, so it "
        f"{'accounts for' if accounts else '**does not account for**'} the difference.")


def methods_summary(budget: str, results_base: Optional[str] = None,
                    datasets: Sequence[str] = ("mnist", "fashion-mnist")) -> str:
    """The Methods chapter's account of the mechanism, from the probed runs as recorded (nothing
    is computed); a pointer to the chapter while they are not all recorded."""
    settings = [(d, b) for d in datasets for b in (False, True)]
    # the page's cell renders this Markdown as MyST (its metadata mystnb.markdown_format), which
    # resolves a link to a notebook to the chapter's page; as CommonMark the link stays dead
    link = f"[Why the alternatives work on binary networks]({CHAPTER}.ipynb)"
    try:
        budget_obj, store = open_store(budget, results_base, settings)
        configs = [c for d, b in settings for c in recorded_configs(d, b, budget_obj, store)]
    except LookupError:
        return f"The measurement of this mechanism is in {link}; its runs are not recorded at this budget yet."
    probed = probed_store(store)
    if not all_probed(probed, configs, budget_obj):
        return f"The measurement of this mechanism is in {link}; its runs are not all recorded at the " \
               f"**{epochs_label(budget_obj)}** yet."
    frame = diagnostics_frame(probed, configs, budget_obj)
    text = findings(verdicts(frame, accuracy_frame(probed, configs, budget_obj)), frame)
    paper = get_budget("paper")
    later = ""
    if budget_obj.epochs < paper.epochs:  # what the paper's budget already says: its probed runs so far, its finals
        measured = measured_settings(datasets, results_base)
        cells, verdict, source = bp_against_shallow_at_paper(datasets, results_base, skip=measured)
        finals = (f"After the paper's {epochs_label(paper)}, the results pages' final runs put BP's trained hidden "
                  f"layers, fully binary, {verdict.removesuffix(' there')} ({', '.join(name for _, _, name in cells)}), "
                  f"SHALLOW's numbers being those of its {source}." if verdict else "")
        parts = [part for part in (probed_so_far(datasets, results_base, budget_obj), finals) if part]
        if parts:
            later = " " + " ".join(parts + [f"The chapter measures the rest at {epochs_label(paper)} once its "
                                            f"probed runs are recorded."])
    return (f"**What the measurements show** (the fully binary final runs of every rule, "
            f"**{epochs_label(budget_obj)}**, probed layer by layer; figures and tests in {link}). {text['mech_pass']} "
            f"**BP** {text['mech_bp']} **DFA** {text['mech_dfa']} **DRTP** {text['mech_drtp']} "
            f"**SHALLOW** (output layer only): {text['mech_shallow']}{later}\n\n"
            f"{budget_statement(budget_obj, probed, configs)}")
