"""A report as a small document model, rendered twice: a self-contained HTML page and Markdown.

``Doc`` holds sections; a section holds paragraphs, notes, figures and tables, in order. The HTML
embeds every image as a base64 data URI and carries its CSS inline (no scripts, no external
URLs), so ``index.html`` opens in any browser from anywhere. The Markdown links each image by
its file name, relative to the report folder, where ``Doc.files()`` says to write them.

Text in paragraphs, notes and cells is plain text, escaped for each output; ``**bold**`` and
```code``` spans are the only markup.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field

IMAGE_TYPES = {"png": "image/png", "gif": "image/gif"}
SCROLL_ROWS = 25  # HTML tables longer than this scroll inside a box


@dataclass
class Para:
    text: str


@dataclass
class Note:
    """Something the reader should know about the data (a damaged file, a member left out)."""

    text: str


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Image:
    name: str  # file name in the report folder: loss_curves.png
    data: bytes
    caption: str = ""
    alt: str = ""

    @property
    def mime(self) -> str:
        return IMAGE_TYPES[self.name.rsplit(".", 1)[-1].lower()]


@dataclass
class Table:
    columns: list[str]
    rows: list[list[str]]
    caption: str = ""
    numeric: set[int] = field(default_factory=set)  # column indices aligned right
    cell_class: dict[tuple[int, int], str] = field(default_factory=dict)  # (row, col) -> class


Block = Para | Bullets | Note | Image | Table


@dataclass
class Section:
    title: str
    anchor: str
    blocks: list[Block] = field(default_factory=list)

    def para(self, text: str) -> None:
        if text:
            self.blocks.append(Para(text))

    def bullets(self, items: list[str]) -> None:
        if items:
            self.blocks.append(Bullets(list(items)))

    def note(self, text: str) -> None:
        self.blocks.append(Note(text))

    def image(self, name: str, data: bytes, caption: str = "", alt: str = "") -> None:
        self.blocks.append(Image(name, data, caption, alt or caption or name))

    def table(self, table: Table) -> None:
        self.blocks.append(table)


@dataclass
class Doc:
    title: str
    subtitle: str = ""
    sections: list[Section] = field(default_factory=list)

    def section(self, title: str) -> Section:
        base = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "section"
        anchor, n = base, 2
        while any(s.anchor == anchor for s in self.sections):
            anchor, n = f"{base}-{n}", n + 1
        sec = Section(title, anchor)
        self.sections.append(sec)
        return sec

    def images(self) -> list[Image]:
        return [b for s in self.sections for b in s.blocks if isinstance(b, Image)]

    def files(self) -> dict[str, bytes]:
        """Every image by file name, to be written beside index.html and report.md."""
        return {im.name: im.data for im in self.images()}


# --- inline markup ------------------------------------------------------------------------------

_BOLD = re.compile(r"\*\*(.+?)\*\*")
_CODE = re.compile(r"`([^`]+)`")


def inline_html(text: str) -> str:
    out = html.escape(text, quote=False)
    out = _CODE.sub(r"<code>\1</code>", out)
    return _BOLD.sub(r"<strong>\1</strong>", out)


def _md_cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


# --- HTML ---------------------------------------------------------------------------------------

CSS = """
body { font: 15px/1.5 -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       color: #222; margin: 0; background: #f6f6f4; }
main { max-width: 1240px; margin: 0 auto; padding: 24px 32px 64px; background: #fff; }
h1 { font-size: 26px; margin: 8px 0 4px; }
.subtitle { color: #555; margin: 0 0 16px; }
h2 { font-size: 20px; margin: 36px 0 10px; padding-top: 8px; border-top: 1px solid #ddd; }
nav { font-size: 14px; margin: 8px 0 16px; }
nav a { margin-right: 14px; color: #2166ac; text-decoration: none; white-space: nowrap; }
p, ul { max-width: 980px; }
li { margin: 3px 0; }
.note { background: #fff7e0; border-left: 4px solid #e0a800; padding: 8px 12px;
        margin: 10px 0; max-width: 980px; }
figure { margin: 12px 0 22px; }
figure img { max-width: 100%; height: auto; border: 1px solid #e4e4e4; }
figcaption { color: #555; font-size: 13.5px; margin-top: 4px; max-width: 980px; }
.table-wrap { overflow: auto; margin: 8px 0 20px; }
.table-wrap.scroll { max-height: 560px; border: 1px solid #e4e4e4; }
table { border-collapse: collapse; font-size: 13.5px; }
th, td { padding: 4px 10px; border-bottom: 1px solid #e8e8e8; text-align: left;
         white-space: nowrap; }
th { background: #f0f0ee; position: sticky; top: 0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
caption { caption-side: top; text-align: left; color: #555; padding: 4px 0; }
code { background: #f1f1f1; padding: 0 3px; border-radius: 3px; font-size: 90%; }
.status-completed { color: #1a7f37; }
.status-diverged { color: #cc0000; font-weight: 600; }
.status-failed { color: #cc0000; font-weight: 600; }
.status-interrupted, .status-unfinished, .status-pending { color: #b26b00; }
.status-damaged { color: #8b1a8b; }
.blowup { color: #d95f02; font-weight: 600; }
"""


def _html_table(t: Table) -> str:
    parts = [f'<div class="table-wrap{" scroll" if len(t.rows) > SCROLL_ROWS else ""}"><table>']
    if t.caption:
        parts.append(f"<caption>{inline_html(t.caption)}</caption>")
    head = "".join(f"<th>{inline_html(c)}</th>" for c in t.columns)
    parts.append(f"<thead><tr>{head}</tr></thead><tbody>")
    for i, row in enumerate(t.rows):
        cells = []
        for j, cell in enumerate(row):
            classes = ("num" if j in t.numeric else "", t.cell_class.get((i, j), ""))
            cls = " ".join(c for c in classes if c)
            attr = f' class="{cls}"' if cls else ""
            cells.append(f"<td{attr}>{inline_html(cell)}</td>")
        parts.append("<tr>" + "".join(cells) + "</tr>")
    parts.append("</tbody></table></div>")
    return "\n".join(parts)


def _html_block(b: Block) -> str:
    if isinstance(b, Para):
        return f"<p>{inline_html(b.text)}</p>"
    if isinstance(b, Bullets):
        return "<ul>" + "".join(f"<li>{inline_html(t)}</li>" for t in b.items) + "</ul>"
    if isinstance(b, Note):
        return f'<div class="note">{inline_html(b.text)}</div>'
    if isinstance(b, Image):
        uri = f"data:{b.mime};base64," + base64.b64encode(b.data).decode("ascii")
        cap = f"<figcaption>{inline_html(b.caption)}</figcaption>" if b.caption else ""
        alt = html.escape(b.alt)
        return f'<figure><img src="{uri}" alt="{alt}" loading="lazy">{cap}</figure>'
    return _html_table(b)


def render_html(doc: Doc) -> str:
    nav = " ".join(
        f'<a href="#{s.anchor}">{html.escape(s.title)}</a>' for s in doc.sections if s.title
    )
    body = [f"<h1>{inline_html(doc.title)}</h1>"]
    if doc.subtitle:
        body.append(f'<p class="subtitle">{inline_html(doc.subtitle)}</p>')
    if len(doc.sections) > 2:
        body.append(f"<nav>{nav}</nav>")
    for s in doc.sections:
        if s.title:
            body.append(f'<h2 id="{s.anchor}">{html.escape(s.title)}</h2>')
        body.extend(_html_block(b) for b in s.blocks)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(doc.title)}</title>\n<style>{CSS}</style>\n</head>\n"
        "<body><main>\n" + "\n".join(body) + "\n</main></body>\n</html>\n"
    )


# --- Markdown -----------------------------------------------------------------------------------


def _md_table(t: Table) -> str:
    lines = []
    if t.caption:
        lines += [f"*{t.caption}*", ""]
    lines.append("| " + " | ".join(_md_cell(c) for c in t.columns) + " |")
    lines.append(
        "|" + "|".join("---:" if j in t.numeric else "---" for j in range(len(t.columns))) + "|"
    )
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in t.rows]
    return "\n".join(lines)


def _md_block(b: Block) -> str:
    if isinstance(b, Para):
        return b.text
    if isinstance(b, Bullets):
        return "\n".join("- " + t.replace("\n", " ") for t in b.items)
    if isinstance(b, Note):
        return "> **Note:** " + b.text.replace("\n", "\n> ")
    if isinstance(b, Image):
        alt = b.alt.replace("[", "(").replace("]", ")").replace("\n", " ")
        out = f"![{alt}]({b.name})"
        return out + (f"\n\n*{b.caption}*" if b.caption else "")
    return _md_table(b)


def render_markdown(doc: Doc) -> str:
    out = [f"# {doc.title}"]
    if doc.subtitle:
        out.append(f"*{doc.subtitle}*")
    for s in doc.sections:
        if s.title:
            out.append(f"## {s.title}")
        out.extend(_md_block(b) for b in s.blocks)
    return "\n\n".join(out) + "\n"
