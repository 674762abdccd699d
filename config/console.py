"""What the CLI and the server print on stderr besides their own messages: Python warnings.

Why: a warning's default form starts with the absolute path of the file that raised it
(``/srv/.../site-packages/pkg/mod.py:467: UserWarning: ...``), which says where the software is
installed and helps nobody fix their data. Here a warning is one line naming its module.
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from pathlib import Path
from typing import Any


def show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                 file: Any = None, line: str | None = None) -> None:
    """``warnings.showwarning`` replacement: ``warning: Category (module:line): message``."""
    module = Path(filename).stem if filename else "?"
    out = file if file is not None else sys.stderr
    with contextlib.suppress(OSError, ValueError, AttributeError):
        out.write(f"warning: {category.__name__} ({module}:{lineno}): {message}\n")


def quiet_warnings(*quiet_modules: str) -> None:
    """Print warnings through :func:`show_warning` (``warnings.showwarning`` is the documented
    hook); deprecation warnings raised inside ``quiet_modules`` (third-party code the operator
    cannot change) are not shown at all."""
    warnings.showwarning = show_warning
    for mod in quiet_modules:
        warnings.filterwarnings("ignore", category=DeprecationWarning,
                                module=rf"{mod}(\.|$)")
