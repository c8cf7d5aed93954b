import sys

from kbqa.launcher.main import main

sys.exit(main())
