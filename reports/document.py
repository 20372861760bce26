"""A report written once and rendered twice: Markdown (report.md) and HTML (index.html)."""
from __future__ import annotations

import html

import pandas as pd

from reports.tables import html_table, markdown

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1200px;color:#222;
line-height:1.45;padding:0 1em}
h1{border-bottom:2px solid #444}h2{border-bottom:1px solid #bbb;margin-top:2em}
table.tbl{border-collapse:collapse;font-size:13px;margin:.6em 0}
table.tbl th,table.tbl td{border:1px solid #ccc;padding:3px 8px;text-align:left}
table.tbl th{background:#f1f1f1}table.tbl tr:nth-child(even) td{background:#fafafa}
img{max-width:100%;border:1px solid #ddd;margin:.4em 0}.note{color:#666;font-size:13px}
code{background:#f3f3f3;padding:0 3px}
"""


class Document:
    def __init__(self, title: str):
        self.title = title
        self._md: list[str] = [f"# {title}\n"]
        self._html: list[str] = [f"<h1>{html.escape(title)}</h1>"]

    def heading(self, level: int, text: str) -> None:
        self._md.append(f"{'#' * level} {text}\n")
        self._html.append(f"<h{level}>{html.escape(text)}</h{level}>")

    def para(self, text: str, note: bool = False) -> None:
        self._md.append((f"_{text}_" if note else text) + "\n")
        cls = ' class="note"' if note else ""
        self._html.append(f"<p{cls}>{html.escape(text)}</p>")

    def bullets(self, items: list[str]) -> None:
        if not items:
            return
        self._md.append("\n".join(f"- {i}" for i in items) + "\n")
        self._html.append("<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in items) + "</ul>")

    def table(self, df: pd.DataFrame, index: bool = False) -> None:
        self._md.append(markdown(df, index=index))
        self._html.append(html_table(df, index=index))

    def image(self, rel_path: str, alt: str) -> None:
        self._md.append(f"![{alt}]({rel_path})\n")
        self._html.append(f'<p><img src="{html.escape(rel_path)}" alt="{html.escape(alt)}"></p>')

    def links(self, items: list[tuple[str, str]]) -> None:
        self._md.append(" · ".join(f"[{text}]({href})" for text, href in items) + "\n")
        self._html.append("<p>" + " · ".join(f'<a href="{html.escape(h)}">{html.escape(t)}</a>'
                                             for t, h in items) + "</p>")

    def markdown(self) -> str:
        return "\n".join(self._md)

    def html(self) -> str:
        return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
                f"<title>{html.escape(self.title)}</title><style>{_CSS}</style></head><body>\n"
                + "\n".join(self._html) + "\n</body></html>\n")
