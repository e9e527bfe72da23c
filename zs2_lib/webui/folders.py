"""The webui's folders the extension reads: where users put a learned interpolator's weights.

Imports only ``modules.paths``, so the accordion (``ui.py``) can ask as the page is built, as a run
asks through the host (:meth:`zs2_lib.webui.host.A1111.interpolator_folders`).
"""

from __future__ import annotations

from pathlib import Path

from modules import paths

from zs2_lib.rife_weights import MODELS_FOLDER


def interpolator_folders() -> list[Path]:
    """``<models>/RIFE`` of the webui's models folder (``--models-dir``, else ``<data-dir>/models``)."""
    return [Path(paths.models_path) / MODELS_FOLDER]
