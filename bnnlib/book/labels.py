"""The book's vocabulary: names of datasets, settings, BN and rules, the order tables list them
in, and the colours figures give them — one spelling for each, used by every page.

BN is written four ways on the pages, each by one function: :func:`bn_short` ("BN" / "no BN",
a table's data column), :func:`bn_with` ("with" / "without", in a sentence: "MNIST without BN"),
:func:`bn_switch` ("on" / "off", a figure's title: "BN off", the CLI's word) and :func:`bn_slug`
("bn" / "nobn", in file names).
"""

from __future__ import annotations

from typing import List

import pandas as pd

from ..config import switch_word
from ..protocol import ALGORITHMS, CONTROLS, EXTENSIONS, REPORTED_ALGORITHMS
from ..trainers import TRAINERS, rule_colours

#: the paper's baseline and the alternatives to it that its claims are about (DFA, DRTP)
BASELINE = "BP"
ALTERNATIVES = tuple(a for a in ALGORITHMS if a != BASELINE)
#: our own rules (controls and extensions): shown beside the paper's, never in its claims
OUR_RULES = CONTROLS + EXTENSIONS

SETTINGS = ["continuous tanh", "continuous sign", "binary tanh", "binary sign"]
DATASET_NAMES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST", "cifar10": "CIFAR-10"}
DATASET_RANK = {dataset: i for i, dataset in enumerate(DATASET_NAMES)}  # the order every page lists them in


def with_setting(frame: pd.DataFrame) -> pd.DataFrame:
    """Add the ordered 'setting' column: continuous tanh / continuous sign / binary tanh / binary
    sign; the rules ordered as :func:`algorithms_in`. A rule the registry does not know is an
    error naming it, never rows silently dropped."""
    frame = frame.copy()
    unknown = sorted(set(frame["algorithm"].astype(str)) - set(REPORTED_ALGORITHMS))
    if unknown:
        raise ValueError(f"rule(s) {', '.join(unknown)} in a table are not registered; accepted: "
                         f"{', '.join(REPORTED_ALGORITHMS)} (a rule is a module of bnnlib/rules/)")
    frame["setting"] = pd.Categorical(frame["weights"] + " " + frame["activation"], SETTINGS, ordered=True)
    frame["algorithm"] = pd.Categorical(frame["algorithm"], algorithms_in(frame), ordered=True)
    return frame


def algorithms_in(frame: pd.DataFrame) -> List[str]:
    """The rules a table reports, in order: the paper's three always, then our controls and
    extensions where the table holds their runs (no empty slot for a rule that was not run)."""
    present = set(frame["algorithm"].astype(str)) if "algorithm" in frame else set()
    return list(ALGORITHMS) + [a for a in OUR_RULES if a in present]


def rule_kind(algorithm: str) -> str:
    """"paper's", "control" or "extension": what a rule is to the book (its registered role)."""
    return {"paper": "paper's", "control": "control", "extension": "extension"}[TRAINERS.get(algorithm).role]


def in_table_order(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows by setting (continuous tanh … binary sign), then rule (BP, DFA, DRTP)."""
    order = {**{s: i for i, s in enumerate(SETTINGS)}, **{a: i for i, a in enumerate(REPORTED_ALGORITHMS)}}
    return frame.sort_values(["setting", "algorithm"], key=lambda c: c.astype(str).map(order))


def algorithm_palette() -> dict:
    """One colour per rule on every figure, as each rule declares it (bnnlib/rules/): the
    colour-blind palette's first three for the paper's rules, grey for the SHALLOW control."""
    from matplotlib.colors import to_rgb
    return {rule: to_rgb(colour) for rule, colour in rule_colours().items()}


def setting_palette() -> dict:
    """The four (weights × activation) settings in four colour-blind-safe hues that differ in
    lightness too (blue, orange, green, purple of seaborn's colour-blind palette)."""
    import seaborn as sns
    colours = sns.color_palette("colorblind", 10)
    return dict(zip(SETTINGS, [colours[0], colours[1], colours[2], colours[4]]))


COLLAPSED_COLOUR = "#c0392b"  # a collapsed run on a figure

#: a results page's title after its dataset
PAGE_TITLES = {False: "without batch normalisation", True: "with batch normalisation"}


def dataset_name(dataset: str) -> str:
    """"MNIST", "Fashion-MNIST", "CIFAR-10" (an unknown dataset by its own name)."""
    return DATASET_NAMES.get(dataset, dataset)


def bn_short(batch_norm: bool) -> str:
    """"BN" or "no BN": a BN setting in a table's data column."""
    return "BN" if batch_norm else "no BN"


def bn_with(batch_norm: bool) -> str:
    """"with" or "without": a BN setting in a sentence ("MNIST without BN")."""
    return "with" if batch_norm else "without"


def bn_switch(batch_norm: bool) -> str:
    """"on" or "off": a BN setting in a figure's title ("BN off"), as the CLI's ``--batch-norm`` takes it."""
    return switch_word(batch_norm)


def bn_slug(batch_norm: bool) -> str:
    """"bn" or "nobn": a BN setting in a file name."""
    return "bn" if batch_norm else "nobn"


def data_label(dataset: str, batch_norm: bool) -> str:
    """"MNIST, no BN": a dataset × BN setting in a table's data column."""
    return f"{dataset_name(dataset)}, {bn_short(batch_norm)}"


def learning_rate(lr: float) -> str:
    """"1e-5": a learning rate as Methods and the paper write them (Python's own forms, "1e-05" and
    "0.0001", mixed on one page, read as two kinds of number)."""
    if lr != lr or lr in (float("inf"), float("-inf")):  # not known (a cell the paper has no choice for)
        return "–"
    mantissa, exponent = f"{lr:e}".split("e")
    return f"{float(mantissa):g}e{int(exponent)}"


def init_and_lr(init: float, lr: float) -> str:
    """"0.1, 1e-5": a grid-search choice (the initial weights' scale, the learning rate)."""
    return f"{init:g}, {learning_rate(lr)}"
