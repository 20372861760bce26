"""A report written once and rendered twice: Markdown (report.md) and HTML (index.html, from the jinja2 template
reports/templates/report.html.j2)."""
from __future__ import annotations

from pathlib import PurePosixPath

import pandas as pd
from markupsafe import Markup

from reports.tables import html_table, markdown, md_text
from reports.templates import render


class Document:
    def __init__(self, title: str):
        self.title = title
        self._md: list[str] = [f"# {md_text(title)}\n"]
        self._blocks: list[dict] = []

    def heading(self, level: int, text: str) -> None:
        self._md.append(f"{'#' * level} {md_text(text)}\n")
        self._blocks.append(dict(kind="heading", level=level, text=text))

    def para(self, text: str, note: bool = False, css: str = "") -> None:
        self._md.append((f"_{md_text(text)}_" if note else md_text(text)) + "\n")
        self._blocks.append(dict(kind="para", text=text, css="note" if note else css))

    def bullets(self, items: list[str]) -> None:
        if not items:
            return
        self._md.append("\n".join(f"- {md_text(i)}" for i in items) + "\n")
        self._blocks.append(dict(kind="bullets", entries=list(items)))

    def table(self, df: pd.DataFrame, index: bool = False) -> None:
        self._md.append(markdown(df, index=index))
        self._blocks.append(dict(kind="table", html=Markup(html_table(df, index=index))))

    def image(self, rel_path: str, alt: str, caption: str = "", extra: list[tuple[str, str]] = ()) -> None:
        """A PNG with its caption (what the figure shows, what its bars are), and links to the PDF and SVG written
        beside it (and `extra` (name, path) links, e.g. a single-column version)."""
        self._md.append(f"![{md_text(alt)}]({rel_path})\n" + (f"\n_{md_text(caption)}_\n" if caption else ""))
        stem = PurePosixPath(rel_path)
        others = [(ext.upper(), str(stem.with_suffix("." + ext))) for ext in ("pdf", "svg")] + list(extra)
        self._blocks.append(dict(kind="image", src=rel_path, alt=alt, caption=caption, others=others))

    def links(self, items: list[tuple[str, str]]) -> None:
        self._md.append(" · ".join(f"[{md_text(text)}]({href})" for text, href in items) + "\n")
        self._blocks.append(dict(kind="links", entries=list(items)))

    def markdown(self) -> str:
        return "\n".join(self._md)

    def html(self) -> str:
        return render("report.html.j2", title=self.title, blocks=self._blocks)
