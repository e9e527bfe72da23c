"""The version gate: the extension loads only on a webui that has everything it uses.

Tested with A1111 v1.10.1, Forge ``main`` (lllyasviel, 2025-06) and Forge Classic (Haoming02,
``classic`` branch). Which webui it is, is read from what it has: a Forge has ``modules_forge`` and
a CFG sampler (``calc_cond_uncond_batch``) in ``backend`` (Forge main) or ``ldm_patched`` (Forge
Classic); version strings only refuse A1111s older than the oldest tested. A webui that names an
older A1111 version, lacks one of the hooks the extension needs, or is a Forge whose sampler the
extension does not know, is refused at load with one console line instead of failing mid-generation.
"""

from __future__ import annotations

import importlib
import importlib.util
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


FORGE = "Forge"
FORGE_CLASSIC = "Forge Classic"
UNKNOWN_FORGE = "an unknown Forge"
FORGE_SAMPLERS = {FORGE: "backend.sampling.sampling_function", FORGE_CLASSIC: "ldm_patched.modules.samplers"}
"""Each Forge's module with ``calc_cond_uncond_batch``, whose batch layout momentum follows."""


def forge_variant() -> str | None:
    """Which Forge this webui is (:data:`FORGE`, :data:`FORGE_CLASSIC`, :data:`UNKNOWN_FORGE`), or None.

    Read from the modules it has, never from version strings.
    """
    if importlib.util.find_spec("modules_forge") is None:
        return None
    for variant, name in FORGE_SAMPLERS.items():
        try:
            sampler = importlib.import_module(name)
        except ImportError:
            continue
        if hasattr(sampler, "calc_cond_uncond_batch"):
            return variant
    return UNKNOWN_FORGE


def host_problem() -> str | None:
    """Why this webui is refused, or None: an older version, a missing hook, an unknown Forge."""
    from modules import launch_utils, script_callbacks, scripts, ui_components

    problem = version_problem(launch_utils.git_tag())
    if problem:
        return problem
    forge = forge_variant()
    if forge == UNKNOWN_FORGE:
        return (
            "this Forge has no CFG sampler ZS² knows (calc_cond_uncond_batch in backend/ or ldm_patched/); "
            "the extension is not loaded"
        )
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
                forge is not None or callback_names(script_callbacks),
            ),
        )
        if not present
    ]
    if missing:
        return f"this webui lacks {', '.join(missing)} (A1111 v1.10.1 has them); the extension is not loaded"
    return None


def callback_names(script_callbacks: object) -> bool:
    """Whether this webui's callbacks take a ``name`` (A1111 v1.10, Forge main; not Forge Classic)."""
    return "name" in inspect.signature(script_callbacks.on_cfg_denoiser).parameters
