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
    # Every figure the tour draws is in the report: the sections list what they embed.
    listed = {fig for section in summary["topics"].values() for fig in section["figures"]}
    assert {p.name for p in tmp_path.glob("*.png")} == listed


def test_a_sections_figures_are_the_images_its_markdown_embeds():
    from ppl_models.tour import Section

    md = "Text ![a plot](one.png) and [a link](page.html).\n\n![](two.png)\n"
    s = Section("t", "T", md, losses={"svi": 1.0})
    assert s.figures == ["one.png", "two.png"]
    as_json = s.to_json()
    assert as_json["figures"] == ["one.png", "two.png"] and "markdown" not in as_json


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


# ----------------------------------------------------------------- train and its errors


def _run_command(monkeypatch, *args: str) -> int:
    """main() as the console script calls it: no argv, the command line in sys.argv."""
    monkeypatch.setattr(sys, "argv", ["ppl-models", *args])
    return main()


def test_train_unreadable_data_is_one_line(tmp_path, monkeypatch, capsys):
    junk = tmp_path / "junk.npy"
    junk.write_text("not an array")
    cases = {
        str(tmp_path / "missing.npy"): "data: no such file",
        str(junk): "data: cannot read",
        str(tmp_path): "is a folder, not a .npy file",
    }
    for path, message in cases.items():
        assert _run_command(monkeypatch, "train", "ppca", "--data", path) == 2
        err = capsys.readouterr().err
        assert err.startswith("ppl-models train: error: ") and message in err
        assert err.count("\n") == 1 and "Traceback" not in err
    # From Python (argv given) the library's exception propagates.
    with pytest.raises(ValueError, match="data: no such file"):
        main(["train", "ppca", "--data", str(tmp_path / "missing.npy")])


def test_train_warns_when_it_stops_before_converging(tmp_path, capsys):
    import numpy as np

    from ppl_models.datasets import load_digits

    np.save(tmp_path / "x.npy", load_digits().x.numpy())
    argv = ["train", "ppca", "--data", str(tmp_path / "x.npy"), "--out", str(tmp_path / "o")]
    assert main([*argv, "--steps", "30"]) == 0
    captured = capsys.readouterr()
    assert "final loss" in captured.out
    assert "warning: stopped after 30 steps before the loss converged" in captured.err
    assert captured.err.count("\n") == 1


def test_convergence_test_of_the_loss_curve():
    import numpy as np

    from ppl_models.cli import _convergence

    rng = np.random.default_rng(0)
    steps = np.arange(400)
    # A deterministic loss that has settled (relative change 1e-9 < tol = 1e-6).
    assert _convergence(list(100.0 + 1e-9 * np.exp(-steps / 50)))[0]
    # Still falling by 1e-4 per step: 100 steps move the window mean by 1e-2.
    assert not _convergence(list(100.0 - 1e-4 * steps))[0]
    # Minibatch noise (sd 1) around a flat loss: within 3 standard errors.
    assert _convergence(list(100.0 + rng.standard_normal(400)))[0]
    # The same noise on a loss still falling by 0.02 per step (2 per window, about 14
    # standard errors of the difference of two 100-step means): not converged.
    converged, how = _convergence(list(100.0 - 0.02 * steps + rng.standard_normal(400)))
    assert not converged and "standard errors" in how
    assert not _convergence([1.0, 0.5])[0]


@pytest.mark.slow
@pytest.mark.parametrize("topic", ["ppca", "vae"])
def test_train_default_steps_converge_on_the_bundled_digits(tmp_path, capsys, topic):
    import numpy as np

    from ppl_models.datasets import load_digits, load_vae_data

    x = load_digits().x.numpy() if topic == "ppca" else load_vae_data().x_train.numpy()
    np.save(tmp_path / "x.npy", x)
    assert main(["train", topic, "--data", str(tmp_path / "x.npy"), "--out", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert "warning" not in captured.err
    summary = json.loads((tmp_path / "summary.json").read_text())
    if topic == "ppca":
        # Measured: equal to the closed form's to 1e-12 after 3000 steps at lr 0.3.
        fitted, best = summary["loglik_per_point"], summary["closed_form_loglik_per_point"]
        assert abs(fitted - best) <= 1e-6 * abs(best)


def test_tour_output_has_no_pyro_info_lines(tmp_path):
    import logging

    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Collect(level=logging.DEBUG)
    logger = logging.getLogger("pyro")
    level = logger.level
    logger.addHandler(handler)
    try:
        # The regression section's autoguide logs "Guessed max_plate_nesting" at INFO.
        main(["tour", "--quick", "--out", str(tmp_path), "--topics", "regression"])
    finally:
        logger.removeHandler(handler)
    assert not [r for r in records if r.levelno < logging.WARNING]
    assert logger.level == level  # restored
