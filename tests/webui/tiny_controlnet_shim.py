"""Test-only A1111 extension script: lets sd-webui-controlnet load the project's tiny ControlNet.

sd-webui-controlnet builds every SD1 ControlNet with 320 model channels (its hard-coded default
config) and reads no config file, so a 32-channel ControlNet fails to load, and A1111 swallows that
error: the request answers 200 with images identical to no unit. This wraps the constructor of its
``PlugableControlModel`` so that the model channels come from the weights
(``input_blocks.0.0.weight``) whenever they differ; 320-channel models load exactly as before. The
host-tier conftest installs it next to ControlNet; never install it for real use.
"""

import sys

from modules import script_callbacks

MARK = "_zs2_tiny_channels"


def wrap_constructor() -> bool:
    """Wrap the constructor once ControlNet's ``scripts.cldm`` is loaded; whether it is wrapped."""
    cldm = sys.modules.get("scripts.cldm")
    if cldm is None:
        return False
    model = cldm.PlugableControlModel
    if getattr(model, MARK, False):
        return True
    original = model.__init__

    def construct(self, config, state_dict=None):
        first = None if state_dict is None else state_dict.get("input_blocks.0.0.weight")
        if first is not None and isinstance(config, dict) and config.get("model_channels") != first.shape[0]:
            config = {**config, "model_channels": int(first.shape[0])}
        original(self, config, state_dict)

    model.__init__ = construct
    setattr(model, MARK, True)
    print("zs2 tiny ControlNet shim: model channels from the weights")
    return True


if not wrap_constructor():
    script_callbacks.on_app_started(lambda *args: wrap_constructor())
