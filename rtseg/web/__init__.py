"""``rtseg web``: the browser app. :mod:`rtseg.web.server` starts it, :mod:`rtseg.web.models` holds
the models every browser session shares, :mod:`rtseg.web.jobs` what one session holds and does, and
:mod:`rtseg.web.app` the page (Gradio, imported only there, so the rest of rtseg runs without it)."""

import os

# Before gradio is imported: no analytics and no version check, the page talks to this machine only.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
