"""Chat services under the API routers: KB chat with sources, LLM chat with records, file chat, prompts."""
