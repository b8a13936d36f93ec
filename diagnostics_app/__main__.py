"""``python -m diagnostics_app`` is the same as the ``diagnostics-app`` console script."""

import sys

from diagnostics_app.cli import main

sys.exit(main())
