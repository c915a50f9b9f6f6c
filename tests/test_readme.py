"""The README's and the documentation's code runs as written."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
GUIDES = sorted(
    page
    for page in (ROOT / "docs").rglob("*.md")
    if "```python" in page.read_text() and not page.is_symlink()
)


def test_the_guides_are_found() -> None:
    names = {page.relative_to(ROOT / "docs").as_posix() for page in GUIDES}
    assert {"getting-started.md", "torch.md", "guide/tt.md", "guide/tr.md"} <= names


@pytest.mark.parametrize("page", [README, *GUIDES], ids=lambda p: p.relative_to(ROOT).as_posix())
def test_python_blocks_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if "import torch" in page.read_text() or "tensornet_torch" in page.read_text():
        pytest.importorskip("torch")
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(), re.S)
    assert blocks, f"{page.name} has no python example"
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an example must not warn (e.g. non-convergence)
        for block in blocks:
            exec(compile(block, str(page), "exec"), {})


def test_readme_starts_with_the_two_setup_commands() -> None:
    lines = README.read_text().splitlines()
    commands = [line for line in lines[:8] if line.startswith("pip install")]
    assert len(commands) == 2
    assert commands[0].endswith("&& tensornet demo")
    assert commands[1].endswith("&& python -m pytest -q")
