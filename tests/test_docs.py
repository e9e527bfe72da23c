"""What users read agrees with the code: the README's controls, the page script's names, no outside paths."""

from __future__ import annotations

import subprocess
from pathlib import Path

from zs2_lib.names import API_KEY
from zs2_lib.params import FIELDS

ROOT = Path(__file__).resolve().parents[1]


def readme_controls() -> dict[str, list[str]]:
    """The README's table of controls by API name: control, API name, default, accepted, effect."""
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| Control | API name |"))
    rows = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        rows[cells[1].strip("`")] = cells
    return rows


def test_the_readme_lists_every_control_with_its_default_and_range_from_the_fields() -> None:
    rows = readme_controls()
    assert list(rows) == [spec.name for spec in FIELDS]
    for spec in FIELDS:
        control, _, default, accepted, effect = rows[spec.name]
        assert (control, default, accepted) == (spec.label, spec.doc_default, spec.doc_range), spec.name
        assert effect


def test_hints_state_the_accepted_range_once_from_the_fields() -> None:
    for spec in FIELDS:
        assert spec.hint.endswith(f"Accepted: {spec.doc_range}.")
        assert spec.doc_range not in spec.help


def test_the_page_script_reads_the_videos_under_the_info_key() -> None:
    script = (ROOT / "javascript" / "zs2_video.js").read_text(encoding="utf-8")
    assert f'"{API_KEY}"' in script


def test_nothing_in_the_repository_points_outside_it() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    offenders = [
        name
        for name in tracked
        if (ROOT / name).is_file()
        and name != "tests/test_docs.py"
        and "../shared" in (ROOT / name).read_text(encoding="utf-8", errors="ignore")
    ]
    assert offenders == []
