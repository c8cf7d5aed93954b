"""``python startup.py -a``: start every kbqa service (see ``python startup.py --help``)."""

import sys

from kbqa.launcher.main import main

if __name__ == "__main__":
    sys.exit(main())
