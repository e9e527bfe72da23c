"""One ZS² generation in the host: its features, and the one undo stack that every host change is on.

A :class:`Run` owns a :class:`contextlib.ExitStack`. Every change a run makes to the host (``p.rng``,
hooks on the UNet, a sampler's noise, ``p.close``, settings) is made by a small function of a
feature that pushes its own undo onto that stack at the moment it makes the change;
:meth:`Run.finish` closes the stack. ``finish`` is reached from ``postprocess``, from the wrap of
``p.close`` (which A1111 calls after success and after exceptions alike), at the start of the next
generation (stale runs) and on script unload, so every path undoes everything.

A feature is one module under ``features/`` with a :class:`Feature` subclass: it installs its
changes in :meth:`Feature.install` and reacts to the host's events; a new feature is a new module
added to the run's list, not an edit of the dispatcher.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import torch

from zs2_lib.chunking import ChunkPlan
from zs2_lib.params import ZS2Params

F = TypeVar("F", bound="Feature")
_MISSING = object()
_RUNS: set[Run] = set()


class Host(Protocol):
    """What a run needs from the webui; :class:`zs2_lib.webui.host.A1111` is the real one."""

    def unet(self) -> torch.nn.Module: ...
    def is_edit_model(self) -> bool: ...
    def cut_short(self) -> str | None: ...
    def option(self, key: str, default: Any = None) -> Any: ...
    def brownian_sampler(self, name: str) -> bool: ...
    def frame_draw(self, image_rng: Any) -> Any: ...
    def stored_option(self, key: str) -> Any: ...
    def set_option(self, key: str, value: Any) -> None: ...
    def empty_cond(self) -> torch.Tensor: ...
    def infotext(self, p: Any, index: int) -> str: ...
    def interpolator_folders(self) -> list[Path]: ...
    def device(self) -> torch.device: ...


@dataclass(frozen=True)
class Position:
    """Where the batch being sampled lies: which video, which chunk of it, its first frame."""

    video: int = 0
    chunk: int = 0
    first_frame: int = 0


class Feature:
    """One part of a ZS² run. Every hook is optional; the run calls them in its features' order."""

    def install(self, run: Run) -> None:
        """Before processing starts (``before_process``): make host changes, each with its undo."""

    def batch(self, run: Run) -> None:
        """A batch (chunk) is about to draw its noise (``process_batch``); ``run.position`` is set."""

    def sampling(self, run: Run, noise: torch.Tensor) -> None:
        """A sampling pass starts (``process_before_every_sampling``); ``noise`` may be edited in place."""

    def evaluation(self, run: Run, params: Any) -> None:
        """A CFG denoiser evaluation starts (``on_cfg_denoiser``), before its UNet calls."""

    def evaluated(self, run: Run) -> None:
        """The UNet calls of an evaluation are done (``on_cfg_denoised``)."""

    def frame(self, run: Run, image: Any) -> None:
        """A frame is finished (``postprocess_image_after_composite``)."""

    def carried(self) -> Iterable[torch.Tensor]:
        """The state this feature carries from one chunk to the next (for memory accounting)."""
        return ()


class Run:
    """The state of one generation (one ``p``): settings, plan, features and the undo stack.

    Args:
        p: A1111's processing object.
        host: the webui adapter.
        features: the run's features, in the order their hooks are called.
        params: the validated settings (None for a run that only refuses invalid ones).
        plan: how the videos are laid over A1111 batches (None likewise).
    """

    def __init__(
        self,
        p: Any,
        host: Host,
        features: Iterable[Feature],
        *,
        params: ZS2Params | None = None,
        plan: ChunkPlan | None = None,
    ) -> None:
        self.p = p
        self.host = host
        self.features = list(features)
        self.params = params
        self.plan = plan
        self.position = Position()
        self.undo = ExitStack()
        self.peak_carried = 0
        self.finished = False

    def start(self) -> None:
        """Register the run on ``p``, wrap ``p.close`` so any exit ends it, install every feature."""
        try:
            _RUNS.add(self)
            self.undo.callback(_RUNS.discard, self)
            self.set_attribute(self.p, "_zs2_run", self)
            self.wrap_close()
            for feature in self.features:
                feature.install(self)
        except BaseException:
            self.finish()
            raise

    def finish(self) -> None:
        """Undo every host change, newest first; safe to call twice and from any path."""
        if self.finished:
            return
        self.finished = True
        self.undo.close()

    def feature(self, kind: type[F]) -> F:
        """The run's feature of that class."""
        return next(feature for feature in self.features if isinstance(feature, kind))

    # undoable changes ------------------------------------------------------------------------

    def set_attribute(self, target: Any, name: str, value: Any) -> None:
        """Set an instance attribute and push its undo: the previous instance value comes back.

        If something else replaced the value after us (a wrapper on top of ours), it is left as it
        is, so the host's own reassignments (A1111 builds a new ``p.rng`` every batch) are kept.
        """
        previous = vars(target).get(name, _MISSING)
        setattr(target, name, value)

        def restore() -> None:
            if vars(target).get(name, _MISSING) is not value:
                return
            if previous is _MISSING:
                delattr(target, name)
            else:
                setattr(target, name, previous)

        self.undo.callback(restore)

    def wrap_close(self) -> None:
        """Wrap ``p.close`` on this instance so that closing ``p`` finishes the run first."""
        original = self.p.close

        def close(*args: Any, **kwargs: Any) -> Any:
            try:
                self.finish()
            finally:
                result = original(*args, **kwargs)
            return result

        self.set_attribute(self.p, "close", close)

    # events ----------------------------------------------------------------------------------

    def emit(self, hook: str, *args: Any) -> None:
        """Call one hook of every feature, in order."""
        for feature in self.features:
            getattr(feature, hook)(self, *args)

    def begin_batch(self, batch_number: int) -> None:
        """A1111's batch ``batch_number`` starts: locate it in the videos and tell the features."""
        if self.plan is not None:
            self.position = Position(*self.plan.locate(batch_number))
            self.peak_carried = max(self.peak_carried, self.carried_bytes())
        self.emit("batch")

    def carried_bytes(self) -> int:
        """Size of the state carried to the next chunk (attention contexts and noise)."""
        tensors = [t for feature in self.features for t in feature.carried()]
        return sum(t.numel() * t.element_size() for t in tensors)


def run_of(p: Any) -> Run | None:
    """The active run of a processing object, if it is a ZS² generation."""
    run = getattr(p, "_zs2_run", None)
    return run if isinstance(run, Run) and not run.finished else None


def active_runs() -> list[Run]:
    """Every run not finished yet."""
    return list(_RUNS)


def finish_stale_runs() -> None:
    """End runs whose generation never reached postprocess or close (self-heal)."""
    for run in active_runs():
        run.finish()
