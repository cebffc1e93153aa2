#!/usr/bin/env python3
"""The seed's backend command: `python server.py --host 127.0.0.1 --port 5001`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

from rota.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["backend", *sys.argv[1:]]))
