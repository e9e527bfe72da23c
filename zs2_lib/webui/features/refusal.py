"""Invalid settings are refused at the first noise draw, the earliest point whose error reaches the user.

Script hooks cannot stop a generation (A1111 catches and logs their exceptions); an exception from
``p.rng.next()`` (in img2img from ``p.init``, which runs before it) is shown by the UI's error box
and answered with its status code by the API (422 for invalid settings), before any sampling.
"""

from __future__ import annotations

from typing import Any

import torch

from zs2_lib.webui.run import Feature, Run


class RefusingRNG:
    """Takes the place of ``p.rng``: the first draw raises ``error``; everything else is the host's RNG."""

    def __init__(self, base: Any, error: Exception) -> None:
        self.base = base
        self.error = error

    def next(self) -> torch.Tensor:
        raise self.error

    def __getattr__(self, name: str) -> Any:
        return getattr(self.base, name)


class Refusal(Feature):
    """Every batch's ``p.rng`` refuses with ``error``; in img2img ``p.init`` already does."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def install(self, run: Run) -> None:
        """img2img encodes its init images in ``p.init``, before any batch: refuse there, before it fails."""
        if hasattr(run.p, "init_images"):
            run.set_attribute(run.p, "init", self.refuse)

    def refuse(self, *args: Any, **kwargs: Any) -> None:
        raise self.error

    def batch(self, run: Run) -> None:
        run.set_attribute(run.p, "rng", RefusingRNG(run.p.rng, self.error))
