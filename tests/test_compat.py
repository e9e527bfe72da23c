"""The version gate: which webui versions the extension refuses to load on."""

from __future__ import annotations

import pytest

from zs2_lib.webui.compat import OLDEST_TESTED, a1111_version, version_problem


@pytest.mark.parametrize(
    ("tag", "version"),
    [
        ("v1.10.1", (1, 10, 1)),
        ("v1.10.1-3-g82a973c", (1, 10, 1)),
        ("1.10.1", (1, 10, 1)),  # A1111 without git reads its CHANGELOG heading
        ("v1.9.4", (1, 9, 4)),
        ("f2.0.1v1.10.1-previous-669-gdfdcbab6", (1, 10, 1)),  # Forge names the A1111 it is based on
        ("<none>", None),
        ("f2.0.1", None),
    ],
)
def test_the_a1111_version_is_read_from_tags(tag: str, version: tuple[int, int, int] | None) -> None:
    assert a1111_version(tag) == version


def test_older_versions_are_refused_with_the_oldest_tested_named() -> None:
    problem = version_problem("v1.9.4")
    assert problem is not None
    assert "v1.10.1" in problem
    assert "v1.9.4" in problem
    assert version_problem("v" + ".".join(map(str, OLDEST_TESTED))) is None
    assert version_problem("v1.11.0-dev") is None
    assert version_problem("<none>") is None  # unknown: the hook checks decide
