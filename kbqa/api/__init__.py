"""REST API server, Langchain-Chatchat 0.2 compatible. Build it with :func:`kbqa.api.app.create_app`.

Nothing is imported here: kbqa.settings imports :mod:`kbqa.api.settings`, and the app imports kbqa.settings.
"""
