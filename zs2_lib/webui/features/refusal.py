"""Invalid settings are refused before A1111 does any work a refusal would waste or leave behind.

Script hooks cannot stop a generation (A1111 catches and logs their exceptions). The first method of
``p`` that ``process_images`` calls after the scripts' ``before_process`` is
``p.get_token_merging_ratio()``: an exception from it is shown by the UI's error box and answered
with its status code by the API (422 for invalid settings), before the prompt is encoded,
``params.txt`` is written or anything is sampled. What has happened by then: the other scripts'
``before_process``, and the request's own ``override_settings`` applied (A1111 restores them unless
the request says not to; a checkpoint named there is loaded). ``p.rng`` refuses too, in case another
caller of ``process_images_inner`` skips that method.

The page's requests are refused without an exception: A1111's UI wrapper prints a traceback to the
console for every exception, and a user's typo is no program error. There the same method instead
adds the message to the result's comments (shown below the results) and raises A1111's interrupt
flag (restored when the run ends), so ``process_images`` makes no image and the console gets the
message alone.
"""

from __future__ import annotations

from typing import Any, NoReturn

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
    """``p.get_token_merging_ratio`` and every batch's ``p.rng`` refuse with ``error``; for the page
    (``quietly``) the first says ``message`` below the results and stops the batches instead."""

    def __init__(self, error: Exception, message: str = "", *, quietly: bool = False) -> None:
        self.error = error
        self.message = message or str(error)
        self.quietly = quietly

    def install(self, run: Run) -> None:
        def refuse(*args: Any, **kwargs: Any) -> NoReturn:
            raise self.error

        if not self.quietly:
            run.set_attribute(run.p, "get_token_merging_ratio", refuse)
            return
        original = run.p.get_token_merging_ratio

        def stop(*args: Any, **kwargs: Any) -> Any:
            run.p.comment(self.message)
            run.set_attribute(run.host.job_state(), "interrupted", True)
            return original(*args, **kwargs)

        run.set_attribute(run.p, "get_token_merging_ratio", stop)

    def batch(self, run: Run) -> None:
        run.set_attribute(run.p, "rng", RefusingRNG(run.p.rng, self.error))
