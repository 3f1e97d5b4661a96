"""The book's pipeline: execute every chapter with papermill at one budget.

    python -m bnnlib book --budget cpu              # chapters executed in place, then built
    python -m bnnlib book --budget smoke --output /tmp/book --results-base /tmp/results

The results chapter is ONE template notebook (``chapters/04_results_template.ipynb``)
executed once per dataset × BN setting into its own page.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from ..paths import CHAPTERS_DIR
from .labels import DATASET_NAMES, PAGE_TITLES
from .paper import paper_final_medians
from .toc import CHAPTERS, DATA_UNAVAILABLE, RESULT_PAGES, TEMPLATE, result_page_name


def book_pages(parameters: Dict) -> List[Tuple[str, str, Dict]]:
    """(source notebook, executed page, papermill parameters) for every page, in book order."""
    jobs = []
    for chapter in CHAPTERS:
        if chapter == TEMPLATE:
            for dataset, batch_norm in RESULT_PAGES:
                jobs.append((chapter, result_page_name(dataset, batch_norm),
                             {**parameters, "dataset": dataset, "batch_norm": batch_norm}))
        else:
            jobs.append((chapter, chapter, parameters))
    return jobs


def select_pages(jobs: List[Tuple[str, str, Dict]], only: Optional[List[str]]) -> List[Tuple[str, str, Dict]]:
    """The pages named by ``only``: each entry is a page's file name, with or without
    ``.ipynb``, or a prefix of it (``04_results`` = every results page). A prefix, not a
    substring, so that ``04_results_mnist_bn`` does not also select ``…_fashion_mnist_bn``.
    An entry that names no page is an error, raised before anything is executed."""
    if not only:
        return jobs
    pages = [target for _, target, _ in jobs]
    unknown = [o for o in only if not any(page.startswith(o) for page in pages)]
    if unknown:
        raise ValueError(f"--only {', '.join(map(repr, unknown))} names no page; accepted: a page name "
                         f"or its prefix, of {', '.join(page.removesuffix('.ipynb') for page in pages)}")
    return [job for job in jobs if any(job[1].startswith(o) for o in only)]


def execute_book(budget: str, output: Optional[Path] = None, results_base: Optional[str] = None,
                 extra: Optional[Dict] = None, kernel: str = "python3", only: Optional[List[str]] = None) -> List[Path]:
    """Execute every chapter (in order) with papermill; returns the executed notebooks."""
    import papermill

    absolute_paths_in_environment()
    output = Path(output).resolve() if output else CHAPTERS_DIR
    results_base = Path(results_base).expanduser().resolve() if results_base else None
    parameters = {"budget": budget, "results_base": str(results_base) if results_base else None, **(extra or {})}
    jobs = select_pages(book_pages(parameters), only)
    output.mkdir(parents=True, exist_ok=True)
    done = []
    for source, target, params in jobs:
        print(f"papermill {source} → {output / target} ({params})", flush=True)
        papermill.execute_notebook(str(CHAPTERS_DIR / source), str(output / target), parameters=params,
                                   kernel_name=kernel, cwd=str(CHAPTERS_DIR), progress_bar=False)
        for_readers(output / target, params, source)
        done.append(output / target)
    return done


#: folders a user may give relative to where they run the command; papermill runs each page from
#: chapters/, where a relative path would name another folder
PATH_VARIABLES = ("BNNLIB_DATA_MIRROR", "BNNLIB_DATA_ROOT", "BNNLIB_FIGURES_DIR")


def absolute_paths_in_environment() -> None:
    """Make the path variables absolute, relative to the current folder (the README's
    ``export BNNLIB_DATA_MIRROR=../shared/data`` means ../shared/data from where ``make`` runs)."""
    for name in PATH_VARIABLES:
        if os.environ.get(name):
            os.environ[name] = str(Path(os.environ[name]).expanduser().resolve())


#: what papermill and Jupyter write that changes with every execution but no output: stripped,
#: so that re-executing an up-to-date page leaves its committed file unchanged
VOLATILE_NOTEBOOK_KEYS = ("start_time", "end_time", "duration", "input_path", "output_path")
VOLATILE_CELL_KEYS = ("papermill", "execution")


def stable(notebook) -> None:
    """Strip timestamps, durations and this machine's paths; give the injected cell a fixed id."""
    papermill_meta = notebook.metadata.get("papermill", {})
    for key in VOLATILE_NOTEBOOK_KEYS:
        papermill_meta.pop(key, None)
    papermill_meta.pop("environment_variables", None)
    for cell in notebook.cells:
        for key in VOLATILE_CELL_KEYS:
            cell.metadata.pop(key, None)
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell["id"] = "injected-parameters"


def for_readers(path: Path, parameters: Dict, source: Optional[str] = None) -> None:
    """Shape an executed page for readers: code hidden (outputs kept); the parameters out of the
    way, in a closing section "How this page was produced"; a results page titled with its
    dataset and BN setting. Only tags, the title and that markdown section change, so
    re-executing the page (nbval) gives the same outputs."""
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    notebook.cells = [c for c in notebook.cells if c.get("id") != PRODUCED_CELL_ID]  # idempotent
    defaults = injected = ""
    for cell in notebook.cells:
        tags = [t for t in cell.metadata.get("tags", [])
                if t not in ("remove-input", "hide-input", "remove-cell", DATA_UNAVAILABLE)]
        if cell.cell_type == "code":
            if "parameters" in tags:
                defaults = cell.source
                tags.append("remove-cell")
            elif "injected-parameters" in tags:
                injected = cell.source
                tags.append("remove-cell")
            else:
                tags.append("remove-input")
        cell.metadata["tags"] = tags
    # a page whose dataset could not be had says so in one admonition, its output marked
    # (Page.data_unavailable): its cell is tagged, and the sections after it would be empty
    # headings, so they are left out of what readers see
    for cell in notebook.cells:
        if any(output.get("metadata", {}).get(DATA_UNAVAILABLE) for output in cell.get("outputs", [])):
            cell.metadata["tags"].append(DATA_UNAVAILABLE)
    unavailable = next((i for i, cell in enumerate(notebook.cells)
                        if DATA_UNAVAILABLE in cell.metadata.get("tags", [])), None)
    if unavailable is not None:
        for cell in notebook.cells[unavailable + 1:]:
            tags = [t for t in cell.metadata.get("tags", []) if t not in ("remove-input", "hide-input")]
            cell.metadata["tags"] = tags + ["remove-cell"]
    if "dataset" in parameters and "batch_norm" in parameters and path.name.startswith("04_results_"):
        first = next(c for c in notebook.cells if c.cell_type == "markdown")
        lines = first.source.split("\n")
        name, setting = DATASET_NAMES[parameters["dataset"]], PAGE_TITLES[bool(parameters["batch_norm"])]
        lines[0] = f"# Results: {name}, {setting}"
        if unavailable is not None:  # the template's opening describes results this page cannot show
            published = paper_final_medians(parameters["dataset"])
            if (published["batch_norm"] == bool(parameters["batch_norm"])).any():
                lines[1:] = ["", f"What the paper published for {name} {setting}, and the command that sets our "
                                 f"runs beside it once {name} is provided."]
            else:
                lines[1:] = ["", f"The paper published no {name} numbers {setting}; this page gives the command that runs ours "
                                 f"once {name} is provided."]
        first.source = "\n".join(lines)
    notebook.cells.append(nbformat.v4.new_markdown_cell(
        produced_section(path.name, source or path.name, defaults, injected), id=PRODUCED_CELL_ID))
    stable(notebook)
    nbformat.write(notebook, path)


PRODUCED_CELL_ID = "how-this-page-was-produced"


def produced_section(page: str, source: str, defaults: str, injected: str) -> str:
    """The closing section of a page: which notebook, which command, which parameters."""
    stem = page.removesuffix(".ipynb")
    given = "\n".join(line for line in injected.splitlines() if line.strip() and not line.startswith("#"))
    return (f"## How this page was produced\n\n"
            f"This page is the notebook `chapters/{source}` executed by papermill "
            f"(`python -m bnnlib book --only {stem}` produces it again; a chapter whose results are missing "
            f"computes them). The parameters of this execution:\n\n```python\n{given}\n```\n\n"
            f"````{{dropdown}} Every parameter and its default\n```python\n{defaults.strip()}\n```\n````\n")
