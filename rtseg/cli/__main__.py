"""``python -m rtseg.cli``: the same as the ``rtseg`` command."""

from rtseg.cli import main

raise SystemExit(main())
