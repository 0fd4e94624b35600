"""What each CLI command does, between parsing (cli.py) and the library: load, call, render.

One module per command family; each imports only what its commands use, so `xorlab validate`
pays for neither pandas nor the progress bars. Names are found here on first use, as in
``from xorlab.commands import train_command``.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOME = {
    "train_command": "train", "summary_table": "train", "gradcheck_command": "train",
    "validate_command": "validate", "SWEEP_KEYS": "validate",
    "explain_command": "explain", "render_explain": "explain",
    "sweep_command": "sweep", "members_table": "sweep", "members_text": "validate",
    "search_text": "validate", "best_table": "sweep",
    "runs_command": "folders", "compare_command": "folders", "export_command": "folders",
    "report_command": "folders", "watch_command": "watch",
    "check_folder_option": "common",
}  # fmt: skip


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
