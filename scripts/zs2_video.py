"""ZS² Video for AUTOMATIC1111: tick "ZS² Video" and the batch becomes the frames of a video.

Thin glue: every hook forwards to ``zs2_lib.webui.dispatch``; the method lives in ``zs2_lib``.
"""

from modules import scripts

from zs2_lib.names import SCRIPT_TITLE, console
from zs2_lib.webui import compat, dispatch, ui

PROBLEM = compat.host_problem()

if PROBLEM:
    console(PROBLEM)
else:

    class ZS2VideoScript(scripts.Script):
        """The always-visible "ZS² Video" accordion in txt2img and img2img."""

        def title(self):
            return SCRIPT_TITLE

        def show(self, is_img2img):
            return scripts.AlwaysVisible

        def ui(self, is_img2img):
            return ui.build(self)

        def before_process(self, p, *args):
            dispatch.before_process(p, args)

        def process(self, p, *args):
            dispatch.process(p)

        def process_before_every_sampling(self, p, *args, **kwargs):
            dispatch.process_before_every_sampling(p, kwargs["noise"])

        def process_batch(self, p, *args, **kwargs):
            dispatch.process_batch(p, kwargs["batch_number"])

        def postprocess_image_after_composite(self, p, pp, *args):
            dispatch.capture_frame(p, pp.image)

        def postprocess(self, p, processed, *args):
            dispatch.postprocess(p, processed)

    dispatch.register_callbacks()
