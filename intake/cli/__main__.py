"""`python -m intake.cli` is the `intake` command."""
import sys

from intake.cli import main

if __name__ == "__main__":  # not when a worker process (multiprocessing's "spawn") imports it again
    sys.exit(main())
