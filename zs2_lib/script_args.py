"""From the values A1111 hands a script (UI components or an API request) to one ZS2Params.

The script's ``ui()`` returns one component per ``params.FIELDS`` entry, in that order, so hooks get
their values positionally. API clients may send that positional list, or a single dict keyed by the
public names as the first argument (``{"enabled": true, "frames": 16, ...}``); a partial list keeps
the UI defaults for the rest, as A1111 fills them in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from zs2_lib.names import INFOTEXT_KEY
from zs2_lib.params import ERROR_PREFIX, FIELD_BY_NAME, FIELDS, ParamError, ZS2Params

FIELD_NAMES = tuple(spec.name for spec in FIELDS)


def params_from_args(args: Sequence[Any]) -> ZS2Params:
    """The validated params from a script's positional args, or from a dict as the first arg.

    Raises:
        ParamError: unknown names, too many values, or an invalid value (the field is named).
    """
    if args and isinstance(args[0], Mapping):
        return ZS2Params.from_dict(args[0])
    if len(args) > len(FIELD_NAMES):
        raise ParamError(
            f"{ERROR_PREFIX}args: got {len(args)} values, accepted: at most {len(FIELD_NAMES)}, "
            f"in this order: {', '.join(FIELD_NAMES)}; or one dict keyed by these names"
        )
    return ZS2Params.from_dict(dict(zip(FIELD_NAMES, args, strict=False)))


def infotext_value(generation_params: Mapping[str, str], name: str) -> Any:
    """The UI value of field ``name`` from a parsed infotext, for "Send to txt2img" / paste.

    ``enabled`` is whether the infotext has valid ZS² settings. Other fields come from those
    settings, except a video source (the infotext holds only its name); without them (or if they
    cannot be read) None, which leaves the control as it is.

    Raises:
        InputError: for ``enabled``, when the settings cannot be read (naming the field). The API
            answers 422 (it reads its ``infotext`` field before anything runs); the UI's paste logs
            it and leaves the checkbox as it is, so invalid settings never turn ZS² on.
    """
    text = generation_params.get(INFOTEXT_KEY)
    if text is None:
        return False if name == "enabled" else None
    if name != "enabled" and FIELD_BY_NAME[name].kind == "source":  # only a name was recorded
        return None
    try:
        params = ZS2Params.from_infotext(text)
    except ParamError as error:
        if name == "enabled":
            raise InputError(f"{error} (in the infotext's {INFOTEXT_KEY!r} value)") from None
        return None
    if name == "enabled":
        return True
    return FIELD_BY_NAME[name].to_public(getattr(params, FIELD_BY_NAME[name].attribute))


class InputError(ValueError):
    """Invalid ZS² settings, shown by A1111's error display and answered with HTTP 422 by its API.

    A1111's API error handler takes ``status_code`` and ``detail`` from any exception.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.status_code = 422
        self.detail = message


def wants_enabled(args: Sequence[Any]) -> bool:
    """Whether unparseable args still ask for ZS² (then their error must be shown, not ignored)."""
    if not args:
        return False
    first = args[0]
    if isinstance(first, Mapping):
        first = first.get("enabled", False)
    try:
        return bool(FIELD_BY_NAME["enabled"].parse(first))
    except ParamError:
        return True
