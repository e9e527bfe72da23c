"""ZS² Video core: zero-shot video sampling from image diffusion models (host-free).

Implements "ZS²: Zero-Shot Video Sampling from Image": the dependency noise model (§3),
temporal momentum attention (§4, Eq. 2) and everything around them that does not need a host:
validated parameters, per-frame schedules and video files. Nothing in this package outside
``zs2_lib.webui`` imports A1111 (``modules``), ``ldm``, ``sgm``, ``gradio`` or ``launch``.
"""

__version__ = "0.1.0"
