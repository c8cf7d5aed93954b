"""The Streamlit web UI (``streamlit run webui.py`` or ``python -m kbqa.webui``).

It reaches the API server over HTTP only, through :mod:`kbqa.webui.api_client`: nothing here opens the database or
loads a model, so the UI can run on another machine than the server.
"""
