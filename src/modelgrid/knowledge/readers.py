"""Files to text in sections: plain text, Markdown, HTML and PDF.

Markdown and HTML are cut at their headings, a PDF at its pages, so that a citation can say
where in the document a passage is."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .chunking import Section

KINDS = {
    ".txt": "text",
    ".text": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
}

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$", re.MULTILINE)
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")


class UnreadableDocument(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Document:
    title: str
    sections: list[Section]
    pages: int  # a PDF's pages; 1 for anything else


def kind_of(path: Path) -> str | None:
    return KINDS.get(path.suffix.lower())


def read(path: Path, data: bytes) -> Document:
    """``data``, the content of ``path``, as sections; raises ``UnreadableDocument``."""
    kind = kind_of(path)
    if kind is None:
        raise UnreadableDocument(f"{path.name}: not a text, Markdown, HTML or PDF file")
    if kind == "pdf":
        return _pdf(path, data)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UnreadableDocument(f"{path.name}: not UTF-8 text") from None
    if kind == "html":
        title, markdown = _html_as_markdown(text)
        document = _markdown(path, markdown)
        return Document(title or document.title, document.sections, 1)
    if kind == "markdown":
        return _markdown(path, text)
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return Document(first[:200] or path.stem, [Section("", text)], 1)


def _markdown(path: Path, text: str) -> Document:
    text = _LINK.sub(r"\1", text)
    sections: list[Section] = []
    title = ""
    heading, start = "", 0
    for match in _HEADING.finditer(text):
        sections.append(Section(heading, text[start : match.start()]))
        heading, start = match.group(2).strip(), match.end()
        if not title and len(match.group(1)) == 1:
            title = heading
    sections.append(Section(heading, text[start:]))
    kept = [s for s in sections if s.text.strip()]
    first_heading = next((s.heading for s in kept if s.heading), "")
    return Document(title or first_heading or path.stem, kept, 1)


def _html_as_markdown(html: str) -> tuple[str, str]:
    """The page's title, and its text with headings marked as Markdown's."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(["script", "style", "nav", "header", "footer", "noscript", "template"]):
        tag.decompose()
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    if soup.title:
        soup.title.decompose()
    for tag in soup.find_all(["h1", "h2", "h3", "h4", "h5", "h6"]):
        level = int(tag.name[1])
        tag.replace_with(f"\n\n{'#' * level} {tag.get_text(' ', strip=True)}\n\n")
    for tag in soup.find_all(["p", "li", "div", "br", "tr", "section", "article"]):
        tag.insert_after("\n\n")
    return title, soup.get_text()


def _pdf(path: Path, data: bytes) -> Document:
    import io

    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
        meta = reader.metadata
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise UnreadableDocument(f"{path.name}: not a readable PDF ({exc})") from None
    title = str(meta.title).strip() if meta is not None and meta.title else ""
    sections = [Section(f"page {i}", text, i) for i, text in enumerate(pages, 1) if text.strip()]
    return Document(title or path.stem, sections, len(pages))
