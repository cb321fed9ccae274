"""`python -m bot [run | demo | db upgrade | catalog import PATH | catalog export [PATH]]`."""

from bot.cli import main

raise SystemExit(main())
