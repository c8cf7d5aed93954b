"""Streamlit page script for the chat page (the logic is in kbqa.webui.chat_page)."""

from kbqa.webui.chat_page import render
from kbqa.webui.context import current

render(current())
