"""Checks of options and config fields, shared by the configs' ``__post_init__`` and the CLI.

Every check raises :class:`OptionError` (a :class:`~deepcsp.errors.DeepCSPError`) whose one-line
message starts with the option's name, e.g.
``FieldConfig.resolution must be an integer in [2, 1024], got 0``. Configs name their fields
``ClassName.field``; the CLI renames those to the flag that set them
(``--config.field.resolution``, see :func:`deepcsp.cli.main.main`), and checks its own options
under their flag names (``--output``). Nothing here does any work on the data: the checks run
before it starts, so a refused command leaves no output behind.
"""

from __future__ import annotations

import functools
import math
import numbers
import os
import typing
from pathlib import Path
from typing import Any, Iterable, Sequence

from deepcsp.errors import DeepCSPError


class OptionError(DeepCSPError):
    """A bad value of one option or config field. (Not a ValueError on purpose: tyro turns
    ValueErrors raised while it builds a config into its own error box, losing the option.)

    Attributes
    ----------
    option : str
        ``--flag`` or ``ClassName.field``.
    detail : str
        The problem, without the option's name (``must be ... , got ...``).
    """

    def __init__(self, option: str, detail: str):
        self.option, self.detail = option, detail
        super().__init__(f"{option} {detail}")

    def renamed(self, option: str) -> "OptionError":
        """The same error under another name (the CLI's flag for a config field)."""
        return OptionError(option, self.detail)


def _show(value: Any) -> str:
    return repr(value) if not isinstance(value, Path) else repr(str(value))


def _interval(lo, hi, lo_open: bool = False, hi_open: bool = False) -> str:
    lo, hi = (f"{x:g}" if isinstance(x, float) else x for x in (lo, hi))
    if lo is not None and hi is not None:
        return f"in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
    if lo is not None:
        return f"{'>' if lo_open else '>='} {lo}"
    if hi is not None:
        return f"{'<' if hi_open else '<='} {hi}"
    return ""


# --- numbers -------------------------------------------------------------------------------------


def integer(name: str, value: Any, min: int | None = None, max: int | None = None) -> int:
    """``value`` as an ``int`` within ``[min, max]`` (either bound may be None); bools and floats
    are refused."""
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if ok:
        value = int(value)
        ok = (min is None or value >= min) and (max is None or value <= max)
    if not ok:
        where = _interval(min, max)
        raise OptionError(name, f"must be an integer{' ' + where if where else ''}, got {_show(value)}")
    return value


def auto_or_at_least(name: str, value: Any, minimum: int, maximum: int | None = None) -> int:
    """An integer in ``[0, maximum]`` that is 0 (automatic) or at least ``minimum``."""
    value = integer(name, value, 0, maximum)
    if 0 < value < minimum:
        raise OptionError(name, f"must be 0 (automatic) or at least {minimum}, got {value}")
    return value


def positive_int(name: str, value: Any, max: int | None = None) -> int:
    """An integer in ``[1, max]``."""
    return integer(name, value, 1, max)


def nonnegative_int(name: str, value: Any, max: int | None = None) -> int:
    """An integer in ``[0, max]``."""
    return integer(name, value, 0, max)


def finite_float(
    name: str,
    value: Any,
    min: float | None = None,
    max: float | None = None,
    min_open: bool = False,
    max_open: bool = False,
) -> float:
    """``value`` as a finite ``float`` within the given bounds (``min_open``/``max_open`` exclude
    them); NaN, inf, bools and strings are refused."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok:
        value = float(value)
        ok = math.isfinite(value)
        if ok and min is not None:
            ok = value > min if min_open else value >= min
        if ok and max is not None:
            ok = value < max if max_open else value <= max
    if not ok:
        where = _interval(min, max, min_open, max_open)
        raise OptionError(name, f"must be a finite number{' ' + where if where else ''}, got {_show(value)}")
    return value


def positive_float(name: str, value: Any, max: float | None = None) -> float:
    """A finite float in ``(0, max]``."""
    return finite_float(name, value, 0.0, max, min_open=True)


def choice(name: str, value: Any, options: Iterable[Any]) -> Any:
    """``value`` if it is one of ``options``."""
    options = tuple(options)
    if isinstance(value, bool) or value not in options:
        raise OptionError(name, f"must be one of {', '.join(repr(o) for o in options)}, got {_show(value)}")
    return value


def sequence(name: str, values: Any, check, min_len: int = 1, max_len: int | None = None) -> tuple:
    """A tuple whose items pass ``check(item_name, item)`` (one of the checks above, partially
    applied), with ``min_len <= len <= max_len`` items."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise OptionError(name, f"must be a sequence, got {_show(values)}")
    if len(values) < min_len or (max_len is not None and len(values) > max_len):
        raise OptionError(name, f"must hold {_interval(min_len, max_len).replace('in ', '')} items, got {len(values)}")
    return tuple(check(f"{name}[{i}]", v) for i, v in enumerate(values))


def ordered_pair(name: str, values: Any, check) -> tuple:
    """Two items ``(lo, hi)`` passing ``check`` with ``lo <= hi`` (a range)."""
    lo, hi = sequence(name, values, check, 2, 2)
    if lo > hi:
        raise OptionError(name, f"must be a range (low, high) with low <= high, got {_show(tuple(values))}")
    return lo, hi


# --- devices -------------------------------------------------------------------------------------


def device(name: str, value: Any, allow_auto: bool = False) -> str:
    """``cpu``, ``cuda`` or ``cuda:N`` (and ``auto`` where allowed) that exists on this machine:
    CUDA devices are checked with ``torch.cuda`` (torch is imported only for them)."""
    known = "'cpu', 'cuda', 'cuda:N' or 'auto'" if allow_auto else "'cpu', 'cuda' or 'cuda:N'"
    if not isinstance(value, str):
        raise OptionError(name, f"must be {known}, got {_show(value)}")
    if value == "cpu" or (allow_auto and value == "auto"):
        return value
    head, _, index = value.partition(":")
    if head != "cuda" or (index and not index.isdigit()):
        raise OptionError(name, f"must be {known}, got {_show(value)}")
    import torch

    if not torch.cuda.is_available():
        build = "a CPU build of torch" if torch.version.cuda is None else "no CUDA device is visible"
        raise OptionError(name, f"is {value!r} but CUDA is not available ({build}); use 'cpu'")
    if index and int(index) >= torch.cuda.device_count():
        raise OptionError(name, f"is {value!r} but this machine has {torch.cuda.device_count()} CUDA device(s)")
    return value


# --- paths ---------------------------------------------------------------------------------------


def _first_existing(path: Path) -> Path:
    p = path.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _writable_folder(name: str, path: Path, folder: Path) -> None:
    """``folder`` exists as a writable folder or can be made (its first existing ancestor is one)."""
    anc = _first_existing(folder)
    if not anc.is_dir():
        raise OptionError(name, f"{str(path)!r}: {str(anc)!r} is a file, not a folder")
    if not os.access(anc, os.W_OK | os.X_OK):
        what = "folder" if anc == folder.absolute() else "folder (to make the missing ones in)"
        raise OptionError(name, f"{str(path)!r}: {what} {str(anc)!r} is not writable")


def _same(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def output_path(name: str, path: Any, suffixes: Sequence[str] | None = None, inputs: Iterable[Any] = ()) -> Path:
    """An output file: ``suffixes`` (lower case, with the dot; None: any) include its suffix, it is
    not a folder, its folder exists and is writable or can be made, and it is none of ``inputs``
    (files or folders read by the same command)."""
    if not isinstance(path, (str, os.PathLike)) or str(path) == "":
        raise OptionError(name, f"must be a file path, got {_show(path)}")
    path = Path(path)
    if suffixes is not None and path.suffix.lower() not in suffixes:
        raise OptionError(
            name,
            f"{str(path)!r} has {'suffix ' + repr(path.suffix) if path.suffix else 'no suffix'}; "
            f"use {', '.join(suffixes)}",
        )
    if path.is_dir():
        raise OptionError(name, f"{str(path)!r} is a folder; give a file name")
    _writable_folder(name, path, path.parent)
    for other in inputs:
        if other is not None and _same(path, Path(other)):
            raise OptionError(name, f"{str(path)!r} is also an input of this command; choose another output")
    return path


def output_dir(name: str, path: Any, inputs: Iterable[Any] = ()) -> Path:
    """An output folder: a writable folder, or one that can be made; none of ``inputs``."""
    if not isinstance(path, (str, os.PathLike)) or str(path) == "":
        raise OptionError(name, f"must be a folder path, got {_show(path)}")
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OptionError(name, f"{str(path)!r} is a file, not a folder")
    _writable_folder(name, path, path)
    for other in inputs:
        if other is not None and _same(path, Path(other)):
            raise OptionError(name, f"{str(path)!r} is also an input of this command; choose another output folder")
    return path


def distinct_outputs(named: dict[str, Any]) -> None:
    """No two of the outputs ``{option: path}`` (None entries skipped) are the same file."""
    seen: dict[Path, str] = {}
    for opt, p in named.items():
        if p is None:
            continue
        key = Path(p).absolute()
        if key in seen:
            raise OptionError(opt, f"{str(p)!r} is also written as {seen[key]}; choose another path")
        seen[key] = opt


def input_file(path: Any, what: str = "input", suffixes: Sequence[str] | None = None) -> Path:
    """An existing regular file (the error names the file, as file errors do; ``what`` says which
    input it is, "" for none)."""
    path = Path(path)
    head = f"{what} file" if what else "file"
    if not path.exists():
        raise DeepCSPError(f"{head} not found", path)
    if path.is_dir():
        raise DeepCSPError(f"{what + ' ' if what else ''}is a folder, not a file", path)
    if suffixes is not None and path.suffix.lower() not in suffixes:
        raise DeepCSPError(
            f"{head} has {'suffix ' + repr(path.suffix) if path.suffix else 'no suffix'}; "
            f"expected {', '.join(suffixes)}",
            path,
        )
    return path


def input_dir(path: Any, what: str = "input") -> Path:
    """An existing folder."""
    path = Path(path)
    if not path.exists():
        raise DeepCSPError(f"{what} folder not found", path)
    if not path.is_dir():
        raise DeepCSPError(f"{what} is a file, not a folder", path)
    return path


# --- configs -------------------------------------------------------------------------------------


class Fields:
    """Checks of one config's fields, named ``ClassName.field``; each method reads the field,
    checks it and returns the value. Use in ``__post_init__``::

        f = Fields(self)
        f.integer("resolution", 2, 1024)
        f.literal("kind")
    """

    def __init__(self, config: Any):
        self.config = config
        self.prefix = type(config).__name__ + "."

    def _get(self, field: str) -> tuple[str, Any]:
        return self.prefix + field, getattr(self.config, field)

    def integer(self, field: str, min: int | None = None, max: int | None = None) -> int:
        return integer(*self._get(field), min, max)

    def auto_or_at_least(self, field: str, minimum: int, maximum: int | None = None) -> int:
        """0 (automatic) or an integer in ``[minimum, maximum]``."""
        return auto_or_at_least(*self._get(field), minimum, maximum)

    def optional_integer(self, field: str, min: int | None = None, max: int | None = None) -> int | None:
        name, value = self._get(field)
        return None if value is None else integer(name, value, min, max)

    def number(
        self,
        field: str,
        min: float | None = None,
        max: float | None = None,
        min_open: bool = False,
        max_open: bool = False,
    ) -> float:
        return finite_float(*self._get(field), min, max, min_open, max_open)

    def literal(self, field: str) -> Any:
        """One of the values of the field's ``Literal[...]`` annotation."""
        return choice(*self._get(field), literal_options(type(self.config), field))

    def device(self, field: str, allow_auto: bool = False) -> str:
        return device(*self._get(field), allow_auto)

    def flag(self, field: str) -> bool:
        name, value = self._get(field)
        if not isinstance(value, bool):
            raise OptionError(name, f"must be True or False, got {_show(value)}")
        return value

    def integers(
        self, field: str, min: int | None = None, max: int | None = None, min_len: int = 1, max_len: int | None = None
    ) -> tuple:
        return sequence(*self._get(field), lambda n, v: integer(n, v, min, max), min_len, max_len)

    def numbers(
        self,
        field: str,
        min: float | None = None,
        max: float | None = None,
        min_open: bool = False,
        min_len: int = 1,
        max_len: int | None = None,
    ) -> tuple:
        return sequence(*self._get(field), lambda n, v: finite_float(n, v, min, max, min_open), min_len, max_len)

    def number_range(
        self, field: str, min: float | None = None, max: float | None = None, min_open: bool = False
    ) -> tuple:
        return ordered_pair(*self._get(field), lambda n, v: finite_float(n, v, min, max, min_open))

    def integer_range(self, field: str, min: int | None = None, max: int | None = None) -> tuple:
        return ordered_pair(*self._get(field), lambda n, v: integer(n, v, min, max))


@functools.lru_cache(maxsize=None)
def literal_options(cls: type, field: str) -> tuple:
    """The values of ``Literal[...]`` in the annotation of ``cls.field`` (empty if it is none)."""
    hint = typing.get_type_hints(cls)[field]
    return tuple(typing.get_args(hint)) if typing.get_origin(hint) is typing.Literal else ()
