"""The ``ppl-models`` command: the tour writes its report and its numbers hold."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ppl_models.cli import main
from ppl_models.tour import TOPICS


def test_tour_quick_writes_report_and_summary(tmp_path):
    assert main(["tour", "--quick", "--out", str(tmp_path)]) == 0
    report = (tmp_path / "report.md").read_text()
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary["topics"]) == set(TOPICS)
    for topic, section in summary["topics"].items():
        assert section["title"] in report
        for fig in section["figures"]:
            assert (tmp_path / fig).stat().st_size > 0, (topic, fig)
            assert f"({fig})" in report
        # The agreement the tour reports is what the test suite guarantees.
        for row in section["agreement"]:
            assert row["error"] <= row["tolerance"], (topic, row)
    assert not list(tmp_path.glob(".*tmp*"))  # nothing half-written left behind


def test_tour_subset_and_unknown_topic(tmp_path, capsys):
    if TOPICS:
        main(["tour", "--quick", "--out", str(tmp_path), "--topics", TOPICS[0]])
        summary = json.loads((tmp_path / "summary.json").read_text())
        assert list(summary["topics"]) == [TOPICS[0]]
    with pytest.raises(SystemExit) as info:
        main(["tour", "--topics", "no-such-topic"])
    assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_python_dash_m_entry_point():
    out = subprocess.run(
        [sys.executable, "-m", "ppl_models", "--help"], capture_output=True, text=True, check=True
    )
    assert "tour" in out.stdout
