"""The book layer is a tree of small modules: no import cycle inside ``bnnlib/book``, no import of
the library hidden inside a function (the way a cycle is dodged), no module over the line limit."""

import ast
from pathlib import Path

import pytest

BOOK = Path(__file__).resolve().parent.parent / "bnnlib" / "book"
MAX_LINES = 400


def _modules():
    return {path.stem: path for path in sorted(BOOK.glob("*.py"))}


def _book_imports(node: ast.AST) -> set:
    """The modules of bnnlib.book an import statement names (``from .x import``, ``from . import x``,
    ``from bnnlib.book.x import``, ``import bnnlib.book.x``)."""
    names = set()
    if isinstance(node, ast.ImportFrom):
        module = node.module or ""
        if node.level == 1:
            names |= {module.split(".")[0]} if module else {alias.name for alias in node.names}
        elif node.level == 0 and module.startswith("bnnlib.book"):
            rest = module.removeprefix("bnnlib.book").lstrip(".")
            names |= {rest.split(".")[0]} if rest else {alias.name for alias in node.names}
    elif isinstance(node, ast.Import):
        names |= {alias.name.split(".")[2] for alias in node.names if alias.name.startswith("bnnlib.book.")}
    return names


def import_graph(modules=None) -> dict:
    """module → the modules of bnnlib.book it imports (at any depth of its code)."""
    modules = modules or _modules()
    graph = {}
    for name, path in modules.items():
        graph[name] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            graph[name] |= _book_imports(node) & set(modules)
        graph[name].discard(name)
    return graph


def find_cycle(graph: dict):
    """One import cycle as a list of modules (first = last), or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_book_layer_has_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, f"import cycle in bnnlib/book: {' → '.join(cycle)}"


def test_no_module_of_the_book_layer_imports_the_library_inside_a_function():
    hidden = []
    for name, path in _modules().items():
        for function in ast.walk(ast.parse(path.read_text())):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.ImportFrom) and (node.level > 0 or (node.module or "").startswith("bnnlib")) \
                        or isinstance(node, ast.Import) and any(a.name.startswith("bnnlib") for a in node.names):
                    hidden.append(f"{name}.py:{node.lineno} (in {function.name})")
    assert not hidden, f"imports of the library inside functions: {', '.join(hidden)}"


def test_no_module_of_the_book_layer_is_over_the_line_limit():
    long = {name: n for name, path in _modules().items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


@pytest.mark.slow
def test_every_module_of_the_book_layer_imports_alone():
    """In a fresh interpreter each module loads by itself (a cycle resolved only by import order fails)."""
    import subprocess
    import sys
    for name in _modules():
        module = "bnnlib.book" if name == "__init__" else f"bnnlib.book.{name}"
        done = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True)
        assert done.returncode == 0, f"import {module}: {done.stderr[-2000:]}"


@pytest.mark.parametrize("graph, cycle", [
    ({"a": {"b"}, "b": {"c"}, "c": set()}, None),
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]),
    ({"a": {"b", "c"}, "b": {"c"}, "c": {"b"}}, ["b", "c", "b"]),
])
def test_the_cycle_finder_finds_a_cycle_and_only_a_cycle(graph, cycle):
    assert find_cycle(graph) == cycle


def test_the_checks_see_an_import_inside_a_function_and_a_long_module(tmp_path):
    """The checks above read the real files: a cycle through a function-local import is seen."""
    (tmp_path / "a.py").write_text("from .b import x\n")
    (tmp_path / "b.py").write_text("def x():\n    from .a import y\n    return y\n")
    graph = import_graph({"a": tmp_path / "a.py", "b": tmp_path / "b.py"})
    assert find_cycle(graph) == ["a", "b", "a"]
