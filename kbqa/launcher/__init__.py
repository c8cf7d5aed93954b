"""Process supervisor behind ``startup.py``: see :mod:`kbqa.launcher.main`."""
