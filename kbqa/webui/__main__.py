"""``python -m kbqa.webui [--config FILE] [--host H] [--port P] [--api-url URL]``: serve the web UI."""

from kbqa.webui.launch import main

if __name__ == "__main__":
    main()
