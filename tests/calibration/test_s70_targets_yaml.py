"""Session 70: a YAML targets entry that gives both ``filter`` and ``filters`` (two names of one field) is refused.

Before, a ``targets:`` entry with both raised a raw ``TypeError: Target() got multiple values for keyword argument
'filters'`` (with ``filter: {}``, ``filters`` was used silently), and in a ``margins:`` entry ``filter`` silently
replaced ``filters``: ``{filter: {marr: 1}, filters: {marr: 0}}`` gave ``count[marr == 1 & black == 0]``, the
``marr == 0`` condition gone.
"""

from __future__ import annotations

import re

import pytest

from microplex._errors import DataValidationError
from microplex.calibration import Targets

_TARGETS_BOTH = "targets:\n- value: 5\n  filter: {black: 0}\n- value: 10\n  filter: {black: 1}\n  filters: {hisp: 1}\n"
_TARGETS_EMPTY_FILTER = "targets:\n- value: 10\n  filter: {}\n  filters: {hisp: 1}\n"
_MARGINS_BOTH = ("margins:\n- by: black\n  values: {0: 1500, 1: 500}\n  filters: {hisp: 0}\n"
                 "- by: black\n  values: {0: 1500, 1: 500}\n  filter: {marr: 1}\n  filters: {marr: 0}\n")


@pytest.mark.parametrize("doc, where", [(_TARGETS_BOTH, "targets[1]"), (_TARGETS_EMPTY_FILTER, "targets[0]"),
                                        (_MARGINS_BOTH, "margins[1]")], ids=["targets", "empty-filter", "margins"])
def test_filter_and_filters_together_are_refused_naming_the_entry(doc, where, tmp_path):
    """Before: TypeError (targets), 'filters' used silently (targets, empty 'filter'), 'filter' used silently and
    the 'filters' condition dropped (margins)."""
    entry = re.escape(where)
    with pytest.raises(DataValidationError, match=rf"Targets YAML, {entry}: give 'filter' or 'filters', not both"):
        Targets.from_yaml(doc)
    path = tmp_path / "t.yaml"
    path.write_text(doc)
    with pytest.raises(DataValidationError, match=rf"t\.yaml', {entry}: give 'filter' or 'filters', not both"):
        Targets.from_yaml(path)


@pytest.mark.parametrize("section", ["targets", "margins"])
def test_filter_or_filters_alone_give_the_same_targets(section):
    """Either name alone is read as before: the same targets, every condition kept."""
    if section == "targets":
        docs = [f"targets:\n- value: 10\n  {key}: {{black: 1, hisp: 0}}\n" for key in ("filter", "filters")]
        names = ["count[black == 1 & hisp == 0]"]
    else:
        docs = [f"margins:\n- by: black\n  values: {{0: 1500, 1: 500}}\n  {key}: {{marr: 0}}\n"
                for key in ("filter", "filters")]
        names = ["count[marr == 0 & black == 0]", "count[marr == 0 & black == 1]"]
    a, b = (Targets.from_yaml(d) for d in docs)
    assert a.names == b.names == names
    assert [t.filters for t in a] == [t.filters for t in b] and [t.value for t in a] == [t.value for t in b]
