"""`python -m intake.cli` is the `intake` command."""
import sys

from intake.cli import main

sys.exit(main())
