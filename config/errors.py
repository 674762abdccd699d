"""Exception tree: each error carries a bilingual, actionable message (layer, file, record, fix)."""

from __future__ import annotations

from config.messages import text


class EtlError(Exception):
    """Base for data and configuration errors (CLI exit code 1)."""

    def __init__(self, msg_key: str, /, **kw: object) -> None:
        self.key = msg_key
        self.params = kw
        super().__init__(text(msg_key, **kw))


class ConfigError(EtlError):
    """A spec or project file is wrong."""


class SourceError(EtlError):
    """An input file is missing, unreadable or inconsistent with its spec."""


class ConfigErrors(ConfigError):
    """Several config problems, reported at once (osmnx style: collect, then raise)."""

    def __init__(self, errors: list[ConfigError]) -> None:
        self.errors = errors
        Exception.__init__(self, "\n".join(str(e) for e in errors))
