"""ZS² Video for AUTOMATIC1111: tick "ZS² Video" in txt2img and the batch becomes a video.

Thin glue: every hook forwards to ``zs2_lib.webui.glue``; the method lives in ``zs2_lib``.
"""

from modules import scripts

from zs2_lib.webui import glue, runtime, ui


class ZS2VideoScript(scripts.Script):
    """The always-visible "ZS² Video" accordion in txt2img."""

    def title(self):
        return "ZS2 Video"

    def show(self, is_img2img):
        return False if is_img2img else scripts.AlwaysVisible

    def ui(self, is_img2img):
        return ui.build(self)

    def before_process(self, p, *args):
        glue.before_process(p, args)

    def process(self, p, *args):
        glue.process(p)

    def process_before_every_sampling(self, p, *args, **kwargs):
        glue.process_before_every_sampling(p, kwargs["noise"])

    def process_batch(self, p, *args, **kwargs):
        glue.process_batch(p, kwargs["batch_number"])

    def postprocess_image_after_composite(self, p, pp, *args):
        glue.capture_frame(p, pp.image)

    def postprocess(self, p, processed, *args):
        glue.postprocess(p, processed)


runtime.register_callbacks()
