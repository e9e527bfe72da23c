"""A test-only A1111 extension script: make the UNet raise mid-sampling, and count hooks.

The host-tier fixtures copy this file to ``<data-dir>/extensions/zs2-fault-injector/scripts/fault.py``
of the ``zs2`` test server. It is not part of ZS² Video and is never imported by the tests.

* "ZS2 Fault Injector" is an AlwaysVisible script with three API args: ``enabled`` (a checkbox),
  the 1-based UNet call that raises (default 2, i.e. sampling step 2 with batched cond/uncond) and
  ``trace``. When enabled or tracing, ``process`` registers a forward pre-hook on
  ``shared.sd_model.model.diffusion_model`` that records each call's batch rows and input channels
  (``last_rows``, ``last_channels``) and, when enabled,
  raises ``RuntimeError`` on that call. The hook removes itself in ``postprocess`` and in a wrapped
  ``p.close`` (A1111's ``closing(p)`` calls it after exceptions too); ``close_calls`` counts how
  often that wrapper ran, i.e. whether another script dropped it. While tracing, a global forward
  pre-hook also records each call of any UNet (``UNetModel``) as ``[id of the UNet object, forward
  pre-hooks on its attn1 modules]`` in ``unet_calls``, so a test can see which UNet object sampled
  (a refiner swaps it) and whether ZS² hooks sat on that very object; it goes with the UNet hook.
* In a Forge, the UNet is ``sd_model.forge_objects.unet.model.diffusion_model``, and a fourth arg,
  ``replace_attn1``, registers an attn1 replacement on the middle block for that generation (as
  Forge's Self-Attention Guidance does) in ``process_before_every_sampling``; each call also
  records its ``cond_or_uncond`` (``last_chunks``).
* ``GET /zs2-fault/hooks`` reports how many forward (pre-)hooks sit on the current UNet and its
  submodules, the global module hooks, the CFG denoiser callbacks, the current UNet's ``id``
  (``unet_id``) and the injector's own state, so a test can see directly whether anything was left
  behind after a failed or interrupted run.
"""

import gradio as gr
import torch
from modules import script_callbacks, scripts, shared

TITLE = "ZS2 Fault Injector"
UNET_CLASSES = ("UNetModel", "IntegratedUNet2DConditionModel")  # ldm/sgm and Forge Classic; Forge main
MESSAGE = "ZS2 Fault Injector: injected failure at UNet call"

_state = {
    "handle": None,
    "global_handle": None,
    "armed": 0,
    "raised": 0,
    "removed_in_postprocess": 0,
    "removed_in_close": 0,
    "close_calls": 0,
    "last_rows": [],
    "last_channels": [],
    "last_chunks": [],
    "unet_calls": [],
}


def _unet():
    forge = getattr(shared.sd_model, "forge_objects", None)  # Forge main and Forge Classic
    return forge.unet.model.diffusion_model if forge is not None else shared.sd_model.model.diffusion_model


def _attn1_pre_hooks(unet):
    return sum(len(m._forward_pre_hooks) for name, m in unet.named_modules() if name.endswith("attn1"))


def _remove_hook():
    global_handle = _state["global_handle"]
    if global_handle is not None:
        global_handle.remove()
        _state["global_handle"] = None
    handle = _state["handle"]
    if handle is None:
        return False
    handle.remove()
    _state["handle"] = None
    return True


class ZS2FaultInjector(scripts.Script):
    def title(self):
        return TITLE

    def show(self, is_img2img):
        return scripts.AlwaysVisible

    def ui(self, is_img2img):
        enabled = gr.Checkbox(value=False, label="Raise in the UNet", elem_id=self.elem_id("enabled"))
        at_call = gr.Number(value=2, precision=0, label="Raise on UNet call", elem_id=self.elem_id("at_call"))
        trace = gr.Checkbox(value=False, label="Record UNet calls", elem_id=self.elem_id("trace"))
        replace = gr.Checkbox(value=False, label="Replace attn1 (Forge)", elem_id=self.elem_id("replace"))
        return [enabled, at_call, trace, replace]

    def process_before_every_sampling(
        self, p, enabled=False, at_call=2, trace=False, replace=False, *args, **kwargs
    ):
        if replace:
            unet = p.sd_model.forge_objects.unet.clone()
            unet.set_model_attn1_replace(_plain_attention, "middle", 0, 0)
            p.sd_model.forge_objects.unet = unet

    def process(self, p, enabled=False, at_call=2, trace=False, *args):
        if not (enabled or trace):
            return
        _remove_hook()
        limit = int(at_call or 2) if enabled else 0
        rows, channels, chunks = [], [], []
        _state["last_rows"] = rows
        _state["last_channels"] = channels
        _state["last_chunks"] = chunks
        unet_calls = []
        _state["unet_calls"] = unet_calls

        def hook(module, inputs, kwargs):
            x = inputs[0] if inputs else kwargs.get("x")
            rows.append(int(x.shape[0]) if x is not None else -1)
            channels.append(int(x.shape[1]) if x is not None else -1)
            chunks.append(list((kwargs.get("transformer_options") or {}).get("cond_or_uncond") or []))
            if len(rows) == limit:
                _state["raised"] += 1
                raise RuntimeError(f"{MESSAGE} {limit}")

        def record_unet_call(module, inputs):
            if type(module).__name__ in UNET_CLASSES:
                unet_calls.append([id(module), _attn1_pre_hooks(module)])

        _state["handle"] = _unet().register_forward_pre_hook(hook, with_kwargs=True)
        if trace:
            _state["global_handle"] = torch.nn.modules.module.register_module_forward_pre_hook(
                record_unet_call
            )
        _state["armed"] += 1
        original_close = p.close

        def close(*a, **k):
            _state["close_calls"] += 1
            if _remove_hook():
                _state["removed_in_close"] += 1
            return original_close(*a, **k)

        p.close = close
        print(f"{TITLE}: armed (raise on UNet call {limit or 'none'}, trace {bool(trace)})")

    def postprocess(self, p, processed, *args):
        if _remove_hook():
            _state["removed_in_postprocess"] += 1


def _plain_attention(q, k, v, extra_options):
    """Self-attention of Forge's projected q, k, v ([batch, tokens, heads * dim]), as attn1 computes it."""
    heads = extra_options["n_heads"]
    b, tokens, inner = q.shape
    q, k, v = (t.reshape(b, -1, heads, inner // heads).transpose(1, 2) for t in (q, k, v))
    out = torch.nn.functional.scaled_dot_product_attention(q, k, v)
    return out.transpose(1, 2).reshape(b, tokens, inner)


def _hook_report():
    unet = _unet()
    modules = list(unet.modules())
    return {
        "unet_forward_pre_hooks": len(unet._forward_pre_hooks),
        "unet_forward_hooks": len(unet._forward_hooks),
        "module_forward_pre_hooks": sum(len(m._forward_pre_hooks) for m in modules),
        "module_forward_hooks": sum(len(m._forward_hooks) for m in modules),
        "global_forward_pre_hooks": len(torch.nn.modules.module._global_forward_pre_hooks),
        "global_forward_hooks": len(torch.nn.modules.module._global_forward_hooks),
        "cfg_denoiser_callbacks": len(script_callbacks.callback_map["callbacks_cfg_denoiser"]),
        "cfg_denoised_callbacks": len(script_callbacks.callback_map["callbacks_cfg_denoised"]),
        "unet_id": id(unet),
        "injector_hook_present": _state["handle"] is not None or _state["global_handle"] is not None,
        "injector": {k: v for k, v in _state.items() if k not in ("handle", "global_handle")},
    }


def _on_app_started(demo, app):
    app.add_api_route("/zs2-fault/hooks", _hook_report, methods=["GET"])


script_callbacks.on_app_started(_on_app_started)
