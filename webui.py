"""The web UI: ``streamlit run webui.py [-- --api-url URL --config FILE]`` (or ``python -m kbqa.webui``)."""

from kbqa.webui.app import main

main()
