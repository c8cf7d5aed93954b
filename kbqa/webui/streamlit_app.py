"""The script ``python -m kbqa.webui`` and the launcher give to ``streamlit run`` (the repository's webui.py is the
same two lines)."""

from kbqa.webui.app import main

main()
