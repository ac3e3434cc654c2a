"""One problem found in a policy file: where it is (file, line, key path), what, and how to fix it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

KeyPath = tuple[str | int, ...]


def format_path(path: KeyPath) -> str:
    """``("joins", 2, "left", 0)`` -> ``joins[2].left[0]``; keys holding dots are bracketed."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif "." in part:
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out or "(top level)"


class Issue(BaseModel):
    """A lint finding. ``check`` is a stable id (e.g. ``unknown-dataset``) that tests and tools key on."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    level: Literal["error", "warning"]
    check: str
    file: str
    line: int
    path: str
    message: str
    hint: str = ""

    def render(self) -> str:
        """``file:line path: message`` (warnings say so), then the hint on its own line."""
        level = "warning: " if self.level == "warning" else ""
        text = f"{self.file}:{self.line} {self.path}: {level}{self.message}"
        return f"{text}\n    hint: {self.hint}" if self.hint else text


def errors_of(issues: list[Issue]) -> list[Issue]:
    return [i for i in issues if i.level == "error"]


def warnings_of(issues: list[Issue]) -> list[Issue]:
    return [i for i in issues if i.level == "warning"]


__all__ = ["Issue", "KeyPath", "errors_of", "format_path", "warnings_of"]
