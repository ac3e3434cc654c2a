"""report.html: one self-contained page from an autoescaping Jinja2 template.

Why Jinja2 with autoescape on: partner, campaign and dataset names end up in the page, and a
template that escapes by default cannot be tricked into markup by a name. The only unescaped
content is the SVG matplotlib wrote for our own charts (text as paths, comments stripped).
Self-contained (inline CSS, inline SVG, no script, no external URL) so the file reads the same
offline, in a mail attachment or archived years later.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from markupsafe import Markup

from cleanroom.reports.charts import to_svg
from cleanroom.reports.document import Document, Figure

if TYPE_CHECKING:
    import jinja2

TEMPLATES = Path(__file__).parent / "templates"


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,  # a typo in the template fails the job, not the reader
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_html(document: Document) -> str:
    """The page as text (UTF-8 when written)."""
    env = _environment()

    def svg(figure: Figure) -> Markup:
        return Markup(to_svg(figure.chart, figure.ident))  # noqa: S704 - our own chart, see module docstring

    return env.get_template("report.html.j2").render(doc=document, svg=svg)


__all__ = ["TEMPLATES", "render_html"]
