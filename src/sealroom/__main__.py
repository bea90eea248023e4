"""``python -m sealroom``."""

from sealroom.cli import main

raise SystemExit(main())
