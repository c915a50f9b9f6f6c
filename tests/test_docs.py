"""The documentation site builds, and its API reference covers every public name."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import tensornet

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _documented(page: Path) -> set[str]:
    """Names given to mkdocstrings (``::: path``) or anchored (``<a id="path">``) on a page."""
    text = page.read_text()
    paths = re.findall(r"^::: (\S+)$", text, re.M) + re.findall(r'<a id="([^"]+)">', text)
    return {p.rsplit(".", 1)[-1] for p in paths}


def test_api_reference_lists_every_public_core_name() -> None:
    public = set(tensornet.__all__) - {"__version__"}
    assert public - _documented(DOCS / "api" / "core.md") == set()


def test_api_reference_lists_every_public_adapter_name() -> None:
    torch_adapter = pytest.importorskip("tensornet_torch")
    assert set(torch_adapter.__all__) - _documented(DOCS / "api" / "torch.md") == set()


def test_every_page_is_in_the_navigation() -> None:
    nav = set(re.findall(r":\s*(\S+\.md)\s*$", (ROOT / "mkdocs.yml").read_text(), re.M))
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    assert pages == nav


def test_site_builds_strictly(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings_handlers.python")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert (tmp_path / "api" / "core" / "index.html").read_text().count('id="tensornet.') > 100
