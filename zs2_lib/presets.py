"""Named ZS² settings: shipped presets and the user's own, one small JSON file each.

A preset file ``<slug>.json`` holds ``{"name": "Lively", "settings": {"lambda": "0.1", ...}}``, the
settings keyed by the parameters' public names. Applying a preset gives every setting it covers:
the ones it names, the rest at their defaults. Settings tied to one run's inputs (``enabled``, the
video input and control videos) are never stored. Shipped presets live in the extension's
``presets/`` folder; the user's in ``user-presets/`` (not tracked by git), which wins on a name
clash. Files are written atomically (:func:`zs2_lib.files.write_text`). A file that cannot be read
or holds invalid settings is reported by name and skipped; the other presets still load.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zs2_lib.files import write_text
from zs2_lib.names import PREFIX
from zs2_lib.params import FIELDS, ParamError, ZS2Params

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "presets"
USER = ROOT / "user-presets"
NOT_STORED = ("enabled", "video", "control_video", "control_videos")
"""Settings of one run's inputs, left as they are when a preset is applied."""
STORED = tuple(spec.name for spec in FIELDS if spec.name not in NOT_STORED)
MAX_NAME = 64
_NAME = re.compile(r"[\w][\w .\-]*", re.UNICODE)


class PresetError(ValueError):
    """A preset name, file or its settings cannot be used; the message says which and why."""


@dataclass(frozen=True)
class Preset:
    """One preset: its name, where it came from, and every stored setting (public JSON values)."""

    name: str
    path: Path
    settings: Mapping[str, Any]
    shipped: bool


@dataclass
class Presets:
    """The presets found, by name, and one message per file that could not be loaded."""

    by_name: dict[str, Preset] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return list(self.by_name)


def settings_of(values: Mapping[str, Any]) -> dict[str, Any]:
    """Every stored setting, validated, from values keyed by public names (missing ones default).

    Raises:
        ParamError: an unknown name or an invalid value (the message names the field).
    """
    params = ZS2Params.from_dict({key: value for key, value in values.items() if key not in NOT_STORED})
    public = params.to_dict()
    return {name: public[name] for name in STORED}


def load(shipped: Path | None = None, user: Path | None = None) -> Presets:
    """Every preset in ``shipped`` then ``user`` (default: SHIPPED and USER; sorted by file name; a
    user preset replaces a shipped one of the same name). Unreadable or invalid files are skipped
    with a message in ``errors``."""
    found = Presets()
    for folder, is_shipped in ((shipped or SHIPPED, True), (user or USER, False)):
        for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            try:
                preset = read(path, shipped=is_shipped)
            except PresetError as error:
                found.errors.append(str(error))
                continue
            found.by_name[preset.name] = preset
    return found


def read(path: Path, *, shipped: bool = False) -> Preset:
    """The preset stored in ``path``.

    Raises:
        PresetError: the file cannot be read, is not JSON of the expected shape, or holds invalid
            settings; the message names the file and the preset is skipped, the others kept.
    """
    where = f"{PREFIX} preset file {path.name}"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise PresetError(f"{where}: cannot be read ({error.strerror}); skipped") from None
    except UnicodeDecodeError:
        raise PresetError(f"{where}: cannot be read (not UTF-8 text); skipped") from None
    except json.JSONDecodeError as error:
        raise PresetError(f"{where}: is not valid JSON (line {error.lineno}: {error.msg}); skipped") from None
    if not isinstance(data, dict) or not isinstance(data.get("settings"), dict):
        raise PresetError(f'{where}: expected {{"name": ..., "settings": {{...}}}}; skipped')
    name = data.get("name", path.stem)
    try:
        name = check_name(name)
        settings = settings_of(data["settings"])
    except (ParamError, PresetError) as error:
        raise PresetError(f"{where}: {_plain(error)}; skipped") from None
    return Preset(name, path, settings, shipped)


def save(name: str, values: Mapping[str, Any], user: Path | None = None) -> Preset:
    """Store ``values`` (keyed by public names) as the user preset ``name`` in ``user`` (default
    USER), atomically.

    Raises:
        PresetError: the name is not accepted or a value is invalid (nothing is written).
    """
    name = check_name(name)
    try:
        settings = settings_of(values)
    except ParamError as error:
        raise PresetError(f"{PREFIX} preset {name!r} not saved: {_plain(error)}") from None
    path = (user or USER) / f"{slug(name)}.json"
    text = json.dumps({"name": name, "settings": settings}, indent=2, ensure_ascii=False) + "\n"
    write_text(path, text)
    return Preset(name, path, settings, shipped=False)


def check_name(name: object) -> str:
    """``name`` without surrounding spaces, once it is 1 to MAX_NAME letters, digits, spaces, ``._-``."""
    text = name.strip() if isinstance(name, str) else ""
    if not text or len(text) > MAX_NAME or not _NAME.fullmatch(text):
        raise PresetError(
            f"{PREFIX} preset name {name!r}: accepted: 1 to {MAX_NAME} letters, digits, spaces, '.', '_' "
            "or '-', not starting with a space, '.' or '-'"
        )
    return text


def slug(name: str) -> str:
    """The file name stem for a preset name: lower case, spaces as ``-``."""
    return re.sub(r"\s+", "-", name.strip().lower())


def _plain(error: Exception) -> str:
    """An error's message without the leading product prefix (the caller adds its own)."""
    text = str(error)
    return text.removeprefix(f"{PREFIX} ")
