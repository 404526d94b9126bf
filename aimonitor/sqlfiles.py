"""Long SQL statements live in ``.sql`` files beside the module that runs them.

They are tracked files inside the package, read once when the module is imported.
"""

from __future__ import annotations

from pathlib import Path


def sql_beside(module_file: str, name: str) -> str:
    """The text of ``name``, a ``.sql`` file in the folder of ``module_file``."""
    return Path(module_file).with_name(name).read_text(encoding="utf-8")
