"""Helpers shared by CLI commands (the edge of the system: printing and progress live here)."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from deepcsp.errors import DeepCSPError


def need_file(path: Path, what: str = "input") -> Path:
    path = Path(path)
    if not path.exists():
        raise DeepCSPError(f"{what} file not found", path)
    return path


def echo(msg: str = "") -> None:
    print(msg, file=sys.stdout, flush=True)


def table(rows: list[tuple[str, str]], title: str | None = None) -> str:
    w = max((len(k) for k, _ in rows), default=0)
    lines = [title] if title else []
    lines += [f"  {k.ljust(w)}  {v}" for k, v in rows]
    return "\n".join(lines)


def fmt(x: float) -> str:
    if x != x:  # NaN
        return "n/a"
    return f"{x:.6g}"


@contextmanager
def progress_printer(prefix: str, quiet: bool = False) -> Iterator[Callable[[dict], None]]:
    """A progress callback for the library's ``{"stage": text}`` and ``{"task", "done", "total"}``
    records: stages are printed as lines, tasks drawn as tqdm bars (one per task, closed at the end)."""
    from tqdm.auto import tqdm

    bars: dict = {}

    def progress(rec: dict) -> None:
        if quiet:
            return
        if "stage" in rec:
            tqdm.write(f"{prefix}: {rec['stage']}", file=sys.stderr)
        elif "task" in rec:
            bar = bars.get(rec["task"])
            if bar is None:  # first seen after its first chunk: timed from here, so its rate leaves that chunk out
                bar = bars[rec["task"]] = tqdm(
                    total=rec["total"],
                    initial=rec["done"],
                    desc=rec["task"],
                    dynamic_ncols=True,
                    leave=False,
                    file=sys.stderr,
                )
            bar.total = rec["total"]
            bar.n = rec["done"]
            bar.refresh()
            if rec["done"] >= rec["total"]:
                bars.pop(rec["task"]).close()

    try:
        yield progress
    finally:
        for bar in bars.values():
            bar.close()
