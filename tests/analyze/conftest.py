"""Small FastAPI projects written to a temp folder, and shortcuts to analyze them."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from cloudlet.analyze import Analysis, Config, run


class Workbench:
    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, files: dict[str, str]) -> Path:
        """Write {relative path: source} (dedented) under the project folder."""
        for rel, source in files.items():
            path = self.root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(source).lstrip("\n"))
        return self.root

    def analyze(self, files: dict[str, str], config: Config | None = None) -> Analysis:
        return run(self.write(files), config or Config(), use_cache=False)

    def reported(self, files: dict[str, str], config: Config | None = None) -> set[tuple[str, int]]:
        """(file, line) of every blocking call reported."""
        return {(f.file, f.line) for f in self.analyze(files, config).findings}

    @staticmethod
    def line(source: str, marker: str) -> int:
        """The 1-based line of the (dedented) source that contains marker."""
        for number, text in enumerate(textwrap.dedent(source).lstrip("\n").splitlines(), 1):
            if marker in text:
                return number
        raise AssertionError(f"{marker!r} not in source")

    @staticmethod
    def marked(source: str, tag: str) -> set[int]:
        """Lines of the (dedented) source whose comment carries tag (`# BLOCKS`)."""
        lines = textwrap.dedent(source).lstrip("\n").splitlines()
        return {number for number, text in enumerate(lines, 1) if text.rstrip().endswith(tag)}


@pytest.fixture
def workbench(tmp_path: Path) -> Workbench:
    return Workbench(tmp_path / "project")
