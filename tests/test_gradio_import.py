"""web/gradio_import.py: what it changes in Gradio as Gradio loads, that the change is in place (app.py imports it
first; so does conftest.py, for the apps tests build), and that Gradio still works the way the change relies on."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import gradio as gr
import gradio.component_meta
import gradio.routes
import gradio.state_holder
import pytest
import requests

from tests.app_process import free_port
from web import gradio_import

ROOT = Path(__file__).resolve().parent.parent
GRADIO = Path(gr.__file__).parent


def test_app_py_imports_it_before_anything_else() -> None:
    module = ast.parse((ROOT / "app.py").read_text(encoding="utf-8"))
    imports = [node for node in module.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    first = next(node for node in imports if getattr(node, "module", None) != "__future__")
    assert isinstance(first, ast.Import) and first.names[0].name == "web.gradio_import"


def test_component_classes_are_made_without_rewriting_type_stubs() -> None:
    """The metaclass calls the stub writer by its name in the module, so the one that does nothing is called."""
    assert "create_or_modify_pyi" in gradio.component_meta.ComponentMeta.__new__.__code__.co_names
    assert gradio.component_meta.create_or_modify_pyi is gradio_import.write_no_stub


def test_a_new_session_keeps_its_state_but_no_copy_of_the_page() -> None:
    with gr.Blocks() as demo:
        kept = gr.State({"saved": 1})
        gr.Textbox("hello")
    holder = gradio.state_holder.StateHolder()
    holder.set_blocks(demo)
    session = holder["visitor"]
    gradios_own = type(session).__mro__[1](demo)
    assert type(session) is not type(gradios_own) and gradios_own.config_values  # Gradio's builds the copy
    assert set(vars(session)) == set(vars(gradios_own))  # every attribute Gradio's session has
    assert session.config_values == {} and list(session.components) == []
    session[kept._id]["saved"] = 2  # a State's value is the session's own copy, as with Gradio's
    assert holder["visitor"][kept._id] == {"saved": 2} and kept.value == {"saved": 1}
    session._update_value_in_config(kept._id, {"saved": 3})
    assert session.config_values == {}


def readers_of_the_copy(tree: ast.AST) -> list[str]:
    """The functions (innermost) that read `config_values`, or a `components` that is neither the object's own (as
    in flagging) nor the `gradio.components` module: a session's, whoever holds it."""
    found: list[str] = []

    def visit(node: ast.AST, function: str) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            function = node.name
        if isinstance(node, ast.Attribute) and (
            node.attr == "config_values"
            or (node.attr == "components" and ast.unparse(node.value) not in ("self", "gr", "gradio"))
        ):
            found.append(function)
        for child in ast.iter_child_nodes(node):
            visit(child, function)

    visit(tree, "<module>")
    return found


def test_only_the_deep_link_route_reads_a_sessions_copy_of_the_page() -> None:
    """If another part of Gradio came to read the copy, leaving it out would change what that part does. The deep
    link route is refused by the guard (tests/test_guard.py's closed routes)."""
    readers = [
        f"{path.relative_to(GRADIO)}:{function}"
        for path in sorted(GRADIO.rglob("*.py"))
        if path.name != "state_holder.py"
        for function in readers_of_the_copy(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert readers == ["routes.py:deep_link"]


def test_the_server_app_is_built_once_at_launch_and_serves(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[Any] = []
    gradios = gradio.routes.App.create_app

    def counted(*args: Any, **kwargs: Any) -> Any:
        built.append(gradios(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(gradio.routes.App, "create_app", staticmethod(counted))
    with gr.Blocks() as demo:
        gr.ChatInterface(lambda message, history: f"echo {message}")  # a Blocks inside the page
    demo.queue()
    assert built == [] and demo.app is None  # Gradio's own made three here, then dropped them
    port = free_port()
    demo.launch(prevent_thread_lock=True, quiet=True, server_name="127.0.0.1", server_port=port)
    try:
        assert len(built) == 1 and demo.app is built[0]
        assert requests.get(f"http://127.0.0.1:{port}/config", timeout=10).json()["components"]
    finally:
        demo.close()


def test_only_launch_passes_the_server_apps_arguments() -> None:
    """What tells the served app from the dropped ones: each call in gradio/blocks.py, by function, and whether it
    passes `app_kwargs`. A new call that passes none would get no app, so it has to be looked at."""
    calls = set()
    for function in ast.walk(ast.parse((GRADIO / "blocks.py").read_text(encoding="utf-8"))):
        if isinstance(function, ast.FunctionDef):
            for node in ast.walk(function):
                if isinstance(node, ast.Call) and ast.unparse(node.func) == "App.create_app":
                    calls.add((function.name, any(keyword.arg == "app_kwargs" for keyword in node.keywords)))
    assert calls == {("__exit__", False), ("queue", False), ("launch", True)}
