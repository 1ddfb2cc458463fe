"""A failing pipeline stage is named in its error (the run has up to seven stages)."""

import pytest
from typer.testing import CliRunner

import test_pipeline
from microplex import MicroplexError
from microplex.cli import app
from microplex.evaluation.report import EvaluationReport
from microplex.pipeline import run_pipeline

tiny = test_pipeline.tiny


def test_an_error_in_a_stage_names_the_stage(tiny, monkeypatch):
    """A calibration error ("no record matches ...") read as if the run had failed anywhere."""
    folder, config = tiny
    config = {**config, "generate": {"n": 150}, "evaluate": {"max_rows": 200}}

    def broken_to_html(self, path, **kwargs):
        raise MicroplexError("rendering failed")

    monkeypatch.setattr(EvaluationReport, "to_html", broken_to_html)
    with pytest.raises(MicroplexError, match="rendering failed") as info:
        run_pipeline(config, progress=False)
    assert info.value.__notes__ == ["in the pipeline stage [evaluate]"]
    path = test_pipeline._write(folder, {**config, "output": "out2"})
    result = CliRunner().invoke(app, ["run", str(path), "-q"])
    assert result.exit_code == 1
    assert "error: rendering failed (in the pipeline stage [evaluate])" in result.output
