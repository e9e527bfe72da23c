"""Prompt travel (``zs2_lib.prompt_travel``): each frame's conditioning interpolated between keyframes.

A1111 computes a batch's conditioning in ``setup_conds`` (and ``calculate_hr_conds`` for hires fix,
again after a refiner switch) through ``p.get_conds_with_caching(function, prompts, ...)``, with
``p.prompts`` already stripped of ``<lora:…>`` tags (the LoRAs are active by then). This feature
wraps that method on the instance, for the run: a batch whose prompt (or negative prompt) has
keyframe lines gets its keyframes' conditionings from A1111 itself (its parser, emphasis, prompt
editing, BREAK, embeddings and cache; computed once and cached across chunks) and every row, frame
``first_frame + row``, the interpolation for its frame index, so the conditioning of frame k does
not depend on the chunking. Any other prompt goes through untouched. ``p.prompt`` is never changed,
so the infotext keeps the original prompt.

A1111's result types are rebuilt with ``type(x)(...)``, so this module imports nothing from the host.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import torch

from zs2_lib.names import PREFIX, console
from zs2_lib.prompt_travel import Travel, TravelError, interpolate, merge_schedules, pad_tokens, parse
from zs2_lib.webui.run import Feature, Run

_AND = re.compile(r"\bAND\b")
"""A1111's composable-diffusion separator (``prompt_parser.re_AND``)."""


class PromptTravel(Feature):
    """Wrap ``p.get_conds_with_caching`` so travel prompts give every frame its interpolated conditioning."""

    def __init__(self) -> None:
        self.frames = 0  # frame conditionings made, and the time it took (A1111's encoding included)
        self.seconds = 0.0

    def install(self, run: Run) -> None:
        original = run.p.get_conds_with_caching
        run.undo.callback(self._report)

        def get_conds_with_caching(function, prompts, steps, caches, extra_network_data, hires_steps=None):
            def compute(required: Any) -> Any:
                return original(function, required, steps, caches, extra_network_data, hires_steps)

            travels = _travels(prompts)
            if not any(travels):
                return compute(prompts)
            try:
                for travel in filter(None, travels):
                    travel.validate(run.params.frames)
            except TravelError as error:
                raise _refusal(str(error)) from None
            started = time.perf_counter()
            result = self._travel(run, travels, prompts, compute)
            self.seconds += time.perf_counter() - started
            self.frames += len(prompts)
            return result

        run.set_attribute(run.p, "get_conds_with_caching", get_conds_with_caching)

    def _travel(
        self, run: Run, travels: list[Travel | None], prompts: Any, compute: Callable[[Any], Any]
    ) -> Any:
        """Keyframe conditionings from A1111 (``compute``), then one interpolated conditioning per row."""
        keyframe_prompts: dict[str, int] = {}
        rows: list[list[str]] = []
        for text, travel in zip(prompts, travels, strict=True):
            needed = [text] if travel is None else travel.prompts()
            rows.append(needed)
            for prompt in needed:
                keyframe_prompts.setdefault(prompt, len(keyframe_prompts))
        keyed = type(prompts)(list(keyframe_prompts), copy_from=prompts)
        result = compute(keyed)
        multicond = hasattr(result, "batch")
        per_prompt = result.batch if multicond else result
        empty = run.host.empty_cond()
        out = []
        for row, (needed, travel) in enumerate(zip(rows, travels, strict=True)):
            entries = [per_prompt[keyframe_prompts[prompt]] for prompt in needed]
            if travel is None:
                out.append(entries[0])
                continue
            frame = run.position.first_frame + row
            a, b, t = travel.segment(frame)
            tokens = max(
                _tokens(schedule.cond) for entry in entries for schedule in _schedules(entry, multicond)
            )
            if multicond:
                out.append([_mix_composable(entries[a], entries[b], t, tokens, empty)])
            else:
                out.append(_mix_schedules(entries[a], entries[b], t, tokens, empty))
        return type(result)(shape=(len(out),), batch=out) if multicond else out

    def _report(self) -> None:
        if self.frames:
            console(f"prompt travel: {self.frames} frame conditionings in {self.seconds * 1000:.1f} ms")


def _refusal(message: str) -> Exception:
    """The error A1111 shows in its error box and the API answers with HTTP 422 (no traceback).

    Imported here, not at the top: ``errors`` needs the host's fastapi, and the CI tier runs this
    feature on a fake ``p`` without it.
    """
    from zs2_lib.webui.errors import RequestError

    return RequestError(f"{PREFIX} {message}")


def _travels(prompts: list[str]) -> list[Travel | None]:
    """Each row's travel (None for an ordinary prompt); bad keyframes and AND refused naming the line."""
    what = "negative prompt" if getattr(prompts, "is_negative_prompt", False) else "prompt"
    travels = []
    for text in prompts:
        try:
            travel = parse(text, what)
        except TravelError as error:
            raise _refusal(str(error)) from None
        if travel is not None and what == "prompt":
            for keyframe, prompt in zip(travel.keyframes, travel.prompts(), strict=True):
                if _AND.search(prompt):
                    raise _refusal(
                        f"prompt travel, line {keyframe.line}: AND (composable sub-prompts) cannot "
                        "be interpolated between keyframes; write the keyframes without AND"
                    )
        travels.append(travel)
    return travels


def _schedules(entry: Any, multicond: bool) -> list[Any]:
    if multicond:
        if len(entry) != 1:
            raise _refusal("prompt travel: AND cannot be interpolated between keyframes")
        return entry[0].schedules
    return entry


def _tokens(cond: Any) -> int:
    return (cond["crossattn"] if isinstance(cond, dict) else cond).shape[0]


def _pad(cond: Any, tokens: int, empty: torch.Tensor) -> Any:
    """Pad the token axis (``crossattn`` for SDXL) with empty-prompt chunks, as A1111's ``pad_cond``."""
    if isinstance(cond, dict):
        if _tokens(cond) == tokens:
            return cond
        return type(cond)({**cond, "crossattn": pad_tokens(cond["crossattn"], tokens, empty)})
    return pad_tokens(cond, tokens, empty)


def _mix(a: Any, b: Any, t: float, tokens: int, empty: torch.Tensor) -> Any:
    a, b = _pad(a, tokens, empty), _pad(b, tokens, empty)
    if t == 0:
        return a
    mixed = interpolate(a, b, t)
    return type(a)(mixed) if isinstance(a, dict) else mixed


def _mix_schedules(a: list[Any], b: list[Any], t: float, tokens: int, empty: torch.Tensor) -> list[Any]:
    """Two keyframes' schedules (prompt editing) mixed on the union of their step boundaries."""
    kind = type(a[0])
    merged = merge_schedules([(s.end_at_step, s.cond) for s in a], [(s.end_at_step, s.cond) for s in b])
    return [kind(end, _mix(x, y, t, tokens, empty)) for end, x, y in merged]


def _mix_composable(a: Any, b: Any, t: float, tokens: int, empty: torch.Tensor) -> Any:
    """One keyframe pair's composable conditioning (a single sub-prompt each), weights mixed linearly."""
    (part_a,), (part_b,) = a, b
    schedules = _mix_schedules(part_a.schedules, part_b.schedules, t, tokens, empty)
    return type(part_a)(schedules, weight=(1 - t) * part_a.weight + t * part_b.weight)
