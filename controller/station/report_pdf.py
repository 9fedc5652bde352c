"""The yearly (or monthly) review as a PDF the station makes (fpdf2): the figures of the review
page (`report.py`), with the alarms by month as a stacked bar chart in the page's colours
(`report.COLOURS`), drones counted by track and the patrol rounds missed.

Vietnamese needs a Unicode TrueType font: the station's `pdf_font` setting, else the first of
FONTS found (DejaVu Sans or Liberation Sans from the system's packages). Without one the PDF is
set in the PDF's own Helvetica, which has no Vietnamese letters: they lose their marks
("Báo động" becomes "Bao dong") and the PDF says so.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from controller.station.report import COLOURS, Review

if TYPE_CHECKING:  # fpdf is imported when a PDF is made: every `officeguard` command reads this
    from fpdf import FPDF

FONTS = (
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
    Path("/usr/share/fonts/TTF/DejaVuSans.ttf"),
    Path("/usr/share/fonts/dejavu/DejaVuSans.ttf"),
    Path("/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf"),
)

def find_font(setting: Path | None = None) -> Path | None:
    """The font to set the PDF in: the setting, else the first of FONTS found, else None."""
    if setting is not None:
        return setting
    return next((f for f in FONTS if f.is_file()), None)


def _plain(s: str) -> str:
    """What Helvetica can print: marks dropped, đ as d, anything else outside Latin-1 as ?."""
    s = s.replace("đ", "d").replace("Đ", "D").replace("→", "->")
    s = "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c))
    return s.encode("latin-1", "replace").decode("latin-1")


def review_pdf(
    r: Review,
    _: Callable[[str], str],
    age: Callable[[float], str],
    *,
    font: Path | None = None,
    made: str = "",
) -> bytes:
    """The review as PDF bytes; `_` translates, `age` writes a duration, `made` says when."""
    from fpdf import FPDF

    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_auto_page_break(True, margin=15)
    pdf.set_title(f"OfficeGuard review {r.site} {r.year}")
    pdf.set_creator("OfficeGuard station")
    family = "helvetica"
    if font is not None:
        family = "og"
        pdf.add_font("og", "", str(font))
        bold = font.with_name(font.stem + "-Bold" + font.suffix)
        pdf.add_font("og", "B", str(bold if bold.is_file() else font))

    def text(s: str) -> str:
        return s if font is not None else _plain(s)

    def t(s: str) -> str:
        return text(_(s))

    pdf.add_page()
    period = f"{r.year}" + (f"-{r.month:02d}" if r.month else "")
    pdf.set_font(family, "B", 16)
    pdf.cell(0, 10, text(f"{_('Review')}: {r.site}, {period}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(family, "", 9)
    note = f"OfficeGuard · {made}" if made else "OfficeGuard"
    if font is None:
        note += " · no Unicode font found: Vietnamese letters without their marks"
    pdf.cell(0, 5, text(note), new_x="LMARGIN", new_y="NEXT")

    def heading(s: str) -> None:
        pdf.ln(3)
        pdf.set_font(family, "B", 12)
        pdf.cell(0, 8, s, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font(family, "", 9)

    heading(t("Alarms by kind and month"))
    _chart(pdf, r, t, family)
    widths = [36] + [11] * 12 + [14]
    pdf.set_font(family, "B", 9)
    for w, h in zip(widths, ["", *[str(m) for m in range(1, 13)], "Σ" if font else "Sum"], strict=True):
        pdf.cell(w, 6, h, border=1, align="C")
    pdf.ln()
    pdf.set_font(family, "", 9)
    if not r.by_kind_month:
        pdf.cell(sum(widths), 6, t("None."), border=1, new_x="LMARGIN", new_y="NEXT")
    rows = list(r.by_kind_month.items())
    if sum(r.patrols_missed):  # as on the page: under the alarms, not in the chart
        rows.append(("patrol rounds missed", r.patrols_missed))
    for kind, counts in rows:
        pdf.cell(widths[0], 6, t(kind), border=1)
        for c in counts:
            pdf.cell(11, 6, str(c) if c else "", border=1, align="C")
        pdf.cell(widths[-1], 6, str(sum(counts)), border=1, align="C", new_x="LMARGIN", new_y="NEXT")

    heading(f"{t('Nights with alarms')}: {len(r.nights_with_alarms)}")
    pdf.multi_cell(0, 5, ", ".join(r.nights_with_alarms) or t("None."), new_x="LMARGIN", new_y="NEXT")

    heading(t("Response times"))
    cols = [(60, ""), (30, t("median")), (30, "p90"), (30, "max")]
    pdf.set_font(family, "B", 9)
    for w, h in cols:
        pdf.cell(w, 6, h, border=1, align="C")
    pdf.ln()
    pdf.set_font(family, "", 9)
    for label, spread in (("alarm → acknowledged", r.ack_s), ("alarm → closed", r.close_s)):
        pdf.cell(60, 6, t(label), border=1)
        for k in ("median", "p90", "max"):
            v = spread.get(k)
            pdf.cell(30, 6, age(v) if v is not None else "", border=1, align="C")
        pdf.ln()

    heading(t("Incidents"))
    lines = [
        f"{t('Incidents')}: {r.incidents}",
        f"{t('communication lost')}: {r.comm_losses}",
        f"{t('Drones')}: {r.drones} ({t('tracks; %(n)d reports') % {'n': r.drone_reports}})",
        f"{t('patrol rounds missed')}: {sum(r.patrols_missed)}",
    ]
    lines += [f"    {m['night']} · {m['plan']} · {m['due']}" for m in r.missed_rounds]
    lines += [f"{t(res)}: {n}" for res, n in r.resolutions.items()]
    for line in lines:
        pdf.cell(0, 5, text(line), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def _chart(pdf: FPDF, r: Review, t: Callable[[str], str], family: str) -> None:
    """The alarms of each month as a bar, stacked by kind, with a legend."""
    x0, y0, h, bar_w, gap = pdf.l_margin + 8, pdf.get_y() + 5, 40.0, 9.0, 4.0
    totals = [sum(c[m] for c in r.by_kind_month.values()) for m in range(12)]
    peak = max(totals, default=0) or 1
    pdf.set_draw_color(160, 160, 160)
    pdf.line(x0, y0 + h, x0 + 12 * (bar_w + gap), y0 + h)
    pdf.set_font(family, "", 7)
    for m in range(12):
        x = x0 + m * (bar_w + gap)
        y = y0 + h
        for kind, counts in r.by_kind_month.items():
            if counts[m]:
                bh = h * counts[m] / peak
                pdf.set_fill_color(*COLOURS.get(kind, (80, 80, 80)))
                pdf.rect(x, y - bh, bar_w, bh, style="F")
                y -= bh
        if totals[m]:
            pdf.text(x + 1, y - 1, str(totals[m]))
        pdf.text(x + 3, y0 + h + 4, str(m + 1))
    lx = x0 + 12 * (bar_w + gap) + 4
    for i, kind in enumerate(r.by_kind_month):
        pdf.set_fill_color(*COLOURS.get(kind, (80, 80, 80)))
        pdf.rect(lx, y0 + i * 5, 3, 3, style="F")
        pdf.text(lx + 5, y0 + i * 5 + 2.7, t(kind))
    pdf.set_y(y0 + h + 7)
