"""``python -m floopy`` is the ``floopy`` command."""

from floopy.cli import main

raise SystemExit(main())
