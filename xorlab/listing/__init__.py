"""What is in a runs folder: one ``RunInfo`` per run or sweep, for ``xorlab runs``.

Reading only, never writing. A folder counts as a run when it holds any run file (config.yaml,
meta.json, summary.json, metrics.csv, final.npz), or is an empty ``<YYYYMMDD-HHMMSS>-...`` folder
(a run that has just been created); as a sweep when it holds sweep.yaml, or summary.csv and
members/. Anything else (stray files, other folders) is skipped.

Every problem with a folder is recorded, never raised: a run's status is one of

    completed | diverged | interrupted | failed   what its summary.json says
    unfinished                                    no summary.json yet (running, or killed)
    damaged                                       a file is missing or cannot be read
                                                  (``problems`` says which)

and a sweep's is ``completed`` (every member completed or diverged), ``partial`` (some are not,
``counts`` says how many of each) or ``damaged`` (sweep.yaml missing or unreadable).
"""

from .folders import (
    is_run_folder,
    is_sweep_folder,
    member_info,
    member_infos,
    run_info,
    scan,
    sweep_info,
)
from .info import (
    MEMBER_STATUSES,
    RUN_FILES,
    RUN_STATUSES,
    SETTINGS,
    SORT_KEYS,
    STAMP_RE,
    STATUSES,
    RunInfo,
    filter_status,
    sort_by,
)
from .table import STATUS_STYLE, runs_table, settings_text, to_json

__all__ = [
    "MEMBER_STATUSES",
    "RUN_FILES",
    "RUN_STATUSES",
    "SETTINGS",
    "SORT_KEYS",
    "STAMP_RE",
    "STATUSES",
    "STATUS_STYLE",
    "RunInfo",
    "filter_status",
    "is_run_folder",
    "is_sweep_folder",
    "member_info",
    "member_infos",
    "run_info",
    "runs_table",
    "scan",
    "settings_text",
    "sort_by",
    "sweep_info",
    "to_json",
]
