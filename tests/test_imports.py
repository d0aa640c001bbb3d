"""chat_backend's modules import one way: no module imports, even only for type checking, one that imports it."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "chat_backend"


def imports_of(path: Path) -> set[str]:
    """The sibling modules `path` imports (relative or absolute), wherever the import statement sits."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.level == 1 or (node.module or "").startswith("chat_backend")):
            module = (node.module or "").removeprefix("chat_backend").lstrip(".")
            found |= {module.split(".")[0]} if module else {alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("chat_backend.")}
    return found


def test_no_module_of_chat_backend_imports_one_that_imports_it_back() -> None:
    graph = {p.stem: imports_of(p) for p in PACKAGE.glob("*.py") if p.stem != "__init__"}

    def reachable(start: str) -> set[str]:
        seen, todo = set(), list(graph[start])
        while todo:
            module = todo.pop()
            if module in graph and module not in seen:
                seen.add(module)
                todo.extend(graph[module])
        return seen

    assert "transport" in graph["stream"] and "stream" in graph["client"]  # the graph is really read
    cycles = sorted(module for module in graph if module in reachable(module))
    assert not cycles, f"modules on an import cycle: {cycles}"
