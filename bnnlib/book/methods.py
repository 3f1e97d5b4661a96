"""The Methods chapter (``02_methods``): its diagrams, and the account of the mechanism from the
probed runs as recorded."""

from __future__ import annotations

from typing import Optional, Sequence

from ..protocol import probed_store
from .diagrams import binarised_layer_diagram, learning_signal_diagram  # noqa: F401 (the page draws them)
from .mechanism import CHAPTER, findings
from .probes import accuracy_frame, diagnostics_frame, open_store, recorded_configs, verdicts
from .records import budget_statement, epochs_label



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
    accuracy = accuracy_frame(probed, configs, budget_obj)
    if len(accuracy) < len(configs) or ((accuracy["epochs_done"] < budget_obj.epochs) & ~accuracy["diverged"]).any():
        return f"The measurement of this mechanism is in {link}; its runs are not all recorded at the " \
               f"**{epochs_label(budget_obj)}** yet."
    frame = diagnostics_frame(probed, configs, budget_obj)
    text = findings(verdicts(frame, accuracy), frame)
    return (f"**What the measurements show** (the fully binary final runs of every rule, "
            f"**{epochs_label(budget_obj)}**, probed layer by layer; figures and tests in {link}). {text['mech_pass']} "
            f"**BP** {text['mech_bp']} **DFA** {text['mech_dfa']} **DRTP** {text['mech_drtp']} "
            f"**SHALLOW** (output layer only): {text['mech_shallow']}\n\n{budget_statement(budget_obj, probed, configs)}")
