"""Domain errors. Each carries the HTTP status the API layer maps it to, in one place (kbqa.api)."""

from __future__ import annotations


class KBQAError(Exception):
    """Base of every error kbqa raises on purpose; the message is safe to show a user."""

    status_code: int = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidName(KBQAError):
    """A knowledge-base name outside the allowed grammar."""

    status_code = 400


class InvalidPath(KBQAError):
    """A file path that is absolute, escapes its folder, or is otherwise unsafe."""

    status_code = 400


class KBNotFound(KBQAError):
    status_code = 404


class KBExists(KBQAError):
    status_code = 409


class FileNotInKB(KBQAError):
    status_code = 404


class ChunkNotFound(KBQAError):
    """A chunk id that is not in the knowledge base."""

    status_code = 404


class FileExistsInKB(KBQAError):
    """An upload would replace an existing file and override was not asked for."""

    status_code = 409


class FileTooLarge(KBQAError):
    status_code = 413


class UnsupportedFile(KBQAError):
    """No loader handles this file's extension."""

    status_code = 415


class DocumentParseError(KBQAError):
    """A loader failed on a file (corrupt, encrypted, wrong format inside)."""

    status_code = 422


class EmptyDocument(KBQAError):
    """A non-empty file parsed to no text: never a silent zero-chunk success."""

    status_code = 422


class InvalidOption(KBQAError):
    """A request asked for a model, vector store or setting the server does not offer; the message lists what it
    offers. Raised where the value is known to come from the client: the same name read from the settings or the
    database is a server fault (ConfigError, EmbeddingModelError)."""

    status_code = 400


class InvalidBackup(KBQAError):
    """A knowledge-base archive that is not kbqa's, is truncated or altered (a checksum differs), or holds an unsafe
    member (a path leaving the knowledge base's folder, a link, a device). Nothing was written."""

    status_code = 400


class BackupModelMismatch(KBQAError):
    """An archive's embeddings come from a model this server does not run (or with another dimension): importing
    them as they are would make every search meaningless. The message says how to import with re-embedding."""

    status_code = 409


class EmbeddingModelError(KBQAError):
    """The configured embedding model cannot be found or loaded."""

    status_code = 500


class MissingDependency(KBQAError):
    """An optional backend's package is not installed; the message names the extra to install."""

    status_code = 501


class ConfigError(KBQAError):
    """Settings that cannot work together (bad YAML, unknown backend, ...)."""

    status_code = 500
