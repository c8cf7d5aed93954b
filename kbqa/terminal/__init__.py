"""``kbqa chat``: FastChat's terminal chat, over a model in this process, an OpenAI-compatible server or a KB."""
