"""Human output of the commands (not `--json`): tables with a header row, Chinese labels with
the code in brackets, `无记录 / no rows` for an empty result, department codes checked.

Light on purpose (no database, no config models): every command module imports it.
"""

from __future__ import annotations

import sys
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TextIO

from pipeline.errors import UsageError

NO_ROWS = "无记录 / no rows"


def width(text: str) -> int:
    """Columns a text takes on a terminal: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def _pad(text: str, columns: int) -> str:
    return text + " " * max(columns - width(text), 0)


def table(
    headers: Sequence[str], rows: Iterable[Sequence[Any]], stream: TextIO | None = None
) -> int:
    """Print a header row and the rows, columns aligned; `无记录 / no rows` when there are none.
    Returns the number of rows."""
    out = stream or sys.stdout
    cells = [["-" if v is None or v == "" else str(v) for v in row] for row in rows]
    if not cells:
        print(NO_ROWS, file=out)
        return 0
    widths = [max(width(h), *(width(r[i]) for r in cells)) for i, h in enumerate(headers)]
    for row in [list(headers), *cells]:
        line = "  ".join(_pad(v, widths[i]) for i, v in enumerate(row[:-1]))
        print(f"{line}  {row[-1]}" if line else row[-1], file=out)
    return len(cells)


def label(code: str | None, names: Mapping[str, str]) -> str:
    """`可修复 (repairable)`: the Chinese name with the code; `-` for none."""
    if code is None:
        return "-"
    name = names.get(code)
    return f"{name} ({code})" if name else code


def labels(codes: Iterable[str], names: Mapping[str, str]) -> str:
    return "、".join(names.get(c, c) for c in codes)


def counts_text(counts: Mapping[str, int], names: Mapping[str, str]) -> str:
    """`可修复 3，最短公示期内 5`: a count per code, in the order of `names`, then the rest."""
    order = [c for c in names if c in counts] + [c for c in counts if c not in names]
    return "，".join(f"{names.get(c, c)} {counts[c]}" for c in order) or "0"


def check_department(code: str | None, known: Mapping[str, str]) -> None:
    """An unknown `--department` is an error naming the known codes."""
    if code is not None and code not in known:
        listed = ", ".join(f"{c} {n}" for c, n in known.items())
        raise UsageError(
            f"未知的部门代码 {code!r}，可用：{listed} / unknown department {code!r} "
            f"(known: {', '.join(known)})"
        )
