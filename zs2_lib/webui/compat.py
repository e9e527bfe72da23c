"""The version gate: the extension loads only on a webui that has everything it uses.

Tested with A1111 v1.10.1. A webui that names an older A1111 version, or lacks one of the hooks the
extension needs, is refused at load with one console line instead of failing mid-generation.
"""

from __future__ import annotations

import inspect
import re

OLDEST_TESTED = (1, 10, 1)
_TAGGED = re.compile(r"v(\d+)\.(\d+)\.(\d+)")
_BARE = re.compile(r"(\d+)\.(\d+)\.(\d+)")


def a1111_version(tag: str) -> tuple[int, int, int] | None:
    """The A1111 version a ``git describe`` tag or CHANGELOG heading names, e.g. ``v1.10.1-3-gabc``.

    Forks prefix their own version (Forge: ``f2.0.1v1.10.1-…``), so a ``v``-marked version wins; a
    bare ``1.10.1`` counts only at the start (A1111 without git reads its CHANGELOG).
    """
    match = _TAGGED.search(tag) or _BARE.match(tag.strip())
    return tuple(int(part) for part in match.groups()) if match else None


def version_problem(tag: str) -> str | None:
    """Why a webui of that tag is refused, or None."""
    version = a1111_version(tag)
    if version is not None and version < OLDEST_TESTED:
        oldest = ".".join(map(str, OLDEST_TESTED))
        return f"needs AUTOMATIC1111 v{oldest} or newer, this webui is {tag}; the extension is not loaded"
    return None


def host_problem() -> str | None:
    """Why this webui is refused, or None: an older version, or a missing hook."""
    from modules import launch_utils, script_callbacks, scripts, ui_components

    problem = version_problem(launch_utils.git_tag())
    if problem:
        return problem
    missing = [
        name
        for name, present in (
            (
                "Script.process_before_every_sampling",
                hasattr(scripts.Script, "process_before_every_sampling"),
            ),
            (
                "Script.postprocess_image_after_composite",
                hasattr(scripts.Script, "postprocess_image_after_composite"),
            ),
            ("InputAccordion", hasattr(ui_components, "InputAccordion")),
            (
                "on_cfg_denoiser(name=…)",
                "name" in inspect.signature(script_callbacks.on_cfg_denoiser).parameters,
            ),
        )
        if not present
    ]
    if missing:
        return f"this webui lacks {', '.join(missing)} (A1111 v1.10.1 has them); the extension is not loaded"
    return None
