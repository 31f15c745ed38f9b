"""`python -m pipeline` is the same as the `credit-repair` console script."""

import sys

from pipeline.cli import main

sys.exit(main())
