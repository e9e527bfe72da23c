"""Temporal momentum attention on any UNet: forward pre-hooks on every ``*.attn1`` (paper §4.1).

Eq. 2 averages attn1's keys and values over the frames so far. ``to_k`` and ``to_v`` are linear
with no bias in ldm and sgm, so averaging attn1's *input* and passing it as ``context`` gives the
same K̈ and V̈ (``docs/DESIGN.md`` §1.2): one mix instead of two, under every attention
implementation (xformers, SDP, sub-quadratic, …) and under LoRA. Queries are untouched.

A UNet call's batch holds several *streams* (each CFG branch: the uncond rows, each AND
sub-prompt's cond rows, …), each a run of consecutive frames. A :class:`FrameLayout` says which
row is which (stream, frame); the mix runs within each stream only, and rows outside the layout
pass through unchanged. :class:`TemporalMomentum` keeps, per (layer, stream), the last mixed frame,
so a stream split over several UNet calls, or a video made in chunks, continues exactly where it
stopped. :class:`MomentumHooks` installs the hooks on one model and removes them on every path.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from zs2_lib.momentum import mix_operator, momentum_mix, momentum_mix_dense
from zs2_lib.names import logger

Row = tuple[Hashable, int]  # (stream key, global frame index)


@dataclass(frozen=True)
class StreamRows:
    """The rows of one stream in one UNet call: ``rows[k]`` holds global frame ``first_frame + k``."""

    key: Hashable
    rows: tuple[int, ...]
    first_frame: int

    @functools.cached_property
    def index(self) -> slice | torch.Tensor:
        """A slice when the rows are contiguous (a view, no copy), else an index tensor."""
        start = self.rows[0]
        if self.rows == tuple(range(start, start + len(self.rows))):
            return slice(start, start + len(self.rows))
        return torch.tensor(self.rows)


@dataclass(frozen=True)
class FrameLayout:
    """Which (stream, global frame) each batch row of one UNet call holds; None passes through.

    Within one call a stream's rows must hold consecutive frames in increasing row order (the
    momentum recurrence runs along them); any interleaving of streams is allowed.
    """

    rows: tuple[Row | None, ...]
    streams: tuple[StreamRows, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        grouped: dict[Hashable, list[tuple[int, int]]] = {}
        for index, row in enumerate(self.rows):
            if row is not None:
                grouped.setdefault(row[0], []).append((index, row[1]))
        streams = []
        for key, members in grouped.items():
            frames = [frame for _, frame in members]
            if frames != list(range(frames[0], frames[0] + len(frames))):
                raise ValueError(f"stream {key!r}: rows must hold consecutive frames in order, got {frames}")
            streams.append(StreamRows(key, tuple(index for index, _ in members), frames[0]))
        object.__setattr__(self, "streams", tuple(streams))

    @classmethod
    def blocks(cls, blocks: Iterable[tuple[Hashable, int, int]]) -> FrameLayout:
        """Stacked blocks ``(stream key, first frame, frame count)``, e.g. cond frames then uncond."""
        return cls(tuple((key, first + k) for key, first, count in blocks for k in range(count)))

    def __len__(self) -> int:
        return len(self.rows)

    def slice(self, start: int, stop: int) -> FrameLayout:
        """The layout of a call that gets rows ``start:stop`` of this one."""
        return FrameLayout(self.rows[start:stop])


MomentumSchedule = float | Sequence[float] | Callable[[int], float]


class TemporalMomentum:
    """Eq. 2 over attn1 contexts for one generation: μ per global frame, layout, carried state.

    Set :attr:`layout` before each UNet call (None makes the hooks pass everything through). The
    state maps ``(layer name, stream key)`` to ``(global frame, last mixed context)``; a stream's
    first row uses the carry only if it holds exactly the next frame, so stale state is never mixed
    in. Hand the same state to the next chunk to continue the video.

    Args:
        mus: μ for every global frame: one float, a sequence indexed by frame, or a callable.
        state: carried state from an earlier chunk (shared, not copied), or None.
        state_device: where to keep the carry (e.g. ``"cpu"`` to spare VRAM); None keeps it in place.
        dense: mix by one matrix product (True) or by the recurrence (False); None picks by device:
            the recurrence on the CPU, where it is fastest (``benchmarks/bench_core.py``), the
            matrix product elsewhere, where a loop over frames is one kernel launch per frame.
    """

    def __init__(
        self,
        mus: MomentumSchedule,
        *,
        state: dict[tuple[str, Hashable], tuple[int, torch.Tensor]] | None = None,
        state_device: torch.device | str | None = None,
        dense: bool | None = None,
    ) -> None:
        self.mus = mus
        self.dense = dense
        self.state = {} if state is None else state
        self.state_device = state_device
        self.layout: FrameLayout | None = None
        self.mismatches = 0
        self._mus: dict[tuple[int, int], tuple[float, ...]] = {}
        self._operators: dict[tuple[int, int, bool], tuple[torch.Tensor, torch.Tensor]] = {}

    def mu(self, frame: int) -> float:
        """μ of one global frame."""
        if callable(self.mus):
            return float(self.mus(frame))
        if isinstance(self.mus, (int, float)):
            return float(self.mus)
        return float(self.mus[frame])

    def mus_of(self, first_frame: int, count: int) -> tuple[float, ...]:
        """μ of ``count`` frames from ``first_frame`` (computed once per run of frames)."""
        key = (first_frame, count)
        if key not in self._mus:
            self._mus[key] = tuple(self.mu(f) for f in range(first_frame, first_frame + count))
        return self._mus[key]

    def _mix_stream(self, x: torch.Tensor, first_frame: int, carry: torch.Tensor | None) -> tuple:
        """One stream's Eq. 2: the O(F) recurrence on the CPU, one matrix product on accelerators."""
        mus = self.mus_of(first_frame, x.shape[0])
        if not (x.device.type != "cpu" if self.dense is None else self.dense):
            return momentum_mix(x, mus, carry)
        key = (first_frame, x.shape[0], carry is not None)
        if key not in self._operators:
            self._operators[key] = mix_operator(mus, x.shape[0], carry=carry is not None)
        return momentum_mix_dense(x, self._operators[key], carry)

    def mix(self, layer: str, context: torch.Tensor) -> torch.Tensor:
        """attn1's context with each stream's rows replaced by their momentum mix."""
        layout = self.layout
        if layout is None:
            return context
        if len(layout) != context.shape[0]:
            self.mismatches += 1
            logger.warning(
                "%s: batch of %d rows but layout of %d; left as is", layer, context.shape[0], len(layout)
            )
            return context
        mixed = context.clone()
        for stream in layout.streams:
            key = (layer, stream.key)
            carried = self.state.get(key)
            carry = carried[1] if carried is not None and carried[0] == stream.first_frame - 1 else None
            index = stream.index
            mixed[index], last = self._mix_stream(context[index], stream.first_frame, carry)
            if self.state_device is not None:
                last = last.to(self.state_device)
            self.state[key] = (stream.first_frame + len(stream.rows) - 1, last)
        return mixed

    def pre_hook(self, layer: str) -> Callable[..., Any]:
        """A ``register_forward_pre_hook(..., with_kwargs=True)`` hook for the attn1 named ``layer``.

        attn1 is called as ``attn1(x, context=None, ...)`` in ldm and sgm; a positional context is
        handled too. A given context (e.g. from ControlNet's reference mode) is mixed as it is.
        Forge also passes ``value`` (None unless an attn1 patch set it, when ``to_v`` reads it instead
        of the context): a given value is mixed the same way, on its own carried state.
        """

        def hook(module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict] | None:
            if self.layout is None:
                return None
            if len(args) >= 2 and args[1] is not None:
                return (args[0], self.mix(layer, args[1]), *args[2:]), kwargs
            context = kwargs.get("context")
            x = args[0] if args else kwargs["x"]
            mixed = {**kwargs, "context": self.mix(layer, x if context is None else context)}
            if kwargs.get("value") is not None:
                mixed["value"] = self.mix(f"{layer}:value", kwargs["value"])
            return args, mixed

        return hook


def attn1_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Every self-attention module of a UNet: ``(qualified name, module)`` for each ``*.attn1``."""
    return [(name, module) for name, module in model.named_modules() if name.rsplit(".", 1)[-1] == "attn1"]


class MomentumHooks:
    """Pre-hooks of one :class:`TemporalMomentum` on every attn1 of one model; a context manager.

    ``remove()`` is idempotent, and leaving a ``with`` block removes them whatever happened inside.
    The model's classes are never touched: the hooks live on the module instances only.
    """

    def __init__(self, model: nn.Module, momentum: TemporalMomentum) -> None:
        modules = attn1_modules(model)
        if not modules:
            raise ValueError("no attn1 self-attention modules found in this model")
        self.model = model
        self.momentum = momentum
        self.layers = [name for name, _ in modules]
        self._handles: list[RemovableHandle] = []
        try:
            for name, module in modules:
                self._handles.append(
                    module.register_forward_pre_hook(momentum.pre_hook(name), with_kwargs=True)
                )
        except BaseException:
            self.remove()
            raise

    @property
    def active(self) -> bool:
        """Whether the hooks are still installed."""
        return bool(self._handles)

    def remove(self) -> None:
        """Remove every hook (safe to call twice)."""
        while self._handles:
            self._handles.pop().remove()

    def __enter__(self) -> MomentumHooks:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.remove()


@contextmanager
def momentum_attention(
    model: nn.Module,
    mus: MomentumSchedule,
    layout: FrameLayout | None = None,
    *,
    state: dict[tuple[str, Hashable], tuple[int, torch.Tensor]] | None = None,
) -> Iterator[TemporalMomentum]:
    """Temporal momentum attention on every attn1 of ``model`` for the duration of a ``with`` block.

    Yields the :class:`TemporalMomentum`, whose ``layout`` may be changed between UNet calls and
    whose ``state`` carries into the next chunk. The hooks are gone when the block is left, by
    return or by exception.
    """
    momentum = TemporalMomentum(mus, state=state)
    momentum.layout = layout
    with MomentumHooks(model, momentum):
        yield momentum
