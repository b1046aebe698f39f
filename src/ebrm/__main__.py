"""`python -m ebrm ...` (also what `accelerate launch -m ebrm` runs)."""

import sys

from ebrm.cli import main

sys.exit(main())
