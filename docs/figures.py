"""Regenerate the README's sweep figures: `make docs-figures`.

Runs configs/sweeps/seed_study.yaml (no per-run plots), configs/sweeps/seed_census.yaml (5,000
members, about 3 minutes on 2 cores) and the three adaptive-search examples (halving, pbt,
halving_auto: seconds each) into a temporary folder, writes their reports, and copies the
key figures, scaled down, into docs/.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

DOCS = Path(__file__).resolve().parent
REPO = DOCS.parent
FIGURES = {  # sweep file -> the report's figures to copy (as docs/<prefix>_<name>)
    "seed_study": ("loss_curves.png", "boundaries.png", "divergence.png"),
    "seed_census": ("success.png", "final_loss_hist.png"),
    "halving": ("search_curves.png",),
    "pbt": ("pbt_schedule.png",),
    "halving_auto": ("calibration.png",),
}
WIDTH = 1000  # pixels; small enough for the repository, sharp enough for the README


def main() -> int:
    exe = str(Path(sys.executable).parent / "xorlab")
    with tempfile.TemporaryDirectory() as tmp:
        for prefix, names in FIGURES.items():
            sweep = subprocess.run(
                [exe, "sweep", str(REPO / f"configs/sweeps/{prefix}.yaml"), "--quiet",
                 "--runs-dir", tmp, "--set", "plots.enabled=false"],
                check=True, capture_output=True, text=True,
            ).stdout.strip().splitlines()[-1]  # fmt: skip
            subprocess.run([exe, "report", sweep, "--quiet"], check=True)
            for name in names:
                im = Image.open(Path(sweep) / "report" / name)
                if im.width > WIDTH:
                    im = im.resize((WIDTH, round(im.height * WIDTH / im.width)), Image.LANCZOS)
                target = DOCS / f"{prefix}_{name}"
                im.convert("RGB").quantize(colors=256).save(target, optimize=True)
                print(target.relative_to(REPO))
    return 0


if __name__ == "__main__":
    sys.exit(main())
