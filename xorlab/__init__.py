"""xorlab: train, sweep and understand small NumPy neural networks written from scratch.

The Python API (``xorlab.api``): ``load_config``, ``train``, ``sweep``, ``runs``, and the error
types ``XorlabError`` and ``ConfigError``. They are imported on first use, so ``import xorlab``
(and the command line's start-up) pays for none of numpy, pandas or pydantic.

``xorlab.train`` and ``xorlab.sweep`` are the API's functions, although modules of those names
exist: ``from xorlab.train import RunResult`` works as ever, but ``import xorlab.train as m``
gives the function (use ``importlib.import_module("xorlab.train")``). Importing a submodule would
otherwise rebind the package's attribute to the module.
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["ConfigError", "XorlabError", "__version__", "load_config", "runs", "sweep", "train"]

if TYPE_CHECKING:
    from .api import load_config, runs, sweep, train
    from .errors import ConfigError, XorlabError

_API = frozenset({"load_config", "train", "sweep", "runs"})
_ERRORS = frozenset({"XorlabError", "ConfigError"})


def __getattr__(name: str) -> Any:
    if name in _API:
        from . import api

        return getattr(api, name)
    if name in _ERRORS:
        from . import errors

        return getattr(errors, name)
    raise AttributeError(f"module 'xorlab' has no attribute {name!r}")


class _Package(types.ModuleType):
    def __setattr__(self, name: str, value: Any) -> None:
        if name in _API and isinstance(value, types.ModuleType):
            return  # the submodule xorlab.train stays in sys.modules; the name is the API's
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
