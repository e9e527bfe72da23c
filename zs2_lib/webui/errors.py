"""A ZS² run that cannot start, reported the way A1111 reports known errors (no traceback)."""

from __future__ import annotations

from fastapi import HTTPException

from zs2_lib.script_args import InputError


class RequestError(InputError, HTTPException):
    """Shown in the UI's error box; the API answers with ``status_code`` and the message as ``detail``.

    HTTP 422 for invalid settings (the default), 500 for a missing dependency of the server.
    """

    def __init__(self, message: str, status_code: int = 422) -> None:
        InputError.__init__(self, message)
        HTTPException.__init__(self, status_code=status_code, detail=message)

    def __str__(self) -> str:
        return self.detail
