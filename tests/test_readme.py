"""The README's code runs as written."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
GUIDES = [ROOT / "docs" / "torch.md"]


@pytest.mark.parametrize("page", [README, *GUIDES], ids=lambda p: p.name)
def test_python_blocks_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if page != README:
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
