"""Data files shipped inside the package (SQL, migrations, static pages), found through
``importlib.resources`` so that a checkout, an editable install and a wheel all find them the same way.

A zipped install is not supported: the SQL runner, the migration runner and the dashboard's static
files want real paths, and the package is always installed unzipped by pip.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def package_path(package: str | None, *parts: str) -> Path:
    """The file or folder ``parts`` inside ``package`` (a module's ``__package__``)."""
    if not package:
        raise RuntimeError("package_path needs the calling module's __package__")
    found = files(package).joinpath(*parts)
    if not isinstance(found, Path):
        raise RuntimeError(f"{package}/{'/'.join(parts)} is not on the file system (a zipped install?)")
    return found
