"""Finding the strategy ``SM_STRATEGY`` names, and refusing a bad one before anything trades.

Three spellings (CONTRACT.md): ``package.module:ClassName`` (importable), ``path/to/file.py:ClassName``
(a file installed nowhere, loaded from its path), or the name of an entry point in group
``stock_manager.strategies`` (a package that registers itself).  Unset is the built-in breakout.
Every failure is a ``SettingsError`` with one line naming the setting and what is wrong, so the
service stops at start instead of running without a strategy.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import re
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from stock_manager.services.strategy.port import Strategy, StrategyParams
from stock_manager.services.strategy.strategies.breakout import Breakout
from stock_manager.shared.settings import SettingsError

GROUP = "stock_manager.strategies"
VERSION_LABEL = re.compile(r"[A-Za-z0-9._-]{1,40}")
METHODS = ("bars", "universe", "entry", "exit", "size")


def _bad(spec: str, why: str) -> SettingsError:
    return SettingsError(f"setting SM_STRATEGY={spec!r} is malformed: {why}")


def _from_file(spec: str, path: str, attr: str) -> Any:
    file = Path(path).expanduser().resolve()
    if not file.is_file():
        raise _bad(spec, f"no file {file}")
    # a name of its own per file, so two strategies called strategy.py do not replace each other
    name = f"sm_user_strategy_{file.stem}_{hashlib.sha256(str(file).encode()).hexdigest()[:8]}"
    loader_spec = importlib.util.spec_from_file_location(name, file)
    if loader_spec is None or loader_spec.loader is None:
        raise _bad(spec, f"{file} cannot be imported")
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[name] = module  # dataclasses and pydantic look their module up while the class is built
    try:
        loader_spec.loader.exec_module(module)
    except Exception as e:
        del sys.modules[name]
        raise _bad(spec, f"importing {file} failed: {type(e).__name__}: {e}") from None
    return getattr(module, attr, None)


def _from_module(spec: str, module_name: str, attr: str) -> Any:
    try:
        module = importlib.import_module(module_name)
    except Exception as e:
        raise _bad(spec, f"importing {module_name} failed: {type(e).__name__}: {e}") from None
    return getattr(module, attr, None)


def _from_entry_point(spec: str) -> Any:
    found = entry_points(group=GROUP, name=spec)
    if not found:
        known = sorted(ep.name for ep in entry_points(group=GROUP))
        raise _bad(spec, f"no entry point of that name in group {GROUP} (installed: {', '.join(known) or 'none'}); "
                         "or write package.module:ClassName or path/to/file.py:ClassName")
    ep = next(iter(found))
    try:
        return ep.load()
    except Exception as e:
        raise _bad(spec, f"loading entry point {ep.value} failed: {type(e).__name__}: {e}") from None


def resolve(spec: str | None) -> type[Any]:
    """The class ``spec`` names, not yet checked."""
    if spec is None or not spec.strip():
        return Breakout
    spec = spec.strip()
    if ":" in spec:
        where, attr = spec.rsplit(":", 1)
        if not where or not attr.isidentifier():
            raise _bad(spec, "expected package.module:ClassName or path/to/file.py:ClassName")
        is_file = where.endswith(".py") or "/" in where or "\\" in where
        cls = _from_file(spec, where, attr) if is_file else _from_module(spec, where, attr)
        if cls is None:
            raise _bad(spec, f"{where} has no {attr}")
        return cls  # type: ignore[no-any-return]
    return _from_entry_point(spec)  # type: ignore[no-any-return]


def load_strategy(spec: str | None) -> Strategy:
    """The strategy ``spec`` names, instantiated and checked against the port."""
    cls = resolve(spec)
    shown = spec or "breakout"
    if not inspect.isclass(cls):
        raise _bad(shown, f"{cls!r} is not a class")
    for attr in ("name", "version"):
        value = getattr(cls, attr, None)
        if not isinstance(value, str) or not value:
            raise _bad(shown, f"{cls.__name__}.{attr} must be a non-empty string")
    if not VERSION_LABEL.fullmatch(f"{getattr(cls, 'name')}-{getattr(cls, 'version')}"):  # noqa: B009
        raise _bad(shown, f"{cls.__name__}: name-version must be 1-40 of A-Z a-z 0-9 . _ - (it is recorded on intents)")
    params = getattr(cls, "Params", None)
    if not (inspect.isclass(params) and issubclass(params, StrategyParams)):
        raise _bad(shown, f"{cls.__name__}.Params must be a subclass of port.StrategyParams")
    missing = [m for m in METHODS if not callable(getattr(cls, m, None))]
    if missing:
        raise _bad(shown, f"{cls.__name__} lacks {', '.join(missing)} (see port.Strategy)")
    try:
        params()
    except ValidationError as e:
        raise _bad(shown, f"{cls.__name__}.Params defaults are invalid: {one_line(e)}") from None
    try:
        strategy = cls()
    except Exception as e:
        raise _bad(shown, f"{cls.__name__}() failed: {type(e).__name__}: {e}") from None
    assert isinstance(strategy, Strategy)
    return strategy


def one_line(e: ValidationError) -> str:
    err = e.errors()[0]
    where = ".".join(str(x) for x in err["loc"]) or "?"
    return f"{where}: {err['msg']}"
