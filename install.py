"""Run by A1111 when the extension is installed: add only what A1111 lacks, once.

ZS² Video needs imageio and imageio-ffmpeg (an ffmpeg binary in a wheel) to write MP4 and WebM;
GIF, WebP and PNG use Pillow, which A1111 already has. torch, gradio and einops are A1111's and are
never touched. Running it again installs nothing.
"""

import launch

REQUIREMENTS = (("imageio", "imageio>=2.28"), ("imageio-ffmpeg", "imageio-ffmpeg>=0.4.9"))

for distribution, requirement in REQUIREMENTS:
    if not launch.is_installed(distribution):
        launch.run_pip(f'install "{requirement}"', f"{requirement} for ZS² Video")
