"""gradio_import: Gradio as this app loads it, with three costs taken out as its modules load. Each was measured.

- **Type stubs.** As each component class is defined, Gradio's metaclass parses the source file that holds it and
  rewrites the `.pyi` stub beside it (`create_or_modify_pyi`, gradio/component_meta.py). This helps Gradio's own
  developers. It is about 1.5 s of the 4.2 s of CPU `import gradio` costs here, paid by every start: replica
  restarts and a Space's cold start. The stubs ship in Gradio's wheel and nothing reads them at run time.
- **A copy of the page per visitor.** For each new session, Gradio builds the config of every component on the page
  (57 blocks here) and updates that copy on every event (`SessionState`, gradio/state_holder.py). Only
  `/gradio_api/deep_link` reads it, and `web/guard.py` closes that route. The copy cost a new visitor about 10 ms
  of the event loop's time, in one block. With 10 new chats a second, that was a quarter of the loop's work, and
  it held up every other chat's next step (docs/bench.md, "A visitor's session without Gradio's deep-link copy").
- **Server apps nobody serves.** Gradio builds a FastAPI app (about 60 routes, each with its parameters' pydantic
  models) at the end of every `with gr.Blocks()` (the page's, and ChatInterface's, which is a Blocks too) and at
  `queue()`; `launch` then builds the one it serves, and the others are dropped unused. Building the page made five:
  about 0.35 s of the 0.4–0.6 s of CPU it cost, paid by every start and by every app the tests build. They are no
  longer built: a Blocks has no `app` until `launch` gives it the one it serves.

Importing this module before gradio (app.py's first import; tests/conftest.py's) puts a finder first on
`sys.meta_path`. It changes those three modules just after each has run, before any component or session exists.
Once gradio is loaded, as under `gradio app.py`, it changes nothing.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
from collections.abc import Callable, Sequence
from copy import copy
from types import ModuleType
from typing import Any


def write_no_stub(*args: Any, **kwargs: Any) -> None:
    """Stands in for Gradio's stub writer."""


def _skip_stub_writing(module: ModuleType) -> None:
    vars(module)["create_or_modify_pyi"] = write_no_stub


def _keep_no_deep_link_copy(module: ModuleType) -> None:
    class SessionWithoutDeepLinkCopy(vars(module)["SessionState"]):  # type: ignore[misc]
        """A visitor's session as Gradio keeps it (its states, TTLs, and the blocks an event replaced), without the
        copy of every component's config for deep links. `__init__` is Gradio's, minus that copy. Gradio's
        `__setitem__` still keeps the config of a component an event replaced, as before: a few per page."""

        def __init__(self, blocks: Any) -> None:
            self.blocks_config = copy(blocks.default_config)
            self.config_values: dict[int, dict[str, Any]] = {}  # only what `__setitem__` puts there
            self.state_data: dict[int, Any] = {}
            self._state_ttl: dict[int, tuple[float, Any]] = {}
            self.is_closed = False
            self.STATE_TTL_WHEN_CLOSED = 1 if os.getenv("GRADIO_IS_E2E_TEST", None) else 3600

        def _update_config(self, key: int) -> None:
            """Gradio's would rebuild the component's config for the copy."""

        def _update_value_in_config(self, key: int, value: Any) -> None:
            """Gradio's would build the component's config for the copy, then set its value there."""

    vars(module)["SessionState"] = SessionWithoutDeepLinkCopy


def _build_only_the_served_app(module: ModuleType) -> None:
    gradios_app = vars(module)["App"]

    class AppBuiltOnlyToServe(gradios_app):  # type: ignore[misc,valid-type]
        """Gradio's server app, as `gradio.blocks` sees it. `launch` passes the server's own `app_kwargs`;
        the other calls there (`Blocks.__exit__`, `queue`) pass none, and get no app."""

        @staticmethod
        def create_app(blocks: Any, app_kwargs: dict[str, Any] | None = None, **options: Any) -> Any:
            if app_kwargs is None:
                return None
            return gradios_app.create_app(blocks, app_kwargs=app_kwargs, **options)

    vars(module)["App"] = AppBuiltOnlyToServe


CHANGES: dict[str, Callable[[ModuleType], None]] = {
    "gradio.component_meta": _skip_stub_writing,
    "gradio.state_holder": _keep_no_deep_link_copy,
    "gradio.blocks": _build_only_the_served_app,
}


class ChangeAsLoaded(importlib.abc.MetaPathFinder):
    """Finds the modules in `CHANGES` as Python would, and has each one's loader apply its change once it has run."""

    def find_spec(
        self, name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        change = CHANGES.get(name)
        if change is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path, target)
        if spec is None or spec.loader is None:
            return spec
        load = spec.loader.exec_module

        def exec_module(module: ModuleType) -> None:
            load(module)
            change(module)

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


if not any(name in sys.modules for name in CHANGES) and not any(isinstance(f, ChangeAsLoaded) for f in sys.meta_path):
    sys.meta_path.insert(0, ChangeAsLoaded())
