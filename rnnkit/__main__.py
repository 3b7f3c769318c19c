"""`python -m rnnkit`: see `rnnkit.cli`."""

from rnnkit.cli import main

raise SystemExit(main())
