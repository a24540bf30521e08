"""One module per ``facesketch`` subcommand (see :mod:`facesketch.cli`).

Each exposes ``HELP: str``, ``add_arguments(parser)`` and ``run(args) -> int`` and
imports heavy libraries only inside ``run``.
"""
