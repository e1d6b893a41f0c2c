"""``python -m dirac_demo``: the command line of :mod:`dirac_demo.cli`."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
