"""Lay the videos over A1111 batches (no grid) and turn off the options that break momentum."""

from __future__ import annotations

from typing import Any

from zs2_lib.names import console
from zs2_lib.webui.run import Feature, Run

INCOMPATIBLE_SETTINGS = {
    "hypertile_enable_unet": False,
    "token_merging_ratio": 0.0,
    "token_merging_ratio_hr": 0.0,
    "token_merging_ratio_img2img": 0.0,
}
"""Settings turned off for a ZS² run: Hypertile retiles attn1's rows, token merging merges tokens per row."""

_REQUEST_RATIOS = ("token_merging_ratio", "token_merging_ratio_hr")
"""Token-merging ratios a request can also set as attributes of ``p``."""


class BatchPlan(Feature):
    """Lay the videos over A1111 batches and turn off what breaks temporal momentum, for this run only."""

    def install(self, run: Run) -> None:
        p, plan = run.p, run.plan
        run.set_attribute(p, "batch_size", plan.batch_size)
        run.set_attribute(p, "n_iter", plan.batches)
        run.set_attribute(p, "do_not_save_grid", True)  # the video takes the grid's place
        self._turn_off_incompatible(run)

    def _turn_off_incompatible(self, run: Run) -> None:
        """Through ``p.override_settings``, which A1111 applies after ``before_process``.

        A1111 restores overrides only with ``override_settings_restore_afterwards`` (and only for
        settings stored in its config), so the run restores what it turned off itself, on its undo
        stack: the stored value, or the request's own override where the request keeps its overrides.
        """
        p = run.p
        turned_off = [
            key
            for key in INCOMPATIBLE_SETTINGS
            if p.override_settings.get(key, run.host.option(key))  # the request's value wins
        ]
        for attribute in _REQUEST_RATIOS:
            if getattr(p, attribute, 0):
                run.set_attribute(p, attribute, 0.0)
                turned_off.append(attribute)
        if not turned_off:
            return
        keep_request = not getattr(p, "override_settings_restore_afterwards", True)
        for key in dict.fromkeys(turned_off):
            if key in INCOMPATIBLE_SETTINGS:
                after = p.override_settings[key] if keep_request and key in p.override_settings else None
                _restore_after_run(run, key, run.host.stored_option(key) if after is None else after)
        overrides = {**p.override_settings, **{key: INCOMPATIBLE_SETTINGS[key] for key in turned_off}}
        run.set_attribute(p, "override_settings", overrides)
        names = ", ".join(dict.fromkeys(turned_off))
        console(f"turned off for this run (incompatible with temporal momentum): {names}")


def _restore_after_run(run: Run, key: str, value: Any) -> None:
    """When the run ends, ``key`` is ``value`` again, unless something other than ZS² changed it."""

    def restore() -> None:
        if run.host.stored_option(key) == INCOMPATIBLE_SETTINGS[key]:
            run.host.set_option(key, value)

    run.undo.callback(restore)
