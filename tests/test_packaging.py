"""Packaging: the version the command reports, the license the distribution carries."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import metadata, version
from pathlib import Path

import pytest

from workflows4py.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_version_option_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"workflows4py {version('workflows4py')}"


def test_the_command_reports_its_version() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "workflows4py", "--version"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert out.strip() == f"workflows4py {version('workflows4py')}"


def test_the_distribution_is_mit_licensed_with_its_license_file() -> None:
    meta = metadata("workflows4py")
    assert meta["License-Expression"] == "MIT"
    assert "LICENSE" in (meta.get_all("License-File") or [])
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
