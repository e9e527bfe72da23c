"""A ZS² run that cannot start, reported the way A1111 reports known errors (no traceback)."""

from __future__ import annotations

from fastapi import HTTPException

from zs2_lib.names import LABEL
from zs2_lib.params import ERROR_PREFIX
from zs2_lib.script_args import InputError


class RequestError(InputError, HTTPException):
    """Shown in the UI's error box; the API answers with ``status_code`` and the message as ``detail``.

    HTTP 422 for invalid settings (the default), 500 for a missing dependency of the server.
    """

    def __init__(self, message: str, status_code: int = 422) -> None:
        InputError.__init__(self, message)
        HTTPException.__init__(self, status_code=status_code, detail=message)

    def __str__(self) -> str:
        """The message after the product's name, which the class's name supplies (see below)."""
        return self.detail.removeprefix(ERROR_PREFIX)


# A1111's UI error box shows ``f"{type(e).__name__}: {e}"`` (modules/call_queue.py): named after the
# product, it reads "ZS² Video: Frames (frames): 0 is out of range ...", not "RequestError: ...".
RequestError.__name__ = RequestError.__qualname__ = LABEL
