"""facesketch.engine: composes the networks, faces and sketches into renders.

- ``devices``: device / precision / thread choice;
- ``weights``: the weights registry; ``bundle``: the network bundle loaded from it;
- ``appearance``: reference photos -> aligned crops -> cached E_app codes;
- ``pipeline``: :class:`FacePipeline`, incremental per-component rendering;
- ``service``: :class:`RenderService`, the worker thread the UI talks to;
- ``cartoon``, ``sketchify``, ``hed_weights``: stylization and photo sketches.

Nothing is imported here, so ``import facesketch.engine.service`` loads only what
it needs.
"""
