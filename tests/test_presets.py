"""Presets: shipped ones load, saving round-trips, a corrupt file is named and the others kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from zs2_lib import presets
from zs2_lib.params import ZS2Params
from zs2_lib.presets import NOT_STORED, STORED, PresetError, load, save


def test_the_shipped_presets_load_and_differ_from_the_defaults() -> None:
    found = load(user=Path("/nonexistent"))

    assert found.errors == []
    assert set(found.names) >= {"subtle", "lively", "loop"}
    defaults = ZS2Params().to_dict()
    for preset in found.by_name.values():
        assert preset.shipped
        assert list(preset.settings) == list(STORED)
        assert any(preset.settings[name] != defaults[name] for name in STORED), preset.name
    assert found.by_name["loop"].settings["loop"] == "pingpong"
    assert float(found.by_name["subtle"].settings["lambda"]) < float(
        found.by_name["lively"].settings["lambda"]
    )


def test_a_saved_preset_round_trips(tmp_path: Path) -> None:
    values = {**ZS2Params().to_dict(), "frames": 24, "lambda": "0:0.01, 16:0.05", "formats": ["webm", "png"]}
    values |= {"interpolate": 4, "enabled": True, "video": "/clip.mp4"}
    saved = save("My clip", values, user=tmp_path)

    assert saved.path == tmp_path / "my-clip.json"
    assert [p.name for p in tmp_path.iterdir()] == ["my-clip.json"]  # no temporary left behind
    loaded = load(shipped=tmp_path / "none", user=tmp_path).by_name["My clip"]
    assert loaded.settings == saved.settings
    assert loaded.settings["frames"] == 24
    assert loaded.settings["lambda"] == "0:0.01, 16:0.05"
    assert loaded.settings["formats"] == ["webm", "png"]
    assert loaded.settings["interpolate"] == 4
    assert not set(NOT_STORED) & set(loaded.settings)  # a run's inputs are not part of a preset
    assert ZS2Params.from_dict(loaded.settings) == ZS2Params.from_dict(
        {k: v for k, v in values.items() if k not in NOT_STORED}
    )


def test_a_user_preset_replaces_a_shipped_one_of_the_same_name(tmp_path: Path) -> None:
    save("lively", {"lambda": 0.3}, user=tmp_path)
    found = load(user=tmp_path)
    assert found.by_name["lively"].settings["lambda"] == "0.3"
    assert not found.by_name["lively"].shipped


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("{not json", "is not valid JSON (line 1"),
        ('["frames", 16]', 'expected {"name": ..., "settings": {...}}'),
        (
            '{"name": "bad", "settings": {"frames": 0}}',
            "Frames (frames): 0 is out of range (accepted range 1 to 4096)",
        ),
        ('{"name": "bad", "settings": {"speed": 2}}', 'unknown name "speed"'),
        ('{"name": "", "settings": {}}', "preset name '': accepted: 1 to 64 letters"),
    ],
)
def test_a_corrupt_preset_file_gives_a_clear_message_and_keeps_the_others(
    tmp_path: Path, content: str, reason: str
) -> None:
    save("good", {"frames": 12}, user=tmp_path)
    (tmp_path / "broken.json").write_text(content, encoding="utf-8")

    found = load(shipped=tmp_path / "none", user=tmp_path)

    assert found.names == ["good"]
    assert found.by_name["good"].settings["frames"] == 12
    assert len(found.errors) == 1
    assert found.errors[0].startswith("ZS² Video: preset file broken.json: ")
    assert reason in found.errors[0]
    assert found.errors[0].endswith("; skipped")
    assert "Error" not in found.errors[0]  # no Python class name


def test_an_unreadable_preset_file_is_reported_not_raised(tmp_path: Path) -> None:
    (tmp_path / "binary.json").write_bytes(b"\xff\xfe\x00")
    found = load(shipped=tmp_path / "none", user=tmp_path)
    assert found.names == []
    assert found.errors[0].startswith("ZS² Video: preset file binary.json: cannot be read")


@pytest.mark.parametrize("name", ["", "   ", "../up", "a/b", ".hidden", "x" * 65, None])
def test_a_bad_preset_name_is_refused_and_nothing_is_written(tmp_path: Path, name: object) -> None:
    with pytest.raises(PresetError, match=r"preset name .*accepted: 1 to 64"):
        save(name, {}, user=tmp_path)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_invalid_settings_are_refused_by_name_and_nothing_is_written(tmp_path: Path) -> None:
    message = r"preset 'x' not saved: Consistency μ \(mu\): 2 is out of range \(accepted: .*0 to 1\)"
    with pytest.raises(PresetError, match=message):
        save("x", {"mu": 2}, user=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_the_shipped_files_are_the_ones_in_the_repository() -> None:
    assert presets.SHIPPED.is_dir()
    for path in presets.SHIPPED.glob("*.json"):
        data = json.loads(path.read_text(encoding="utf-8"))
        assert presets.slug(data["name"]) == path.stem
