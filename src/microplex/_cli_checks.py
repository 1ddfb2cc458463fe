"""The command line's conventions: option checks, one-line errors and exit statuses.

:func:`run_body` runs a verb's body: a bad input (any :class:`~microplex.MicroplexError` or
``OSError``) becomes one ``error: <message>`` line on stderr and status 1, an unexpected
exception one ``error: internal error ...`` line and status 2; a warning is one ``warning: ...``
line. :class:`OneLineGroup` does the same for click's own usage errors. The ``check_*`` and
``parse_*`` helpers check option values before a verb does any work. A verb's ``flags`` map the library's
parameters to the options that gave them, so that the library's messages name the option the user typed
(``--max-records``, not ``max_records``; :func:`microplex._params.flags`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

try:  # recent typer ships its own copy of click; its usage errors are that copy's classes
    from typer._click import exceptions as _click_errors
except ImportError:  # pragma: no cover - typer on the real click
    from click import exceptions as _click_errors

from ._errors import DataValidationError, MicroplexError
from ._files import load_json
from ._params import check_names
from ._params import flags as flag_names
from .io import check_replaceable

logger = logging.getLogger("microplex.cli")

#: Exit status of a bad input and of an internal error.
EXIT_BAD_INPUT, EXIT_INTERNAL = 1, 2


def one_line(text: str) -> str:
    """``text`` on one line (runs of whitespace, newlines included, become one space)."""
    return " ".join(str(text).split())


class OneLineUsageError(_click_errors.ClickException):
    """A command-line usage error shown as one ``error:`` line with the bad-input status."""

    exit_code = EXIT_BAD_INPUT

    def show(self, file=None) -> None:  # noqa: D102 - click API
        typer.echo(f"error: {one_line(self.format_message())}", err=True)


class OneLineGroup(TyperGroup):
    """Turns click's usage errors (bad option type, unknown option, missing argument) into one line."""

    def _one_line_usage(self, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except _click_errors.NoArgsIsHelpError as exc:  # the help, and status 1 (a usage error): 2 means a bug
            exc.exit_code = EXIT_BAD_INPUT
            raise
        except _click_errors.UsageError as exc:
            raise OneLineUsageError(exc.format_message()) from None

    def make_context(self, *args, **kwargs):  # noqa: D102 - click API
        return self._one_line_usage(lambda: super(OneLineGroup, self).make_context(*args, **kwargs))

    def invoke(self, ctx):  # noqa: D102 - click API
        return self._one_line_usage(lambda: super(OneLineGroup, self).invoke(ctx))


class OneLineCommand(TyperCommand):
    """A verb whose options are each given at most once: click keeps the last of ``--seed 1 --seed 2`` (or of
    ``--targets re74 --targets re78``, which fitted ``re78`` alone) and drops the others unsaid. An option given
    more than once is refused, naming it, before any work; an option that takes a list (``--set``) may repeat."""

    def parse_args(self, ctx, args):  # noqa: D102 - click API
        if not ctx.resilient_parsing:  # shell completion parses partial lines: nothing to refuse there
            _, _, order = self.make_parser(ctx).parse_args(args=list(args))  # the parser consumes its list
            refuse_repeated_options(order)
        return super().parse_args(ctx, args)


def refuse_repeated_options(order: list[Any]) -> None:
    """Raises :class:`OneLineUsageError` naming the first option that ``order`` (the parameters as click's parser
    met them on the command line, once per occurrence) holds more than once, unless it takes a list (``multiple``)
    or counts its occurrences (``count``), or acts at once (``is_eager``: ``--help``). ``--stream --no-stream`` are one
    option given twice."""
    seen: set[str] = set()
    for param in order:
        if (getattr(param, "multiple", False) or getattr(param, "count", False) or getattr(param, "is_eager", False)
                or not getattr(param, "opts", None)):
            continue
        if param.name in seen:
            spelled = "/".join(max(opts, key=len) for opts in (param.opts, param.secondary_opts) if opts)
            raise OneLineUsageError(f"The '{spelled}' option is given more than once; give it once (only the "
                                    "last value would be used).")
        seen.add(param.name)


def split_columns(values: str, name: str = "columns") -> list[str]:
    """A comma list of column names: no empty item, no duplicate."""
    items = [v.strip() for v in values.split(",")] if values.strip() else []
    if any(not v for v in items) or len(set(items)) != len(items):
        raise DataValidationError(
            f"The '--{name}' option must be a comma-separated list of distinct column names. Got {values!r} instead.")
    return check_names(items, name)


def numeric_option():
    """The ``--numeric`` option of the verbs that read tables (:func:`microplex.io.read_table`'s ``numeric``)."""
    return typer.Option(
        "", help="Comma-separated columns read as numbers whatever the file writes: integer amounts padded with "
                 "leading zeros (a fixed-width export's 0009189), otherwise read as codes (text).")


def quiet_option():
    """The ``-q``/``--quiet`` option every verb takes."""
    return typer.Option(False, "--quiet", "-q", help="No progress bars and no summary (warnings and errors only).")


def verbose_option():
    """The ``-v``/``--verbose`` option every verb takes."""
    return typer.Option(False, "--verbose", "-v", help="Log progress details (and the traceback of an internal error).")


def run_body(fn: Callable[[Callable[[str], None]], None], quiet: bool = False, verbose: bool = False,
             flags: Mapping[str, str] | None = None) -> None:
    """Runs a command body: a bad input becomes one ``error:`` line and status 1, a bug status 2.

    ``fn`` receives ``say``, which prints a summary line unless ``quiet``. ``flags`` maps the parameters the body
    passes to the library to the options that gave them (``{"max_records": "--max-records"}``): the library's
    errors and warnings name those options.
    """
    try:
        if quiet and verbose:
            raise DataValidationError("The '--quiet' and '--verbose' options exclude each other; give one.")
        if verbose:
            logging.getLogger("microplex").setLevel(logging.INFO)
        with warnings.catch_warnings(), flag_names(flags or {}):  # restores showwarning afterwards
            warnings.showwarning = show_warning
            fn((lambda text: None) if quiet else typer.echo)
    except (typer.Exit, typer.Abort, _click_errors.ClickException, KeyboardInterrupt):
        raise
    except (MicroplexError, OSError) as exc:
        notes = "".join(f" ({one_line(note)})" for note in getattr(exc, "__notes__", []))
        typer.secho(f"error: {one_line(exc) or type(exc).__name__}{notes}", err=True, fg="red")
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except Exception as exc:  # noqa: BLE001 - a bug: one line, a distinct status, the traceback in the log
        logger.info("Internal error", exc_info=True)
        typer.secho(f"error: internal error ({type(exc).__name__}: {one_line(exc)[:300]}); this is a bug in "
                    "microplex, please report it (--verbose shows the traceback).", err=True, fg="red")
        raise typer.Exit(EXIT_INTERNAL) from None


@contextlib.contextmanager
def writing(path: Path, name: str) -> Iterator[None]:
    """Names the output a failed write was writing: an ``OSError`` from the writer (a full disk's names no file, or
    a temporary one) gets the note "writing the 'out' output 'w.parquet'", which :func:`run_body` prints on the
    error line."""
    try:
        yield
    except OSError as exc:
        exc.add_note(f"writing the {name!r} output {str(path)!r}")
        raise


def show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                 file: Any = None, line: str | None = None) -> None:
    """Shows a warning as one line ``warning: <category>: <message>`` on stderr (a verb's warnings: an
    ``ExtrapolationWarning``, a ``PrivacyRiskWarning``), without the source file and code line Python adds."""
    typer.echo(f"warning: {category.__name__}: {one_line(message)}", err=True)


def check_input(path: Path | None, name: str) -> Path | None:
    """An input file or folder that exists."""
    if path is not None and not path.exists():
        raise DataValidationError(f"The {name!r} input {str(path)!r} does not exist.")
    return path


def check_has_records(frame: Any, path: Path, name: str) -> Any:
    """``frame``, the table read from the input ``path`` (the verb's ``name`` for it), when it holds a record; else
    :class:`DataValidationError` naming the input and the file (the library named its parameter, "records is empty",
    "candidates is empty", "synthetic_df is empty", which the command line's user never typed)."""
    if len(frame) == 0:
        raise DataValidationError(f"The {name!r} input {str(path)!r} holds no records (its columns without a row); "
                                  "expected at least one record.")
    return frame


#: What a file suffix stands for, in check_output's messages.
_FORMATS = {".parquet": "Parquet", ".csv": "CSV", ".html": "HTML", ".mpx": "a model file (a zip archive)"}
PARQUET = (".parquet", ".pq")


def check_output(path: Path, name: str, inputs: list[Path | None], *, folder: bool = False,
                 suffixes: tuple[str, ...] = (), outputs: dict[str, Path] | None = None) -> Path:
    """An output path that is no input (nor inside one, nor holding one) nor another of the command's
    ``outputs`` (by name), and whose folder can be created; a file's name ends in one of ``suffixes``
    when they are given (the format written), and an existing file output is a regular file
    (:func:`~microplex.io.check_replaceable`: never a device such as ``/dev/null``, which the rename
    onto it would replace)."""
    target = path.expanduser().resolve()
    named = [(src, f"the input {str(src)!r}") for src in inputs] + [
        (other, f"the {key!r} output {str(other)!r}") for key, other in (outputs or {}).items()]
    for src, what in named:
        if src is None:
            continue
        s = src.expanduser().resolve()
        if target == s or s in target.parents or (folder and target in s.parents):
            raise DataValidationError(
                f"The {name!r} output {str(path)!r} would overwrite {what}; choose another path.")
    if not folder and target.is_dir():
        raise DataValidationError(f"The {name!r} output {str(path)!r} is a folder; give a file path.")
    if not folder and suffixes and path.suffix.lower() not in suffixes:
        raise DataValidationError(
            f"The {name!r} output {str(path)!r} must end in {' or '.join(suffixes)}: the command writes "
            f"{_FORMATS.get(suffixes[0], suffixes[0])}.")
    if folder and target.exists() and not target.is_dir():
        raise DataValidationError(f"The {name!r} output {str(path)!r} is a file; give a folder path.")
    if not folder:
        check_replaceable(path, name)
    existing = next((a for a in target.parents if a.exists()), None)
    if existing is None or not existing.is_dir() or not os.access(existing, os.W_OK):
        raise DataValidationError(f"Cannot create the {name!r} output {str(path)!r}: {str(existing)!r} is not a "
                                  "writable folder.")
    if folder and target.is_dir() and not os.access(target, os.W_OK | os.X_OK):  # its files are written into it
        raise DataValidationError(f"Cannot write the {name!r} output {str(path)!r}: the existing folder "
                                  f"{str(target)!r} is not a writable folder.")
    return path


def parse_count(text: str) -> int:
    """``--n``: a record count in [0, 2**53], written as an int or an integral number such as ``1e9``."""
    stripped = str(text).strip()
    try:
        number = int(stripped) if stripped.lstrip("+-").isdigit() else float(stripped)
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or not float(number).is_integer() or not 0 <= number <= 2**53:
        raise OneLineUsageError(f"The '--n' option must be an int in [0, 2**53] (1e9 is accepted). Got {stripped!r} instead.")
    return int(number)


def parse_value(text: str):
    """A ``--set`` value: an int, a float, true/false, a JSON list or table, else the string; a value in quotes
    (``'2024'``, ``"1e3"``) is the string inside them, as a pipeline file writes a string.

    >>> parse_value("1000"), parse_value("0.5"), parse_value("'2024'"), parse_value('"out"'), parse_value("out")
    (1000, 0.5, '2024', 'out', 'out')
    """
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if text.startswith(("[", "{")):
        try:
            return load_json(text, f"The --set value {text!r}")
        except ValueError as exc:
            raise DataValidationError(f"The --set value {text!r} is not a valid JSON list or table: {exc}") from exc
    return text


def parse_overrides(items: list[str]) -> dict:
    out = {}
    for item in items:
        if "=" not in item:
            raise DataValidationError(f"--set expects KEY=VALUE (e.g. generate.n=1000). Got {item!r}.")
        key, value = item.split("=", 1)
        if key.strip() in out:
            raise DataValidationError(f"--set gives {key.strip()!r} twice.")
        out[key.strip()] = parse_value(value.strip())
    return out


def parse_bounds(text: str) -> tuple[float, float] | None:
    """``--bounds "lo,hi"``: two finite floats with 0 <= lo < hi, or '' for none."""
    if not text.strip():
        return None
    parts = text.split(",")
    try:
        lo, hi = (float(p) for p in parts) if len(parts) == 2 else (math.nan, math.nan)
    except ValueError:
        lo = hi = math.nan
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 <= lo < hi):
        raise DataValidationError(
            f"The '--bounds' option must be 'lo,hi', two finite numbers with 0 <= lo < hi. Got {text!r} instead.")
    return lo, hi


def check_weight_name(weight: str) -> None:
    """A ``--weight`` column name: not empty."""
    if not weight.strip():
        raise DataValidationError("The '--weight' option must be a column name. Got '' instead.")


def parse_epochs(text: str) -> int | str:
    """``--epochs``: ``auto`` (chosen from the data size) or an int >= 1."""
    from .synthesis._schedule import check_epochs

    value: object = text
    if isinstance(text, str) and text.strip().lstrip("+").isdigit():
        value = int(text.strip())
    return check_epochs(value, "--epochs")
