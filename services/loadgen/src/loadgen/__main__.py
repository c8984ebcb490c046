"""`python3 -m loadgen` is the `loadgen` command."""

import sys

from loadgen.cli import main

if __name__ == "__main__":
    sys.exit(main())
