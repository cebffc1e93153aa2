"""`python -m rota ...` is the same as the `rota` command."""

import sys

from rota.cli import main

if __name__ == "__main__":  # not when multiprocessing re-imports it in a worker
    sys.exit(main())
