"""Reading calibration targets from a YAML document (a path or the text): :meth:`Targets.from_yaml`.

The document is untrusted data: it is read with :func:`microplex._files.load_yaml` (the safe loader,
refusing a key given twice, such as a second ``targets:`` list or ``{value: 100, value: 999}``) and
every key, field and value is checked before a :class:`~microplex.calibration.targets.Target` is built.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from microplex._errors import DataValidationError
from microplex._files import load_yaml

from .filters import _got
from .targets import Target, _check_distinct_names, _check_file

if TYPE_CHECKING:
    from .targets import Targets


def targets_from_yaml(cls: type[Targets], source: str | Path) -> Targets:
    """Builds ``cls`` (:class:`Targets` or a subclass) from YAML; see :meth:`Targets.from_yaml`."""
    import yaml

    if _looks_like_path(source):
        p = _check_file(source)
        src = f"Targets file {str(p)!r}"
        try:
            text = p.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise DataValidationError(f"{src} is not UTF-8 text: {exc}") from None
    elif isinstance(source, str):
        src, text = "Targets YAML", source
    else:
        raise DataValidationError(f"Targets.from_yaml needs a path or YAML text. Got {type(source).__name__} instead.")
    try:
        doc = load_yaml(text)
    except yaml.YAMLError as exc:
        raise DataValidationError(f"{src} is not valid safe YAML (no Python tags allowed): {exc}") from None
    if doc is None:
        raise DataValidationError(f"{src} is empty; expected 'targets' and/or 'margins' lists.")
    if not isinstance(doc, dict):
        raise DataValidationError(
            f"{src} must be a mapping with 'targets' and/or 'margins' lists. Got {type(doc).__name__} "
            f"{_got(doc)} instead (is the path right?)."
        )
    unknown = [k for k in doc if k not in ("targets", "margins")]
    if unknown:
        raise DataValidationError(f"{src} has unknown keys {unknown}; expected 'targets' and/or 'margins'.")
    out: list[Target] = []
    fields = {"value", "aggregate", "variable", "filter", "filters", "tolerance", "importance", "entity", "name"}
    for i, item in enumerate(_yaml_list(doc, "targets", src)):
        where = f"{src}, targets[{i}]"
        if not isinstance(item, dict):
            raise DataValidationError(f"{where} must be a mapping of target fields. Got {_got(item)} instead.")
        bad = [k for k in item if k not in fields]
        if bad:
            raise DataValidationError(f"{where} has unknown fields {bad}; expected some of {sorted(fields)}.")
        if "value" not in item:
            raise DataValidationError(f"{where} needs a 'value'.")
        item = dict(item)
        flt = _pop_filter(item, where)
        try:
            out.append(Target(filters=flt, **item))
            out[-1].validate()
        except DataValidationError as exc:
            raise DataValidationError(f"{where}: {exc}") from None
    shared = {"aggregate", "variable", "filters", "filter", "tolerance", "importance", "entity"}
    for i, item in enumerate(_yaml_list(doc, "margins", src)):
        where = f"{src}, margins[{i}]"
        if not isinstance(item, dict):
            raise DataValidationError(f"{where} must be a mapping with 'by' and 'values'. Got {_got(item)} instead.")
        bad = [k for k in item if k not in shared | {"by", "values"}]
        if bad or "by" not in item or "values" not in item:
            raise DataValidationError(
                f"{where} needs 'by' and 'values' (and optionally {sorted(shared)}). Got keys {list(item)}."
            )
        item = dict(item)
        by = item.pop("by")
        values = item.pop("values")
        if "filter" in item or "filters" in item:
            item["filters"] = _pop_filter(item, where)
        if isinstance(by, str):
            cols: tuple = (by,)
        elif isinstance(by, list) and by and all(isinstance(c, str) for c in by):
            cols = tuple(by)
        else:
            raise DataValidationError(f"{where}: 'by' must be a column name or a list of them. Got {_got(by)} instead.")
        try:
            if isinstance(values, dict):
                pairs = list(values.items())
            elif isinstance(values, list) and all(isinstance(r, list) and len(r) == len(cols) + 1 for r in values):
                pairs = [(tuple(row[:-1]) if len(cols) > 1 else row[0], row[-1]) for row in values]
            else:
                raise DataValidationError(
                    f"'values' must be a mapping or a list of rows [{', '.join(cols)}, value]. Got {_got(values)} instead."
                )
            pairs = [(tuple(c) if isinstance(c, list) else c, v) for c, v in pairs]
            key = cols[0] if len(cols) == 1 else cols
            out.extend(cls.from_margins({key: pairs}, **item))  # type: ignore[dict-item]
        except DataValidationError as exc:
            raise DataValidationError(f"{where}: {exc}") from None
    if not out:
        raise DataValidationError(f"{src} holds no targets.")
    _check_distinct_names(out, src, explicit=[t.get("name") if isinstance(t, dict) else None for t in _yaml_list(doc, "targets", src)])
    return cls(out)


def _pop_filter(item: dict, where: str) -> Any:
    """Pops an entry's filter from ``item``, given as ``filter`` or ``filters`` (two names of one field; None when
    neither is there).

    Raises
    ------
    DataValidationError
        Naming the entry ``where`` when both are given: which one is meant is not known (one silently replaced the
        other, dropping its conditions).
    """
    if "filter" in item and "filters" in item:
        raise DataValidationError(
            f"{where}: give 'filter' or 'filters', not both (two names of one field). Got filter "
            f"{_got(item['filter'])} and filters {_got(item['filters'])}."
        )
    return item.pop("filter" if "filter" in item else "filters", None)


def _looks_like_path(source: str | Path) -> bool:
    """A Path, or a one-line string naming an existing file or ending in .yaml/.yml (else: YAML text)."""
    if isinstance(source, Path):
        return True
    if not isinstance(source, str) or "\n" in source or len(source) > 4096:
        return False
    return Path(source).is_file() or (":" not in source and Path(source).suffix.lower() in (".yaml", ".yml"))


def _yaml_list(doc: dict, key: str, src: str) -> list:
    items = doc.get(key)
    if items is None:
        return []
    if not isinstance(items, list):
        raise DataValidationError(f"{src}: {key!r} must be a list. Got {_got(items)} instead.")
    return items
