"""The A1111 side of ZS² Video: the only package that imports ``modules`` and gradio."""
