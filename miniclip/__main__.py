"""``python -m miniclip`` is the same as the ``miniclip`` command."""

from miniclip.cli import main

raise SystemExit(main())
