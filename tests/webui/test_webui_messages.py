"""What a user reads when a setting is refused: the control as labelled, its range, no Python class name."""

from __future__ import annotations

import pytest

from tests.webui.webui_client import txt2img_request, zs2_args

MESSAGE = "ZS² Video: Frames (frames): 0 is out of range (accepted range 1 to 4096)"


def test_the_error_box_reads_the_product_name_not_a_python_class():
    pytest.importorskip("fastapi")
    from zs2_lib.webui.errors import RequestError

    error = RequestError(MESSAGE)
    # A1111's UI shows f"{type(e).__name__}: {e}" (modules/call_queue.py, wrap_gradio_call_no_job).
    assert f"{type(error).__name__}: {error}" == MESSAGE
    assert error.detail == MESSAGE  # the API's detail keeps the whole message
    assert error.status_code == 422


def test_the_api_refusal_names_the_control_as_labelled_with_its_range(zs2_server):
    result = zs2_server.txt2img(txt2img_request(zs2_args(frames=0)))
    assert result.status == 422, result.describe()
    assert result.detail == MESSAGE
    assert result.body["error"] == "ZS² Video"  # was "RequestError"

    result = zs2_server.txt2img(txt2img_request(zs2_args(mu=2)))
    assert result.status == 422, result.describe()
    assert result.detail.startswith("ZS² Video: Consistency μ (mu): 2 is out of range")
    assert '"0:0.98, 16:0.9"' in result.detail  # μ's own example, not λ's
    assert "values 0 to 1" in result.detail
