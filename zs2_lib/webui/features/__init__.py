"""A run's features, one module each; :func:`zs2_lib.webui.dispatch.video_features` lists them in order."""
