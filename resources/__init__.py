"""facesketch's shipped data, installed as the package ``facesketch_resources``.

``weights/`` (fp16 safetensors, JSON manifests, model cards) and ``samples/`` (reference
photos and the demo project); ``pyproject.toml`` maps this folder into the wheel and
:func:`facesketch.resources.resources_dir` finds it.  No code lives here.
"""
