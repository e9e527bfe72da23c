"""The version gate: which webui versions the extension refuses to load on."""

from __future__ import annotations

import sys

import pytest

from zs2_lib.webui.compat import (
    FORGE,
    FORGE_CLASSIC,
    OLDEST_TESTED,
    UNKNOWN_FORGE,
    a1111_version,
    forge_variant,
    version_problem,
)


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


def _fake_webui(root, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


FORGE_MODULES = ("modules_forge", "backend", "ldm_patched")


@pytest.fixture
def fake_webui(tmp_path, monkeypatch):
    """A folder on sys.path to lay out a webui's packages in; they are forgotten afterwards."""
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in list(sys.modules):
        if name.split(".")[0] in FORGE_MODULES:
            del sys.modules[name]


SAMPLER = "def calc_cond_uncond_batch(model, cond, uncond, x_in, timestep, model_options): ...\n"


@pytest.mark.parametrize(
    ("files", "variant"),
    [
        ({}, None),  # A1111: no modules_forge
        ({"backend/sampling/sampling_function.py": SAMPLER}, None),  # a backend package alone is not Forge
        ({"modules_forge/__init__.py": "", "backend/sampling/sampling_function.py": SAMPLER}, FORGE),
        ({"modules_forge/__init__.py": "", "ldm_patched/modules/samplers.py": SAMPLER}, FORGE_CLASSIC),
        ({"modules_forge/__init__.py": "", "ldm_patched/modules/samplers.py": "x = 1\n"}, UNKNOWN_FORGE),
    ],
)
def test_a_forge_is_recognised_by_the_modules_it_has(fake_webui, files, variant) -> None:
    _fake_webui(fake_webui, files)
    assert forge_variant() == variant
