"""progress.json (xorlab.progress) and `xorlab watch SWEEP_DIR --once`."""

from __future__ import annotations

import csv
import datetime
import json
import math
import os
import time
from pathlib import Path

from typer.testing import CliRunner

from xorlab.cli import app
from xorlab.commands.watch import load_view
from xorlab.progress import progress_doc, summary_rows, sweep_rows, write_progress

from .conftest import write

runner = CliRunner()


def row(index, status, loss=None, test=None, **extra):
    return {"index": index, "status": status, "final_loss": loss, "final_data_loss": loss,
            "final_train_acc": None if loss is None else 0.5, "final_test_acc": test,
            "steps_planned": 100, "params": {"seed": index, "optim.lr": 0.1 * (index + 1)},
            **extra}  # fmt: skip


def test_progress_doc_by_hand():
    rows = [
        row(0, "completed", 0.30),
        row(1, "running"),
        row(2, "diverged", math.nan, diverged_at=40),  # NaN ranks last, is written null
        row(3, "completed", 0.10),
        row(4, "pending"),
        row(5, "stopped_early", 0.10, steps_done=60),  # ties 3 on the loss: index decides
        row(6, "pruned", 0.05, steps_done=11, parent=3),
        row(7, "completed", 0.20, label="007-lr=0.8"),
        row(8, "failed"),
    ]
    doc = progress_doc(rows, started_at="2025-01-01T00:00:00+00:00",
                       updated_at="2025-01-01T00:01:00+00:00", stage={"kind": "halving",
                       "step": 33, "round": 0, "bracket": None})  # fmt: skip
    assert doc["counts"] == {"running": 1, "pending": 1, "completed": 3, "stopped_early": 1,
                             "pruned": 1, "diverged": 1, "failed": 1}  # fmt: skip
    # completed 3 x 100 (their plan), diverged at 40, stopped 60, pruned 11; the rest 0
    assert doc["network_steps"] == {"done": 300 + 40 + 60 + 11, "planned": 900}
    assert doc["ranked_by"] == ["final_data_loss"]
    assert [b["index"] for b in doc["best"]] == [6, 3, 5, 7, 0]
    assert doc["best"][0]["parent"] == 3 and doc["best"][0]["steps_done"] == 11
    assert doc["best"][3]["label"] == "007-lr=0.8" and "label" not in doc["best"][0]
    assert doc["best"][1]["params"] == {"seed": 3, "optim.lr": 0.4}
    assert doc["stage"] == {"kind": "halving", "step": 33, "round": 0, "bracket": None}
    json.dumps(doc, allow_nan=False)  # JSON as it is: no NaN anywhere
    # a test accuracy ranks first (highest first), then the data loss
    rows = [row(0, "completed", 0.3, 0.9), row(1, "completed", 0.1, 0.8),
            row(2, "completed", 0.2, 0.9)]  # fmt: skip
    doc = progress_doc(rows, started_at="a", updated_at="b", planned=1234)
    assert doc["ranked_by"] == ["final_test_acc", "final_data_loss"]
    assert [b["index"] for b in doc["best"]] == [2, 0, 1]
    assert doc["network_steps"]["planned"] == 1234


def run_sweep_cli(tmp_path: Path) -> Path:
    write(tmp_path, "data: {n: 40}\nmodel: {hidden: [3]}\ntrain: {steps: 20}\n", "base.yaml")
    s = write(tmp_path, "base: base.yaml\nset: {plots.enabled: false}\n"
                        "grid: {optim.lr: [0.1, 0.5]}\nseeds: 2\n", "s.yaml")  # fmt: skip
    runs = tmp_path / "runs"
    res = runner.invoke(app, ["sweep", str(s), "-q", "-j", "1", "--runs-dir", str(runs)])
    assert res.exit_code == 0, res.output
    (folder,) = runs.iterdir()
    return folder


def test_the_drivers_rows_and_summary_csv_give_the_same_document(tmp_path):
    from xorlab.store import SweepStore
    from xorlab.sweeprun import load_for_resume

    folder = run_sweep_cli(tmp_path)
    sweep = load_for_resume(folder)
    entries = SweepStore(folder).entries()
    times = {"started_at": "s", "updated_at": "u", "finished": True}
    from_driver = progress_doc(sweep_rows(sweep.members, entries), **times)
    path = write_progress(folder, from_driver)
    assert path == folder / "progress.json"
    assert json.loads(path.read_text()) == from_driver
    from_summary = progress_doc(summary_rows((folder / "summary.csv").read_text(), 20), **times)
    for item in from_driver["best"]:
        assert item.pop("label") == sweep.members[item["index"]].label
    assert from_summary == from_driver
    assert from_driver["counts"] == {"completed": 4}
    assert from_driver["network_steps"] == {"done": 80, "planned": 80}
    # running members: those without a record
    rows = sweep_rows(sweep.members, {0: entries[0]}, running=[2])
    assert [r["status"] for r in rows] == ["completed", "pending", "running", "pending"]


def lines_of(res) -> list[str]:
    return [line.rstrip() for line in res.output.splitlines()]


def test_watch_once_on_a_finished_sweep_without_progress_json(tmp_path):
    folder = run_sweep_cli(tmp_path)
    (folder / "progress.json").unlink()  # as a sweep from before progress.json has it
    res = runner.invoke(app, ["watch", str(folder), "--once"])
    assert res.exit_code == 0, res.output
    out = lines_of(res)
    assert out[0].startswith("sweep s  finished  elapsed ") and "(from summary.csv)" in out[0]
    assert out[1] == "4 members: 4 completed"
    assert out[2].endswith("80 of 80 network-steps (100.0%)")
    assert out[3].startswith("best 4 by data loss")
    summary = list(csv.DictReader((folder / "summary.csv").open()))
    order = sorted(summary, key=lambda r: (float(r["final_data_loss"]), int(r["index"])))
    shown = [line.split("│")[2].strip() for line in out if line.startswith("│")]
    assert shown == [r["index"] for r in order]
    assert f"seed={order[0]['seed']}, optim.lr={order[0]['optim.lr']}" in res.output


def test_watch_once_reads_progress_json_and_events_csv(tmp_path):
    folder = tmp_path / "20250101-120000-adaptive-0a1b2c"
    folder.mkdir()
    rows = [row(i, "completed", 0.1 * (i + 1), steps_done=33) for i in range(3)]
    rows += [row(i, "pending") for i in range(3, 9)]
    rows[3]["status"] = "running"
    rows[0]["parent"] = 2
    doc = progress_doc(rows, started_at="2025-01-01T12:00:00+00:00",
                       updated_at="2025-01-01T12:00:30+00:00", planned=300,
                       stage={"kind": "pbt", "step": 200, "round": 1, "bracket": None})  # fmt: skip
    write_progress(folder, doc)
    events = ["step,round,bracket,member,action,parent,key,old,new,value,rank,cutoff,reason"]
    events += [f"100,0,,{m},exploited,2,,,,0.5,9,0.4,copied" for m in (7, 8)]
    events += [f"100,0,,{m},perturbed,,optim.lr,0.1,0.12,,,,x1.2" for m in (7, 8)]
    events += ["200,1,,8,exploited,1,,,,0.5,9,0.3,copied"]
    (folder / "events.csv").write_text("\n".join(events) + "\n")
    start = 1735732800.0  # 2025-01-01T12:00:00Z
    view = load_view(folder, now=start + 60)
    assert (view.name, view.state, view.search, view.source) == (
        "adaptive",
        "running",
        "pbt",
        "progress.json",
    )
    assert view.elapsed_s == 60.0  # running: up to now, not to the last update
    assert view.eta_s == 60.0 * (300 - 99) / 99  # done: 3 completed x 33
    # a progress.json not rewritten for over a minute: the driver is gone
    stale = load_view(folder, now=start + 30 + 61)
    assert (stale.state, stale.elapsed_s, stale.eta_s, stale.quiet_s) == ("stopped", 30.0, None, 61)
    assert [(s.step, s.actions) for s in view.stages] == [
        (100, {"exploited": 2, "perturbed": 2}), (200, {"exploited": 1})]  # fmt: skip
    fresh = datetime.datetime.now(datetime.timezone.utc)
    doc["updated_at"] = fresh.isoformat()
    doc["started_at"] = (fresh - datetime.timedelta(seconds=60)).isoformat()
    write_progress(folder, doc)  # as a running driver would have it
    res = runner.invoke(app, ["watch", str(folder), "--once"])
    assert res.exit_code == 0, res.output
    out = lines_of(res)
    assert out[0].startswith("sweep adaptive  running  elapsed ") and "ETA " in out[0]
    assert out[1] == "9 members: 1 running, 5 pending, 3 completed"
    assert out[2].endswith("99 of 300 network-steps (33.0%)")
    assert out[3] == "pbt: round 1 at step 200"
    assert "rounds (events.csv)" in res.output
    table = [line for line in out if line.startswith("│")]
    assert [c.strip() for c in table[0].split("│")[1:-1]] == ["100", "0", "2", "2"]
    best = table[2:]
    assert [c.strip() for c in best[0].split("│")[1:-1]][-1] == "2"  # the parent column
    assert len(best) == 3


def test_watch_once_on_10000_members_stays_a_few_lines(tmp_path):
    folder = tmp_path / "big"
    folder.mkdir()
    header = ["index", "run_dir", "seed", "optim.lr", "status", "final_loss", "final_data_loss",
              "final_train_acc", "final_test_acc", "diverged_at", "wall_s"]  # fmt: skip
    with (folder / "summary.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for i in range(10_000):
            loss = repr(1.0 + ((i * 7919) % 10_000) / 1e4)
            w.writerow([i, "", 0, 0.1, "completed", loss, loss, 0.5, "", "", 0.1])
    (folder / "sweep.yaml").write_text("name: big\nbase_config: {train: {steps: 10}}\nmembers:\n")
    res = runner.invoke(app, ["watch", str(folder), "--once"])
    assert res.exit_code == 0, res.output
    assert len(res.output.splitlines()) == 3 + 1 + 4 + 5  # head, counts, bar; best 5 table
    assert "100,000 of 100,000 network-steps" in res.output
    assert res.output.count("completed") == 1 + 5


def test_watch_bad_folders_exit_2_one_line(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "progress.json").write_text("{not json")
    bad_summary = tmp_path / "bad_summary"
    bad_summary.mkdir()
    (bad_summary / "summary.csv").write_text("a,b\n1,2\n")
    cases = [
        (tmp_path / "nope", "no such sweep folder"),
        (empty, "not a sweep folder, or one not started (no sweep.yaml, no progress.json)"),
        (damaged, "progress.json is damaged"),
        (bad_summary, "not a sweep's summary.csv"),
    ]
    for path, message in cases:
        before = sorted(os.listdir(path)) if path.exists() else None
        res = runner.invoke(app, ["watch", str(path), "--once"])
        assert res.exit_code == 2, res.output
        lines = res.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
        assert str(path) in lines[0] and "Traceback" not in res.output
        assert (sorted(os.listdir(path)) if path.exists() else None) == before


# --- the driver writes progress.json ------------------------------------------------------------


def test_a_finished_sweep_has_progress_json_and_watch_shows_it(tmp_path):
    from xorlab.store import SweepStore
    from xorlab.sweeprun import load_for_resume

    folder = run_sweep_cli(tmp_path)  # 2 lr x 2 seeds, 20 steps each
    doc = json.loads((folder / "progress.json").read_text())
    assert doc["finished"] is True and doc["format"] == 1 and doc["members"] == 4
    assert doc["counts"] == {"completed": 4}
    assert doc["network_steps"] == {"done": 80, "planned": 80, "at_start": 0}  # 4 x 20 steps
    assert doc["stage"] is None and doc["ranked_by"] == ["final_data_loss"]
    started = datetime.datetime.fromisoformat(doc["started_at"])
    assert started <= datetime.datetime.fromisoformat(doc["updated_at"])
    # the same document as the driver's rows give, but for the times
    sweep = load_for_resume(folder)
    rows = sweep_rows(sweep.members, SweepStore(folder).entries())
    again = progress_doc(rows, started_at=doc["started_at"], updated_at=doc["updated_at"],
                         finished=True)  # fmt: skip
    again["network_steps"]["at_start"] = 0
    assert doc == again
    assert [b["label"] for b in doc["best"]] == [sweep.members[b["index"]].label
                                                 for b in doc["best"]]  # fmt: skip
    res = runner.invoke(app, ["watch", str(folder), "--once"])
    assert res.exit_code == 0, res.output
    out = lines_of(res)
    assert out[0].startswith("sweep s  finished  elapsed ") and "from" not in out[0], out[0]
    assert out[1] == "4 members: 4 completed"
    assert out[2].endswith("80 of 80 network-steps (100.0%)")
    assert out[3].startswith("best 4 by data loss")
    assert [line.split("│")[2].strip() for line in out if line.startswith("│")] == [
        str(b["index"]) for b in doc["best"]]  # fmt: skip
    # a resume with nothing to run leaves the folder be: no progress.json written
    (folder / "progress.json").unlink()
    res = runner.invoke(app, ["sweep", "--resume", str(folder), "-q", "-j", "1"])
    assert res.exit_code == 0, res.output
    assert not (folder / "progress.json").exists()


def test_progress_json_after_ctrl_c_and_after_the_resume(tmp_path):
    """Ctrl-C: the last write says the driver ended, its counts that members are left; watch
    calls it stopped. The resume's document counts what was done before it apart (the ETA)."""
    from xorlab.sweep import load_sweep
    from xorlab.sweeprun import run_sweep

    write(tmp_path, "data: {n: 40}\ntrain: {steps: 20}\nplots: {enabled: false}\n", "base.yaml")
    s = write(tmp_path, "base: base.yaml\ngrid: {model.hidden: [[2], [3]]}\n", "s.yaml")
    sweep = load_sweep(s)  # two shapes: two training groups, one after the other

    def stop(p):
        if p.done:
            raise KeyboardInterrupt

    out = run_sweep(sweep, tmp_path / "runs", on_event=stop)
    assert out.interrupted
    doc = json.loads((out.folder / "progress.json").read_text())
    assert (doc["finished"], doc["counts"]) == (True, {"pending": 1, "completed": 1})
    assert doc["network_steps"] == {"done": 20, "planned": 40, "at_start": 0}
    view = load_view(out.folder)
    assert (view.state, view.quiet_s, view.eta_s) == ("stopped", None, None)
    res = runner.invoke(app, ["watch", str(out.folder), "--once"])
    assert res.exit_code == 0, res.output
    assert lines_of(res)[0].endswith("(ended unfinished)"), res.output

    run_sweep(load_sweep(s), tmp_path / "runs", resume_dir=out.folder)
    doc = json.loads((out.folder / "progress.json").read_text())
    assert (doc["finished"], doc["counts"]) == (True, {"completed": 2})
    assert doc["network_steps"] == {"done": 40, "planned": 40, "at_start": 20}
    assert load_view(out.folder).state == "finished"


def test_watch_eta_counts_only_this_drivers_pace(tmp_path):
    rows = [row(i, "completed", 0.1, steps_done=100) for i in range(3)] + [row(3, "running")]
    doc = progress_doc(rows, started_at="2025-01-01T12:00:00+00:00",
                       updated_at="2025-01-01T12:00:30+00:00")  # fmt: skip
    doc["network_steps"]["at_start"] = 200  # two members were done before a resume
    write_progress(tmp_path, doc)
    view = load_view(tmp_path, now=1735732800.0 + 40)  # 40 s in: one member (100 steps) done
    assert (view.state, view.elapsed_s, view.eta_s) == ("running", 40.0, 40.0 * 100 / 100)


def test_the_progress_writer_throttles_and_keeps_the_file_fresh(tmp_path):
    from types import SimpleNamespace

    from xorlab.progress import ProgressWriter

    cfg = SimpleNamespace(train=SimpleNamespace(steps=10))
    members = [
        SimpleNamespace(
            index=i,
            label=f"00{i}-lr={i}",
            seed=0,
            variant=None,
            varied={"optim.lr": float(i)},
            config=cfg,
        )
        for i in range(2)
    ]
    writer = ProgressWriter(tmp_path, members, "2025-01-01T12:00:00+00:00", every_s=0.2)

    def read():
        return json.loads((tmp_path / "progress.json").read_text())

    entries: dict[int, dict] = {}
    assert writer.maybe(entries, [0, 1]) is True  # the first call writes at once
    assert read()["counts"] == {"running": 2}
    entries[0] = {"status": "completed", "steps_done": 10, "final": {"loss": 0.1},
                  "final_data_loss": 0.1}  # fmt: skip
    assert writer.maybe(entries, [1]) is False  # not due: noted, not written
    assert read()["counts"] == {"running": 2}
    deadline = time.monotonic() + 5
    while read()["counts"] != {"running": 1, "completed": 1} and time.monotonic() < deadline:
        time.sleep(0.02)  # the writer's thread writes the noted state when it is due
    assert read()["counts"] == {"running": 1, "completed": 1}
    assert read()["network_steps"] == {"done": 10, "planned": 20, "at_start": 0}
    writes = writer.writes
    time.sleep(0.5)
    assert writer.writes > writes  # while nothing happens, the file is still rewritten
    entries[1] = {"status": "diverged", "steps_done": 4, "diverged_at": 4, "final": {}}
    doc = writer.final(entries, stage={"kind": "halving", "step": 4, "round": 0})
    assert read() == doc and doc["finished"] is True
    assert doc["counts"] == {"completed": 1, "diverged": 1} and doc["stage"]["step"] == 4
    writes = writer.writes
    time.sleep(0.3)
    assert writer.writes == writes  # the final write is the last
