"""Tests for zs2_lib.params: schedules, validation, coercion and the dict and infotext round trips."""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from zs2_lib import noise
from zs2_lib.interpolation import INTERPOLATORS
from zs2_lib.params import (
    ERROR_PREFIX,
    FIELD_BY_NAME,
    FIELDS,
    FORMATS,
    LOOPS,
    NOISE_MODELS,
    SOLVERS,
    STEP_NOISES,
    ParamError,
    Schedule,
    ZS2Params,
    format_number,
)


def parse(value: Any, low: float = 0.0, high: float = 100.0) -> Schedule:
    return Schedule.parse(value, name="lambda", low=low, high=high)


def shown(value: object) -> str:
    """How an error message quotes a bad value."""
    return f'"{value}"' if isinstance(value, str) else repr(value)


def assert_names(
    error: pytest.ExceptionInfo[ParamError], name: str, value: object, *, labelled: bool = True
) -> None:
    message = str(error.value)
    assert message.startswith(ERROR_PREFIX)
    called = f"{FIELD_BY_NAME[name].label} ({name})" if labelled and name in FIELD_BY_NAME else name
    assert f" {called}: " in message  # the label the user sees, then the API name
    assert shown(value) in message


# --- strategies ------------------------------------------------------------------------------------


def finite(low: float, high: float) -> st.SearchStrategy[float]:
    return st.floats(low, high, allow_nan=False, allow_infinity=False)


def schedules(low: float, high: float) -> st.SearchStrategy[Schedule]:
    constant = finite(low, high).map(Schedule.constant)
    keyed = st.dictionaries(st.integers(0, 100_000), finite(low, high), min_size=1, max_size=8).map(
        lambda keys: Schedule(tuple(keys.items()))
    )
    return st.one_of(constant, keyed)


params_strategy = st.builds(
    ZS2Params,
    enabled=st.booleans(),
    frames=st.integers(7, 4096),  # schedules below have up to 8 keyframes: at most frames + 1
    fps=st.floats(0.01, 240),
    lambda_=schedules(0, 100),
    mu=schedules(0, 1),
    noise_model=st.sampled_from(NOISE_MODELS),
    alpha=schedules(0, 1),
    search=st.integers(1, 1000),
    solver=st.sampled_from(SOLVERS),
    debias=st.booleans(),
    formats=st.lists(st.sampled_from(FORMATS), min_size=1, unique=True).map(tuple),
    loop=st.sampled_from(LOOPS),
    chunk=st.integers(1, 4096),
    step_noise=st.sampled_from(STEP_NOISES),
    interpolate=st.sampled_from([1, 2, 4]),
    interpolator=st.sampled_from(INTERPOLATORS),
)


# --- Schedule: parsing -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [("0.01", 0.01), ("1e-3", 0.001), (" 5 ", 5.0), ("+.5", 0.5), ("0", 0.0), ("100", 100.0)],
)
def test_constant_text(text: str, value: float) -> None:
    schedule = parse(text)
    assert schedule.is_constant
    assert schedule.keyframes == ((0, value),)
    assert schedule.at(0) == schedule.at(1000) == value


@pytest.mark.parametrize("value", [0, 7, 0.25, 1e-7])
def test_constant_number(value: float) -> None:
    assert parse(value) == Schedule.constant(value)
    assert parse(value).at(3) == value


def test_keyframes() -> None:
    schedule = parse("0:0.01, 16:0.05, 32:0.2")
    assert schedule.keyframes == ((0, 0.01), (16, 0.05), (32, 0.2))
    assert not schedule.is_constant
    assert str(schedule) == "0:0.01, 16:0.05, 32:0.2"


def test_keyframes_are_sorted() -> None:
    assert parse("32:0.2, 0:0.01, 16:0.05") == parse("0:0.01, 16:0.05, 32:0.2")


def test_whitespace_and_trailing_comma() -> None:
    assert parse("  0 : 0.01 ,16:0.05 ,\t32:\n0.2, ") == parse("0:0.01, 16:0.05, 32:0.2")


def test_equal_values_collapse_to_a_constant() -> None:
    schedule = parse("0:0.5, 8:0.5, 30:0.5")
    assert schedule.is_constant
    assert schedule == Schedule.constant(0.5)
    assert str(schedule) == "0.5"
    assert parse("12:0.5") == Schedule.constant(0.5)


def test_negative_zero_is_zero() -> None:
    assert str(parse("-0.0")) == "0"


def test_parse_checks_the_range_of_a_schedule() -> None:
    schedule = parse("0:0.5, 4:2")
    assert Schedule.parse(schedule, name="x", low=0, high=2) == schedule
    with pytest.raises(ParamError, match="mu: "):
        Schedule.parse(schedule, name="mu", low=0, high=1)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "abc",
        "0:",
        ":1",
        "1:2:3",
        "-1:0.5",
        "0:0.1,,4:0.2",
        "0:0.1 4:0.2",
        "0.1,",
        "1.5:0.1",
        "nan",
        "inf",
        "-inf",
        "1_0",
        "0x10",
        "1e999",
        "0:1e999",
        "0:0.1, 0:0.2",
        "4:0.1, 0:0.3, 4:0.2",
        "101",
        "-0.1",
        "0:0.1, 8:100.5",
        math.nan,
        math.inf,
        -1,
        1000,
        True,
        None,
        [0.1],
    ],
)
def test_invalid_schedules(value: object) -> None:
    with pytest.raises(ParamError) as error:
        parse(value)
    assert_names(error, "lambda", value, labelled=False)  # Schedule.parse names it as it is told
    assert "0 to 100" in str(error.value)


def test_schedule_error_matches_the_documented_form() -> None:
    with pytest.raises(ParamError) as error:
        parse("abc")
    assert str(error.value) == (
        'ZS² Video: lambda: "abc" is not a number or a keyframe list '
        '(accepted: a number or keyframes like "0:0.01, 16:0.05", values 0 to 100)'
    )


def test_errors_name_the_control_as_labelled_with_its_own_example_and_range() -> None:
    with pytest.raises(ParamError) as error:
        ZS2Params(mu=2)
    assert str(error.value) == (
        "ZS² Video: Consistency μ (mu): 2 is out of range "
        '(accepted: a number or keyframes like "0:0.98, 16:0.9", values 0 to 1)'
    )
    with pytest.raises(ParamError) as error:
        ZS2Params(frames=0)
    assert str(error.value) == "ZS² Video: Frames (frames): 0 is out of range (accepted range 1 to 4096)"
    assert "Error" not in str(error.value)


def test_schedule_error_names_the_bad_keyframe() -> None:
    with pytest.raises(ParamError, match="out of range at frame 8"):
        Schedule.parse("0:0.5, 8:1.5", name="mu", low=0, high=1)
    with pytest.raises(ParamError, match="frame 4 more than once"):
        parse("4:0.1, 4:0.2")


def test_direct_construction_is_checked() -> None:
    for keyframes in [(), ((0, math.nan),), ((-1, 0.5),), ((2, 0.1), (2, 0.2))]:
        with pytest.raises(ParamError):
            Schedule(keyframes)


# --- Schedule: values ------------------------------------------------------------------------------


def test_interpolation() -> None:
    schedule = parse("4:1, 8:3, 12:0")
    assert schedule.at(0) == 1.0  # before the first keyframe: the first value holds
    assert schedule.at(4) == 1.0
    assert schedule.at(6) == 2.0
    assert schedule.at(8) == 3.0
    assert schedule.at(11) == 0.75
    assert schedule.at(12) == 0.0
    assert schedule.at(10_000) == 0.0  # after the last: the last value holds
    assert schedule.values(3, 7) == [1.0, 1.0, 1.5, 2.0, 2.5, 3.0, 2.25]
    assert schedule.values(5, 0) == []


def test_values_reject_negative_frames_and_counts() -> None:
    schedule = parse("0.5")
    with pytest.raises(ValueError, match="frame"):
        schedule.at(-1)
    with pytest.raises(ValueError, match="count"):
        schedule.values(0, -1)


@given(schedules(0, 100), st.integers(0, 200_000))
def test_values_stay_between_neighbouring_keyframes(schedule: Schedule, frame: int) -> None:
    value = schedule.at(frame)
    frames = [key for key, _ in schedule.keyframes]
    before = [v for f, v in schedule.keyframes if f <= frame] or [schedule.keyframes[0][1]]
    after = [v for f, v in schedule.keyframes if f >= frame] or [schedule.keyframes[-1][1]]
    assert min(before[-1], after[0]) <= value <= max(before[-1], after[0])
    if frame in frames:
        assert value == dict(schedule.keyframes)[frame]


@given(schedules(0, 100), st.integers(0, 1000), st.integers(0, 50))
def test_values_match_at(schedule: Schedule, start: int, count: int) -> None:
    assert schedule.values(start, count) == [schedule.at(start + k) for k in range(count)]


@given(schedules(0, 100))
def test_schedule_text_round_trip(schedule: Schedule) -> None:
    text = str(schedule)
    assert parse(text) == schedule
    assert str(parse(text)) == text
    assert ";" not in text
    assert "=" not in text


@given(finite(-1e308, 1e308))
def test_format_number_round_trips(value: float) -> None:
    text = format_number(value)
    assert float(text) == value
    assert not text.endswith(".0")


def test_format_number_examples() -> None:
    assert [format_number(v) for v in (0.01, 8.0, 100, 1e-7, 2.5)] == ["0.01", "8", "100", "1e-07", "2.5"]


# --- ZS2Params: defaults, fields, immutability -----------------------------------------------------


def test_defaults() -> None:
    params = ZS2Params()
    assert params.to_dict() == {
        "enabled": False,
        "frames": 16,
        "fps": 8.0,
        "lambda": "0.01",
        "mu": "0.98",
        "noise_model": "dependency",
        "alpha": "0.9",
        "search": 10,
        "solver": "exact",
        "debias": True,
        "formats": ["mp4", "gif"],
        "loop": "loop",
        "chunk": 16,
        "step_noise": "dependent",
        "video": "",
        "video_start": 0,
        "video_frames": 0,
        "video_step": 1,
        "keep_audio": True,
        "init_encoding": "sample",
        "control_video": None,
        "control_videos": None,
        "hold_last": False,
        "control_momentum": False,
        "mask_video": "",
        "interpolate": 1,
        "interpolator": "opencv",
        "target_fps": 0.0,
    }
    assert params.lambda_ == Schedule.constant(0.01)
    assert params.formats == ("mp4", "gif")


def test_fields_cover_exactly_the_dataclass_fields() -> None:
    assert [spec.attribute for spec in FIELDS] == [field.name for field in dataclasses.fields(ZS2Params)]
    assert len({spec.name for spec in FIELDS}) == len(FIELDS)
    assert list(FIELD_BY_NAME) == [spec.name for spec in FIELDS]
    for spec in FIELDS:
        assert spec.label
        assert spec.help
        assert spec.to_public(spec.parse(spec.default)) == ZS2Params().to_dict()[spec.name]
        if spec.kind in ("int", "float", "schedule"):
            assert spec.low is not None
            assert spec.high is not None
        if spec.kind in ("choice", "formats"):
            assert spec.choices


def test_every_noise_model_and_solver_offered_runs_in_the_noise_module() -> None:
    """The choices the UI and API offer are the ones ``zs2_lib.noise`` runs, each of them."""
    assert FIELD_BY_NAME["noise_model"].choices == NOISE_MODELS == tuple(noise.MODELS)
    assert FIELD_BY_NAME["solver"].choices == SOLVERS == noise.SOLVERS
    draws = torch.randn(10, 3, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    for model in FIELD_BY_NAME["noise_model"].choices:
        chain = noise.noise_chain(model, draws[: noise.draws_needed(model, 10)], 0.1)
        assert chain.noise.shape == (3, 4, 8, 8), model
    for solver in FIELD_BY_NAME["solver"].choices:
        chain = noise.noise_chain("dependency", draws, 0.1, solver=solver)
        # near λ (the paper's line search misses it by ~15 % on 4x8x8 latents); independent frames: ~1.6
        assert abs(float(noise.criterion(chain.noise[1], chain.noise[0])) - 0.1) < 0.05, solver


def test_immutable() -> None:
    params = ZS2Params()
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.frames = 3  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.lambda_.keyframes = ()  # type: ignore[misc]


def test_replace_validates() -> None:
    with pytest.raises(ParamError, match="frames"):
        dataclasses.replace(ZS2Params(), frames=0)


def test_construction_coerces() -> None:
    params = ZS2Params(frames="24", lambda_="0:0.01, 16:0.05", formats="GIF,mp4")  # type: ignore[arg-type]
    assert params.frames == 24
    assert params.lambda_ == Schedule(((0, 0.01), (16, 0.05)))
    assert params.formats == ("gif", "mp4")


def test_per_frame_helpers() -> None:
    params = ZS2Params.from_dict({"lambda": "0:0, 4:0.4", "mu": "0:1, 2:0", "alpha": 0.5})
    assert params.lambdas(2, 4) == pytest.approx([0.2, 0.3, 0.4, 0.4])
    assert params.mus(0, 3) == [1.0, 0.5, 0.0]
    assert params.alphas(7, 2) == [0.5, 0.5]


# --- ZS2Params: coercion ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        ("true", True),
        ("FALSE", False),
        ("1", True),
        ("0", False),
        ("Yes", True),
        ("no", False),
        (" on ", True),
        ("Off", False),
    ],
)
def test_bool_coercion(value: object, expected: bool) -> None:
    assert ZS2Params.from_dict({"enabled": value}).enabled is expected
    assert ZS2Params.from_dict({"debias": value}).debias is expected


@pytest.mark.parametrize(
    ("value", "expected"), [(16, 16), (16.0, 16), ("16", 16), (" 32 ", 32), ("16.0", 16), ("1e3", 1000)]
)
def test_int_coercion(value: object, expected: int) -> None:
    frames = ZS2Params.from_dict({"frames": value}).frames
    assert frames == expected
    assert type(frames) is int


@pytest.mark.parametrize(("value", "expected"), [(12, 12.0), (12.5, 12.5), ("12.5", 12.5), ("1e1", 10.0)])
def test_float_coercion(value: object, expected: float) -> None:
    fps = ZS2Params.from_dict({"fps": value}).fps
    assert fps == expected
    assert type(fps) is float


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("mp4, gif", ("mp4", "gif")),
        ("GIF,MP4", ("gif", "mp4")),
        ("webp, png, webp, ", ("webp", "png")),
        (["mp4", "WebM", "mp4"], ("mp4", "webm")),
        (("png",), ("png",)),
        (" gif ", ("gif",)),
    ],
)
def test_formats_normalisation(value: object, expected: tuple[str, ...]) -> None:
    assert ZS2Params.from_dict({"formats": value}).formats == expected


def test_choices_are_case_insensitive() -> None:
    params = ZS2Params.from_dict({"noise_model": " Mixed ", "solver": "PAPER", "loop": "PingPong"})
    assert (params.noise_model, params.solver, params.loop) == ("mixed", "paper", "pingpong")


def test_schedule_fields_accept_numbers_and_text() -> None:
    params = ZS2Params.from_dict({"lambda": 0.05, "mu": "0:0.9, 8:0.5", "alpha": 1})
    assert params.lambda_ == Schedule.constant(0.05)
    assert params.mu == Schedule(((0, 0.9), (8, 0.5)))
    assert params.alpha == Schedule.constant(1.0)


def test_missing_keys_keep_defaults() -> None:
    assert ZS2Params.from_dict({}) == ZS2Params()
    assert ZS2Params.from_dict({"frames": 40}) == dataclasses.replace(ZS2Params(), frames=40)


BAD_VALUES: dict[str, list[object]] = {
    "enabled": ["maybe", "", "2", 1, 0, 1.0, None, [True]],
    "debias": ["sometimes", "y", 1],
    "frames": [0, -1, 4097, 16.5, "16.5", True, False, "abc", "", None, math.nan, math.inf, 1e300],
    "fps": [0, 0.0, -1, 240.5, "241", True, "fast", "", None, math.nan, math.inf, "nan", 10**20],
    "lambda": ["abc", "0:", ":1", "1:2:3", "-1:0.5", "", "nan", 100.5, -0.01, "0:0.1, 0:0.2", True],
    "mu": [1.5, -0.01, "0:0.5, 8:1.5", "0.5;", "mu=1", None],
    "alpha": [1.1, "x", math.nan, False],
    "search": [0, 1001, 2.5, True, "ten", None],
    "noise_model": ["foo", "", None, 1, "dependency;"],
    "solver": ["fast", None, "exact=1"],
    "loop": ["bounce", None, 0],
    "chunk": [0, 4097, "x", 1.5, None],
    "step_noise": ["correlated", None, 1],
    "formats": ["", " , ", "avi", "mp4, avi", "mp4;gif", [], ["mp4", 3], None, 42, {"mp4"}],
    "video": [3, b"clip.mp4", ["a.mp4"], True],
    "video_start": [-1, 10_000_001, 1.5, "x", None],
    "video_frames": [-1, 4097, 2.5, None],
    "video_step": [0, 1001, "two", None],
    "keep_audio": ["perhaps", 1, None],
    "init_encoding": ["mode", "", None],
    "control_video": [42, True, ["frame", ""], ["frame", None], {"a": 1}, []],
    "control_videos": [42, "[1, 2]", "not json", [42], [["frame", 3]], {"a": 1}],
    "hold_last": ["perhaps", 2, None],
    "control_momentum": ["sure", 3, None],
    "mask_video": [3, b"masks.mp4", ["a.mp4"], True],
    "interpolate": [0, 3, 8, 2.5, "x", True, None],
    "interpolator": ["film", "", None, 1],
    "target_fps": [-1, 241, "fast", None, True, float("nan")],
}
INVALID = [(name, value) for name, values in BAD_VALUES.items() for value in values]


def test_every_field_has_bad_values() -> None:
    assert set(BAD_VALUES) == set(FIELD_BY_NAME)


@pytest.mark.parametrize(("name", "value"), INVALID)
def test_invalid_values(name: str, value: object) -> None:
    with pytest.raises(ParamError) as error:
        ZS2Params.from_dict({name: value})
    assert_names(error, name, value)
    with pytest.raises(ParamError) as error:
        ZS2Params(**{FIELD_BY_NAME[name].attribute: value})
    assert_names(error, name, value)


@pytest.mark.parametrize(
    ("name", "value", "accepted"),
    [
        ("frames", 0, "accepted range 1 to 4096"),
        ("fps", 0.001, "accepted range 0.01 to 240"),
        ("search", 1001, "accepted range 1 to 1000"),
        ("mu", 2, "values 0 to 1"),
        ("noise_model", "foo", "dependency, mixed, progressive, independent"),
        ("solver", "x", "exact, paper"),
        ("loop", "x", "loop, once, pingpong"),
        ("formats", "avi", "mp4, webm, gif, webp, png"),
        ("enabled", "x", "true/false"),
    ],
)
def test_errors_state_what_is_accepted(name: str, value: object, accepted: str) -> None:
    with pytest.raises(ParamError, match=accepted):
        ZS2Params.from_dict({name: value})


def test_huge_numbers_are_out_of_range() -> None:
    with pytest.raises(ParamError, match=r"FPS \(fps\): .* is out of range"):
        ZS2Params.from_dict({"fps": 10**400})
    with pytest.raises(ParamError, match=r"Frames \(frames\): .* is out of range"):
        ZS2Params.from_dict({"frames": "9" * 1000})


def test_long_bad_values_are_shortened() -> None:
    with pytest.raises(ParamError) as error:
        ZS2Params.from_dict({"loop": "x" * 10_000})
    assert len(str(error.value)) < 300


def test_unknown_keys() -> None:
    with pytest.raises(ParamError) as error:
        ZS2Params.from_dict({"frames": 8, "lambda_": 0.1, "speed": 2})
    message = str(error.value)
    assert message.startswith(ERROR_PREFIX)
    assert '"lambda_"' in message
    assert '"speed"' in message
    for spec in FIELDS:
        assert spec.name in message


def test_from_dict_needs_a_mapping() -> None:
    with pytest.raises(ParamError, match="parameters"):
        ZS2Params.from_dict([("frames", 8)])  # type: ignore[arg-type]


def test_param_error_is_a_value_error() -> None:
    assert issubclass(ParamError, ValueError)


# --- ZS2Params: round trips ------------------------------------------------------------------------


def test_infotext_example() -> None:
    params = ZS2Params(enabled=True, lambda_=parse("0:0.01, 16:0.05"))
    assert params.to_infotext() == (
        "frames=16; fps=8; lambda=0:0.01, 16:0.05; mu=0.98; noise_model=dependency; alpha=0.9; "
        "search=10; solver=exact; debias=true; formats=mp4,gif; loop=loop; chunk=16; step_noise=dependent; "
        "video=; video_start=0; video_frames=0; video_step=1; keep_audio=true; init_encoding=sample; "
        "hold_last=false; control_momentum=false; mask_video=; interpolate=1; interpolator=opencv; "
        "target_fps=0"
    )


@given(params_strategy)
def test_dict_round_trip(params: ZS2Params) -> None:
    data = params.to_dict()
    assert ZS2Params.from_dict(data) == params
    assert ZS2Params.from_dict(json.loads(json.dumps(data))) == params


@given(params_strategy)
def test_infotext_round_trip(params: ZS2Params) -> None:
    text = params.to_infotext()
    assert ZS2Params.from_infotext(text) == dataclasses.replace(params, enabled=True)
    assert "enabled" not in text
    items = text.split("; ")
    assert [item.split("=")[0] for item in items] == [spec.name for spec in FIELDS if spec.in_infotext]
    assert all(item.count("=") == 1 for item in items)


def test_the_infotext_records_a_video_sources_name_never_its_data_and_reads_none_back() -> None:
    data = "QUJD" * 1000
    assert "video=base64 video;" in ZS2Params(video=data).to_infotext()
    text = ZS2Params(video="/srv/clips/my;clip=1.mp4", video_start=3).to_infotext()
    assert "video=my_clip_1.mp4; video_start=3;" in text
    assert ZS2Params.from_infotext(text) == ZS2Params(enabled=True, video_start=3)


def test_infotext_ignores_unknown_keys_and_enabled() -> None:
    text = "frames=24; future_knob=3; enabled=false; fps=12; "
    assert ZS2Params.from_infotext(text) == ZS2Params(enabled=True, frames=24, fps=12.0)


def test_infotext_tolerates_spacing_and_missing_keys() -> None:
    assert ZS2Params.from_infotext(" frames = 24 ;mu=0:0.9, 8:0.5") == ZS2Params(
        enabled=True, frames=24, mu=parse("0:0.9, 8:0.5", high=1)
    )
    assert ZS2Params.from_infotext("") == ZS2Params(enabled=True)


@pytest.mark.parametrize(
    ("text", "name", "value"),
    [
        ("frames=0", "frames", "0"),
        ("fps=fast", "fps", "fast"),
        ("lambda=0:", "lambda", "0:"),
        ("formats=avi", "formats", "avi"),
        ("frames=16; nonsense", "infotext", "nonsense"),
    ],
)
def test_infotext_bad_values(text: str, name: str, value: str) -> None:
    with pytest.raises(ParamError) as error:
        ZS2Params.from_infotext(text)
    assert_names(error, name, value)


def test_infotext_needs_text() -> None:
    with pytest.raises(ParamError, match="infotext"):
        ZS2Params.from_infotext(None)  # type: ignore[arg-type]
