"""Streamlit page script for the knowledge-base page (the logic is in kbqa.webui.kb_page)."""

from kbqa.webui.context import current
from kbqa.webui.kb_page import render

render(current())
