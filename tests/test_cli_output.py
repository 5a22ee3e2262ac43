"""What the command line prints: plain logs when piped, warnings with a level prefix, pasteable next steps."""

from __future__ import annotations

import logging
import shlex

import numpy as np

from trust import FAST, copy_run, run_cli


def test_piped_run_prints_no_progress_bars_and_pasteable_next_steps(trust_template, tmp_path):
    events, template = trust_template
    out = copy_run(template, tmp_path / "run")
    # A real process whose stderr is a pipe, as in `make demo | tee log`; without --quiet.
    outcome = run_cli("run", "--events", events, "--out", out, "--from", "skipgram",
                      *[a for a in FAST if a != "--quiet"], subprocess_run=True)
    assert outcome.exit_code == 0, outcome.output
    assert "\r" not in outcome.output  # no tqdm redraws in a log
    hints = [line.strip().split("   #")[0] for line in outcome.output.splitlines() if line.startswith("  eges ")]
    assert {h.split()[1] for h in hints} == {"evaluate", "export", "report"}
    assert all(str(out) in h for h in hints)
    evaluate = next(h for h in hints if h.split()[1] == "evaluate")
    assert f"--events {events}" in evaluate  # the hint has everything the command needs
    report = next(h for h in hints if h.split()[1] == "report")
    result = run_cli(*shlex.split(report)[1:])
    assert result.exit_code == 0 and (out / "report.html").exists(), result.output


def test_until_stops_after_the_named_stage(trust_template, tmp_path):
    events, _ = trust_template
    out = tmp_path / "run"
    outcome = run_cli("run", "--events", events, "--out", out, "--until", "graph", *FAST)
    assert outcome.exit_code == 0, outcome.output
    assert (out / "graph" / "edges.parquet").exists() and not (out / "walks").exists()


def test_warnings_have_a_level_prefix_and_plain_numbers(capsys):
    from eges.cli import _setup_logging

    _setup_logging()
    logging.getLogger("eges").warning("%s items are above the threshold", np.int64(103378))
    err = capsys.readouterr().err
    assert "warning: 103378 items are above the threshold" in err
