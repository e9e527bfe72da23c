"""install.py adds only what A1111 lacks, and nothing when run again."""

from __future__ import annotations

import runpy
import sys
import types
from pathlib import Path

import pytest

INSTALL = Path(__file__).resolve().parents[1] / "install.py"


def run_install(monkeypatch, installed: set[str]) -> list[str]:
    calls: list[str] = []
    launch = types.ModuleType("launch")
    launch.is_installed = lambda name: name in installed
    launch.run_pip = lambda command, desc=None: calls.append(command)
    monkeypatch.setitem(sys.modules, "launch", launch)
    runpy.run_path(str(INSTALL))
    return calls


@pytest.mark.parametrize(
    ("installed", "expected"),
    [
        (set(), ['install "imageio>=2.28"', 'install "imageio-ffmpeg>=0.4.9"']),
        ({"imageio"}, ['install "imageio-ffmpeg>=0.4.9"']),
        ({"imageio", "imageio-ffmpeg"}, []),
    ],
)
def test_installs_only_what_is_missing(monkeypatch, installed, expected):
    assert run_install(monkeypatch, installed) == expected


def test_never_touches_host_pinned_packages():
    text = INSTALL.read_text()
    for package in ("torch", "gradio", "einops", "numpy"):
        assert f'"{package}' not in text
