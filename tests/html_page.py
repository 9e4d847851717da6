"""Reading a report page as a browser would: its elements and text, and a real headless Chromium when there is one."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

HOSTILE = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>']


@dataclass
class Page:
    """The elements a parser builds from a document, and its text as a person reads it."""

    tags: list[str] = field(default_factory=list)
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    chunks: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return re.sub(r"\s+", " ", " ".join(self.chunks)).strip()

    def count(self, tag: str) -> int:
        return self.tags.count(tag)


class _Reader(HTMLParser):
    def __init__(self, page: Page) -> None:
        super().__init__(convert_charrefs=True)
        self.page = page
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.page.tags.append(tag)
        self.page.attributes += attrs
        if tag in ("style", "title"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "title"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.page.chunks.append(data)


def parse(document: str) -> Page:
    """The page's elements and visible text (style and tooltips left out)."""
    page = Page()
    _Reader(page).feed(document)
    return page


def assert_inert(document: str) -> Page:
    """No script, no element a hostile value could have opened, no event handler, nothing fetched."""
    page = parse(document)
    assert {"script", "img", "iframe", "object", "embed", "link"}.isdisjoint(page.tags), page.tags
    assert not [name for name, _ in page.attributes if name.startswith("on")]
    assert not [value for name, value in page.attributes if name in ("src", "href") and value]
    assert "http" not in document  # opens offline: nothing refers to the network
    return page


CHROMIUM = shutil.which("chromium")


def chromium(page: Path, out: Path, height: int = 2400) -> tuple[Page, Path]:
    """The DOM Chromium builds from the page, and a screenshot of it."""
    assert CHROMIUM is not None
    common = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={out / 'profile'}"]
    shot = out / "page.png"
    subprocess.run(
        [*common, f"--screenshot={shot}", f"--window-size=1280,{height}", page.as_uri()],
        check=True,
        capture_output=True,
        timeout=120,
    )
    dom = subprocess.run(
        [*common, "--dump-dom", page.as_uri()], check=True, capture_output=True, text=True, timeout=120
    ).stdout
    return parse(dom), shot


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's header."""
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
