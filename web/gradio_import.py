"""gradio_import: Gradio imported without rewriting its type stubs, a third of the CPU `import gradio` costs.

Gradio's component metaclass, as each component class is defined, parses the source file that holds it and rewrites
the `.pyi` stub beside it (`create_or_modify_pyi` in gradio/component_meta.py): a help for Gradio's own developers
that takes about 1.5 s of CPU of every start here (4.2 s in all), so of every replica restart and every Space's
cold start. The stubs ship in Gradio's wheel and nothing reads them at run time. Importing this module before
gradio puts a finder first on `sys.meta_path` that replaces that step with one that does nothing, as the module
that holds it is loaded; nothing else about the import changes.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

STUB_WRITER_MODULE = "gradio.component_meta"
STUB_WRITER = "create_or_modify_pyi"


def write_no_stub(*args: Any, **kwargs: Any) -> None:
    """Stands in for Gradio's stub writer."""


class SkipStubWriting(importlib.abc.MetaPathFinder):
    """Finds gradio.component_meta as Python would, and has its loader swap the stub writer out once it has run."""

    def find_spec(
        self, name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if name != STUB_WRITER_MODULE:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path, target)
        if spec is None or spec.loader is None:
            return spec
        load = spec.loader.exec_module

        def exec_module(module: ModuleType) -> None:
            load(module)
            setattr(module, STUB_WRITER, write_no_stub)

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


if STUB_WRITER_MODULE not in sys.modules and not any(isinstance(f, SkipStubWriting) for f in sys.meta_path):
    sys.meta_path.insert(0, SkipStubWriting())
