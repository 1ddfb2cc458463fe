"""Session 53: the prose of the documentation against what the code does.

The API reference (docs/reference/api.md) renders each object's docstring: every parameter of the
signature must be described there, or the reference page omits it.
"""

from __future__ import annotations

import inspect
import re


def _documented(doc: str) -> set[str]:
    """Names described in the numpydoc ``Parameters`` section of ``doc`` (``a, b : type`` lines too)."""
    match = re.search(r"Parameters\n-+\n(.*?)(?:\n\S[^\n]*\n-+\n|\Z)", doc, re.S)
    if not match:
        return set()
    names: set[str] = set()
    for line in match.group(1).splitlines():
        # "name : type" lines, and "a, b, c" lines naming parameters described together
        head = re.match(r"^(\w+(?:\s*,\s*\w+)*)\s*(?::|$)", line)
        if head:
            names.update(n.strip() for n in head.group(1).split(","))
    return names


def test_evaluate_docstring_documents_every_parameter():
    """Was: ``random_state`` (the deprecated name of ``seed``) was in the signature of ``evaluate`` but not in
    its Parameters section, so the API reference did not say what it does."""
    from microplex.evaluation import evaluate

    params = [p for p in inspect.signature(evaluate).parameters]
    missing = [p for p in params if p not in _documented(inspect.getdoc(evaluate) or "")]
    assert missing == []


_MODULES = ["microplex", "microplex.calibration", "microplex.evaluation", "microplex.scale", "microplex.fusion",
            "microplex.households", "microplex.synthesis", "microplex.pipeline", "microplex.io"]


def _public_callables():
    """(label, function, docstring) of every public function, class and public method of the API modules."""
    import importlib

    seen, out = set(), []
    for module in _MODULES:
        mod = importlib.import_module(module)
        for name in getattr(mod, "__all__", []):
            obj = getattr(mod, name, None)
            if obj is None or id(obj) in seen:
                continue
            seen.add(id(obj))
            if inspect.isclass(obj):
                out.append((f"{module}.{name}", obj.__init__, inspect.getdoc(obj) or ""))
                for meth, f in vars(obj).items():
                    f = getattr(f, "__func__", f)
                    if not meth.startswith("_") and inspect.isfunction(f):
                        out.append((f"{module}.{name}.{meth}", f, inspect.getdoc(f) or ""))
            elif callable(obj):
                out.append((f"{module}.{name}", obj, inspect.getdoc(obj) or ""))
    return out


def test_every_parameters_section_describes_every_parameter():
    """A docstring with a Parameters section describes every parameter of its signature (the API reference
    renders it). Was: ``pmse`` described neither its data frames, weights nor seed, ``SparseCalibrator.frontier``
    not its candidates, targets, weight and household columns."""
    gaps = {}
    for label, fn, doc in _public_callables():
        documented = _documented(doc)
        if not documented:  # no Parameters section (a one-line helper, a dataclass): nothing is claimed
            continue
        sig = inspect.signature(fn)
        params = [n for n, q in sig.parameters.items() if n not in ("self", "cls")
                  and q.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)]
        missing = [n for n in params if n not in documented]
        if missing:
            gaps[label] = missing
    assert gaps == {}
