"""The core stays host-free: no A1111, ldm, sgm, gradio or launch imports outside zs2_lib/webui."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BANNED = ("modules", "ldm", "sgm", "gradio", "launch")


def core_files() -> list[Path]:
    return [
        p for p in (ROOT / "zs2_lib").rglob("*.py") if "webui" not in p.relative_to(ROOT / "zs2_lib").parts
    ]


def test_core_sources_import_nothing_banned():
    offenders = []
    for path in core_files():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in BANNED]
    assert core_files()
    assert not offenders, offenders


def test_importing_the_core_loads_no_host_module():
    modules = sorted(p.stem for p in core_files() if p.stem != "__init__")
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module('zs2_lib.' + m)\n"
        f"print([m for m in sys.modules if m.split('.')[0] in {BANNED!r}])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
