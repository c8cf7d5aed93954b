"""Create the metadata tables and build knowledge bases (Langchain-Chatchat 0.2's flags). See `--help`."""

from kbqa.cli import init_database_main

if __name__ == "__main__":
    raise SystemExit(init_database_main())
