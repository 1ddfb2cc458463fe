"""Session 53: the pipeline's report is rendered with the fitted model, as the tutorial's is."""

import re

import test_pipeline
from microplex.pipeline import run_pipeline

tiny = test_pipeline.tiny


def test_the_pipeline_report_sets_the_model_conditions_apart_and_says_it_sampled(tiny):
    """Was: the evaluate stage rendered its report without the model, so the model's conditions (age, marr) were
    judged as targets in the verdict (the demo's worst score was a condition, 'quantile_error_max of marr'), the
    report had no Training section, and a population sampled down to evaluate.max_rows was not said to be one."""
    folder, config = tiny
    config = {**config, "generate": {"n": 150}, "evaluate": {"max_rows": 120, "pmse": False}}
    run_pipeline(config, progress=False)
    html = (folder / "out" / "report.html").read_text(encoding="utf-8")
    headings = re.findall(r"<h2[^>]*>(.*?)</h2>", html)
    assert "Conditions (given)" in headings and "Training" in headings  # old code: neither
    verdict = re.sub(r"<[^>]+>", " ", html[html.index("Verdict:"):html.index("Conditions are not judged")])
    assert "of the targets and the whole file" in verdict
    assert not re.search(r"of (age|marr) ", verdict)  # the conditions are not judged
    assert re.search(r"a random sample of 120 of the population(&#x27;|')s 150", html)
