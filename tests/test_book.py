"""The book: every chapter executes at the smoke budget; the book builds with no warning and
every chapter page renders its figures in a real headless browser."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


def toc_pages():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    pages = [toc["root"]]

    def walk(entries):
        for entry in entries:
            pages.append(entry["file"])
            walk(entry.get("sections", []))
    walk(toc["chapters"])
    return pages


@pytest.mark.parametrize("only, expected", [
    (["04_results_mnist_bn"], ["04_results_mnist_bn.ipynb"]),  # not also …_fashion_mnist_bn
    (["04_results_mnist_bn.ipynb", "05"], ["04_results_mnist_bn.ipynb", "05_learning_curves.ipynb"]),
    (["04_results"], [f"04_results_{d}_{b}.ipynb" for d in ("mnist", "fashion_mnist", "cifar10")
                      for b in ("nobn", "bn")]),
])
def test_only_selects_pages_by_name_or_prefix(only, expected):
    from bnnlib.pipeline import book_pages, select_pages
    assert [target for _, target, _ in select_pages(book_pages({}), only)] == expected


def test_only_naming_no_page_fails_before_executing_and_lists_the_pages(tmp_path):
    from bnnlib.pipeline import execute_book
    with pytest.raises(ValueError, match=r"'mnist_bn' names no page.*04_results_mnist_bn"):
        execute_book("smoke", tmp_path / "out", only=["mnist_bn"])
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_every_chapter_executes_at_the_smoke_budget(tmp_path, mnist_mirror):
    from bnnlib.pipeline import CHAPTERS, RESULT_PAGES, TEMPLATE, execute_book, result_page_name
    env_backup = dict(os.environ)
    os.environ.update(BNNLIB_DATA_MIRROR=str(mnist_mirror), BNNLIB_FIGURES_DIR=str(tmp_path / "figures"),
                      PATH=f"{VENV_BIN}:{os.environ['PATH']}")
    try:
        executed = execute_book("smoke", tmp_path / "chapters", tmp_path / "results")
    finally:
        os.environ.clear()
        os.environ.update(env_backup)
    expected = [c for c in CHAPTERS if c != TEMPLATE] + [result_page_name(d, b) for d, b in RESULT_PAGES]
    assert sorted(p.name for p in executed) == sorted(expected)
    for path in executed:
        notebook = nbformat.read(path, as_version=4)
        errors = [o for c in notebook.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors, f"{path.name}: {errors[0]['ename']}: {errors[0]['evalue']}"
    # each page states the budget that produced it
    for name in ("03_grid_search.ipynb", "04_results_mnist_nobn.ipynb", "05_learning_curves.ipynb"):
        text = json.dumps(nbformat.read(tmp_path / "chapters" / name, as_version=4))
        assert "budget **smoke**" in text
    assert (tmp_path / "figures" / "results_mnist_nobn.png").exists()
    assert (tmp_path / "figures" / "results_mnist_nobn.svg").exists()
    cifar = json.dumps(nbformat.read(tmp_path / "chapters" / "04_results_cifar10_nobn.ipynb", as_version=4))
    assert "CIFAR-10 was not available" in cifar and "BNNLIB_DATA_MIRROR" in cifar


def _chromium():
    for name in ("chromium", "chromium-browser"):
        if shutil.which(name):
            return shutil.which(name)
    return None


@pytest.mark.slow
def test_book_builds_without_warnings_and_renders_every_figure(tmp_path):
    build = subprocess.run([str(VENV_BIN / "jupyter-book"), "build", str(ROOT), "-W", "--keep-going",
                            "--path-output", str(tmp_path)], capture_output=True, text=True,
                           env={**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}"})
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]
    html = tmp_path / "_build" / "html"
    if _chromium() is None or not shutil.which("chromedriver"):
        pytest.skip("Debian's chromium and chromium-driver are not installed")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = _chromium()
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        for page in toc_pages():
            source = ROOT / f"{page}.ipynb"
            expected_images = 0
            if source.exists():
                notebook = nbformat.read(source, as_version=4)
                expected_images = sum("image/png" in o.get("data", {}) for c in notebook.cells
                                      for o in c.get("outputs", []))
            driver.get((html / f"{page}.html").as_uri())
            assert driver.execute_script("return document.readyState") == "complete"
            assert driver.find_elements("css selector", "main h1, article h1"), f"{page}: no heading"
            images = driver.execute_script(
                "return Array.from(document.querySelectorAll('main img, article img'))"
                ".map(i => [i.getAttribute('src'), i.complete, i.naturalWidth])")
            figures = [i for i in images if "logo" not in (i[0] or "")]
            assert len(figures) >= expected_images, f"{page}: {len(figures)} images, {expected_images} expected"
            broken = [src for src, complete, width in figures if not complete or width == 0]
            assert not broken, f"{page}: images not rendered: {broken}"
    finally:
        driver.quit()
