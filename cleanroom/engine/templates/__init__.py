"""The query templates: name -> compiler. Each compiler validates its parameters against the
scope and returns a :class:`~cleanroom.engine.compiled.CompiledQuery`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cleanroom.engine.compiled import CompiledQuery
from cleanroom.engine.scope import Scope
from cleanroom.engine.templates.attribution import compile_attribution
from cleanroom.engine.templates.funnel import compile_funnel
from cleanroom.engine.templates.lifecycle import compile_lifecycle
from cleanroom.engine.templates.overlap import compile_overlap

Compiler = Callable[[dict[str, Any], Scope], CompiledQuery]

TEMPLATES: dict[str, Compiler] = {
    "funnel": compile_funnel,
    "attribution": compile_attribution,
    "overlap": compile_overlap,
    "lifecycle": compile_lifecycle,
}

__all__ = ["TEMPLATES", "Compiler"]
