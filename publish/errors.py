"""Publication errors: bilingual messages from ``config/messages.py``, CLI exit code 1."""

from __future__ import annotations

from config.errors import EtlError


class PublishError(EtlError):
    """Publication could not run or was aborted; the current release is unchanged.

    Subclasses :class:`config.errors.EtlError` so the CLI maps it like every other user error; its
    messages live in the one catalogue (``config/messages.py``).
    """


class LeakCheckError(PublishError):
    """The public store holds a table or column outside the allow-list (never published)."""
