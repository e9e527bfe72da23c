"""The names the host, the API, the infotext and the page depend on, each defined once, and the one logger.

Changing one of these breaks saved infotexts, API clients or ``javascript/zs2_video.js``; tests pin
them.
"""

from __future__ import annotations

import logging

SCRIPT_TITLE = "ZS2 Video"
"""A1111's script title: the key of ``alwayson_scripts`` in API requests (ASCII, so clients can type it)."""

LABEL = "ZS² Video"
"""What the user sees: the accordion's label and the start of every message."""

INFOTEXT_KEY = "ZS2 Video"
"""The key under which the settings are stored in A1111's infotext ("generation parameters")."""

PREFIX = f"{LABEL}:"
"""Every console line and every error message starts with this."""

FRAME_INFOTEXT_KEY = "ZS2 frame"
"""The infotext key of a frame's index in its video (0 is the first frame). The frame's ``Seed`` is the
video's seed (frame k was drawn from seed + k), so pasting any frame's infotext regenerates the video."""

CONTROL_INFOTEXT_KEY = "ZS2 control"
"""The infotext key naming each ControlNet unit's control video (``unit 0: folder "pose" (24 frames)``)."""

API_KEY = "zs2_videos"
"""Key of the list of videos in the ``info`` JSON of an API response and of the results page."""

REPORT_KEY = "zs2_report"
"""Key of the ``info`` JSON listing each video's frame count, why it is short, and write errors."""

OUTPUT_FOLDER = "zs2"
"""Videos are written to ``<outpath_samples>/zs2``."""

logger = logging.getLogger("zs2_video")
"""The extension's one logger, for warnings that are not addressed to the user."""


def console(message: str) -> None:
    """One line for the user in the webui's console, prefixed like every message of the extension."""
    print(f"{PREFIX} {message}")
