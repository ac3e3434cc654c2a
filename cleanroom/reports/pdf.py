"""report.pdf: the same document as the HTML, laid out on A4 with fpdf2.

Why fpdf2: it is pure Python and installs with pip alone (WeasyPrint would need Pango from the
operating system). Charts are the same matplotlib charts as PNG bytes made in memory, tables use
fpdf2's table API. Core fonts only (no font files to ship), which means latin-1 text: every
string goes through :func:`latin1` so an en dash, an arrow or a partner name in another script
never crashes the monthly job. Page one holds the summary alone; a part starts on a new page unless over half the current one is free.

Determinism: the creation date is the report's ``generated_at`` (fpdf2 also derives the file id
from it and the content), PNGs come from Agg, so the same report gives the same bytes.
"""

from __future__ import annotations

import io
import unicodedata
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from cleanroom.reports.charts import to_png
from cleanroom.reports.document import Block, Callout, Document, Figure, Heading, Kpis, Movers, Paragraph, Table

if TYPE_CHECKING:
    from fpdf import FPDF

_REPLACE = {
    "–": "-", "—": "-", "−": "-", "→": "->", "←": "<-", "≥": ">=", "≤": "<=", "≈": "~", "≠": "!=",
    "ε": "epsilon", "δ": "delta", "σ": "sd", "√": "sqrt", "●": "*", "▲": "+", "▼": "-", "…": "...",
    "‘": "'", "’": "'", "“": '"', "”": '"', "•": "-", "\u2009": " ", "\u202f": " ", "\u00a0": " ",
    "₁": "1", "₂": "2", "×": "x",
}  # fmt: skip

BRAND = (31, 95, 168)
INK = (31, 41, 51)
MUTED = (95, 107, 118)
LINE = (221, 226, 231)
SOFT = (245, 247, 249)
TONES: dict[str, tuple[tuple[int, int, int], tuple[int, int, int]]] = {
    "alert": ((180, 35, 24), (253, 236, 235)),
    "warn": ((170, 120, 0), (255, 245, 220)),
    "info": (BRAND, (237, 243, 251)),
    "ok": ((29, 107, 74), (232, 245, 238)),
}
BODY = 9.0
SMALL = 7.5
TABLE = 7.4


def latin1(text: str) -> str:
    """``text`` in the core fonts' latin-1: known symbols spelled out, accents kept where latin-1
    has them, stripped where it does not ('Łódź' -> 'Lódz'), anything else as '?'."""
    out = []
    for ch in text:
        ch = _REPLACE.get(ch, ch)
        if len(ch) == 1 and ord(ch) > 255:
            base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
            ch = base if base and all(ord(c) < 256 for c in base) else {"Ł": "L", "ł": "l", "Đ": "D", "đ": "d"}.get(ch, "?")
        out.append(ch)
    return "".join(out)


def _pdf_class() -> type[FPDF]:
    from fpdf import FPDF

    class ReportPDF(FPDF):
        """A4 with a quiet footer: what, for whom, page x of n."""

        footer_text = ""

        def footer(self) -> None:
            self.set_y(-11)
            self.set_font("Helvetica", "", 7)
            self.set_text_color(*MUTED)
            self.cell(self.epw / 2, 5, latin1(self.footer_text), align="L")
            self.cell(self.epw / 2, 5, f"page {self.page_no()} of {{nb}}", align="R")

    return ReportPDF


class _Writer:
    """Lays out blocks on an FPDF; one instance per PDF."""

    def __init__(self, pdf: FPDF) -> None:
        self.pdf = pdf

    # -- text helpers --------------------------------------------------------------------------

    def font(self, size: float, style: str = "", color: tuple[int, int, int] = INK) -> None:
        self.pdf.set_font("Helvetica", style, size)
        self.pdf.set_text_color(*color)

    def text(self, text: str, size: float = BODY, style: str = "", color: tuple[int, int, int] = INK, height: float = 4.4) -> None:
        self.font(size, style, color)
        self.pdf.set_x(self.pdf.l_margin)
        self.pdf.multi_cell(self.pdf.epw, height, latin1(text), new_x="LMARGIN", new_y="NEXT", align="L")

    def room(self, height: float) -> None:
        """Start a new page unless ``height`` mm still fit on this one."""
        if self.pdf.will_page_break(height):
            self.pdf.add_page()

    # -- blocks --------------------------------------------------------------------------------

    def title(self, doc: Document) -> None:
        self.text(doc.subtitle.upper(), 8, "B", BRAND)
        self.text(doc.title, 19, "B", height=9)
        self.text(doc.recipient_line, 9, color=MUTED)
        pdf = self.pdf
        pdf.ln(2)
        pdf.set_draw_color(*BRAND)
        pdf.set_line_width(0.8)
        pdf.line(pdf.l_margin, pdf.get_y(), pdf.l_margin + pdf.epw, pdf.get_y())
        pdf.set_line_width(0.2)
        pdf.ln(4)

    def part_heading(self, number: int, title: str) -> None:
        self.text(f"{number}  {title}", 14, "B", height=7)
        pdf = self.pdf
        pdf.set_draw_color(*LINE)
        pdf.line(pdf.l_margin, pdf.get_y() + 1, pdf.l_margin + pdf.epw, pdf.get_y() + 1)
        pdf.ln(4)

    def block(self, block: Block) -> None:
        if isinstance(block, Heading):
            self.room(45)
            self.pdf.ln(2)
            self.text(block.text, 11, "B", height=6)
            self.pdf.ln(1)
        elif isinstance(block, Paragraph):
            self.text(block.text, SMALL if block.small else BODY, color=MUTED if block.small else INK, height=3.6 if block.small else 4.4)
            self.pdf.ln(1.5)
        elif isinstance(block, Callout):
            self.callout(block)
        elif isinstance(block, Kpis):
            self.kpis(block)
        elif isinstance(block, Movers):
            self.movers(block)
        elif isinstance(block, Figure):
            self.figure(block)
        elif isinstance(block, Table):
            self.table(block)

    def callout(self, block: Callout) -> None:
        pdf = self.pdf
        edge, fill = TONES.get(block.tone, TONES["info"])
        lines = [latin1(f"- {line}") for line in block.lines]
        width = pdf.epw - 8
        self.font(BODY - 0.5)
        count = sum(len(pdf.multi_cell(width, 4.2, line, dry_run=True, output="LINES")) for line in lines)
        height = 6 + 4.2 * count + 4
        self.room(height + 2)
        x, y = pdf.l_margin, pdf.get_y()
        pdf.set_fill_color(*fill)
        pdf.rect(x, y, pdf.epw, height, style="F")
        pdf.set_fill_color(*edge)
        pdf.rect(x, y, 1.4, height, style="F")
        pdf.set_xy(x + 5, y + 2)
        self.font(BODY + 0.5, "B", edge)
        pdf.cell(width, 5, latin1(block.title), new_x="LEFT", new_y="NEXT")
        self.font(BODY - 0.5)
        for line in lines:
            pdf.set_x(x + 5)
            pdf.multi_cell(width, 4.2, line, new_x="LEFT", new_y="NEXT", align="L")
        pdf.set_y(y + height + 4)

    def kpis(self, block: Kpis) -> None:
        pdf = self.pdf
        gap, height = 4.0, 31.0
        n = max(len(block.items), 1)
        width = (pdf.epw - gap * (n - 1)) / n
        self.room(height + 4)
        y = pdf.get_y()
        for i, k in enumerate(block.items):
            x = pdf.l_margin + i * (width + gap)
            pdf.set_fill_color(*SOFT)
            pdf.set_draw_color(*LINE)
            pdf.rect(x, y, width, height, style="DF")
            pdf.set_fill_color(*BRAND)
            pdf.rect(x, y, width, 1.2, style="F")
            pdf.set_xy(x + 3, y + 3)
            self.font(7.5, "B", MUTED)
            pdf.cell(width - 6, 4, latin1(k.label.upper()), new_x="LEFT", new_y="NEXT")
            suppressed = k.value == "suppressed"
            self.font(12 if suppressed or len(k.value) > 9 else 17, "I" if suppressed else "B", MUTED if suppressed else INK)
            pdf.cell(width - 6, 8, latin1(k.value), new_x="LEFT", new_y="NEXT")
            self.font(8.5, "", MUTED)
            pdf.cell(width - 6, 4, latin1(k.interval), new_x="LEFT", new_y="NEXT")
            self.font(7, "", MUTED)
            pdf.multi_cell(width - 6, 3.3, latin1(k.note), new_x="LEFT", new_y="NEXT", align="L")
        pdf.set_xy(pdf.l_margin, y + height + 5)

    def movers(self, block: Movers) -> None:
        pdf = self.pdf
        self.room(30)
        self.text(block.title, 11, "B", height=6)
        pdf.ln(1)
        if not block.items:
            self.text(block.empty)
        for i, m in enumerate(block.items, start=1):
            self.room(15)
            self.text(f"{i}. {m.title}", BODY + 0.5, "B", height=4.8)
            self.text(m.detail, BODY, height=4.4)
            tone = BRAND if m.beyond_noise else MUTED if m.beyond_noise is False else TONES["warn"][0]
            self.text(m.verdict, BODY - 0.5, "B", tone, height=4.4)
            pdf.ln(1.5)
        self.text(block.rule, SMALL, color=MUTED, height=3.5)
        pdf.ln(2)

    def figure(self, block: Figure) -> None:
        pdf = self.pdf
        w_in, h_in = block.chart.size
        width = pdf.epw
        height = width * h_in / w_in
        self.room(height + 10)
        pdf.image(io.BytesIO(to_png(block.chart)), x=pdf.l_margin, w=width, h=height)
        pdf.set_y(pdf.get_y() + 1)
        self.text(block.caption, SMALL, "I", MUTED, height=3.5)
        pdf.ln(3)

    def table(self, block: Table) -> None:
        from fpdf.fonts import FontFace

        pdf = self.pdf
        self.room(22)
        self.text(block.title, BODY + 0.5, "B", height=5.5)
        pdf.ln(0.5)
        self.font(TABLE)
        total = sum(block.widths) or 1.0
        widths = tuple(pdf.epw * w / total for w in block.widths)
        align = tuple("RIGHT" if i >= block.numeric_from else "LEFT" for i in range(len(block.header)))
        heading = FontFace(emphasis="BOLD", color=MUTED, fill_color=SOFT, size_pt=TABLE)
        styles: dict[str, Any] = {
            "suppressed": FontFace(emphasis="ITALICS", color=MUTED),
            "na": FontFace(color=MUTED),
            "muted": FontFace(color=MUTED),
            "derived": FontFace(emphasis="BOLD", color=BRAND),
        }
        row_styles: dict[str, Any] = {
            "group": FontFace(emphasis="BOLD", fill_color=(232, 238, 246)),
            "total": FontFace(emphasis="BOLD"),
            "alert": FontFace(fill_color=TONES["alert"][1], color=TONES["alert"][0]),
        }
        pdf.set_fill_color(255, 255, 255)  # the table's base style copies the current fill colour
        pdf.set_text_color(*INK)
        with pdf.table(
            col_widths=widths, text_align=align, headings_style=heading, line_height=3.9,
            borders_layout="HORIZONTAL_LINES", padding=(1.0, 1.4, 1.0, 1.4), width=pdf.epw,
            first_row_as_headings=True, repeat_headings=1,
        ) as t:  # fmt: skip
            pdf.set_draw_color(*LINE)
            t.row(tuple(latin1(h) for h in block.header))
            for row in block.rows:
                r = t.row(style=row_styles.get(row.style))
                if row.style == "group":
                    r.cell(latin1(row.cells[0].text), colspan=len(block.header), align="LEFT")
                    continue
                for cell in row.cells:
                    text = cell.plain if not cell.flag else f"* {cell.plain}"
                    r.cell(latin1(text), style=styles.get(cell.kind))
        if block.note:
            pdf.ln(1)
            self.text(block.note, SMALL - 0.3, color=MUTED, height=3.3)
        pdf.ln(3.5)


def render_pdf(document: Document, generated_at: datetime, compress: bool = True) -> bytes:
    """The PDF bytes. ``compress=False`` leaves content streams readable (for tests/debugging)."""
    pdf = _pdf_class()(orientation="P", unit="mm", format="A4")
    pdf.footer_text = document.footer
    pdf.compress = compress
    pdf.set_margins(15, 14, 15)
    pdf.set_auto_page_break(True, margin=15)
    pdf.set_creation_date(generated_at if generated_at.tzinfo else generated_at.replace(tzinfo=UTC))
    pdf.set_title(latin1(f"{document.title} - {document.subtitle}"))
    pdf.set_subject(latin1(document.recipient_line))
    pdf.set_author("cleanroom")
    pdf.set_creator("cleanroom")
    pdf.set_lang("en")
    writer = _Writer(pdf)
    pdf.add_page()
    writer.title(document)
    writer.part_heading(1, "Summary")
    for block in document.page_one:
        writer.block(block)
    for part in document.parts:
        # A part starts on a fresh page, unless more than half of this one is still empty
        # (short parts like freshness and methods then share a page instead of leaving blanks).
        if pdf.page == 1 or pdf.will_page_break(pdf.eph * 0.55):
            pdf.add_page()
        else:
            pdf.ln(6)
        writer.part_heading(part.number, part.title)
        for block in part.blocks:
            writer.block(block)
    return bytes(pdf.output())


__all__ = ["latin1", "render_pdf"]
