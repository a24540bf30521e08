"""``python -m facesketch``: the same command line as the ``facesketch`` script."""

from facesketch.cli import main

raise SystemExit(main())
