"""Benchmark hostile files: how fast and in how little memory they are refused or streamed.

    .venv/bin/python bench/bench_hostile.py --gib 2 --rows 350000

Workbooks (built once under bench/out/hostile/, streaming, with deflate):

- ``cell_bomb``: a real snapshot workbook whose sheet holds one cell of GIB GiB (~2 MB file);
- ``sst_bomb``: the same with GIB GiB of shared strings;
- ``wide_row``: a row of 60 million cells (``<c/>``).

Each is given to `credit-repair sync --file` in a fresh process (SQLite), twice: with the
shipped limits (the zip directory alone refuses them: compression ratio), and with the
ratio and size limits lifted (``relaxed``), so the streaming scan must find the cell or
the row. `seconds` is the sync command (start-up and imports excluded), peak RSS the whole
child's. Baseline: the same command on the same workbook before it was made a bomb (3
rows, accepted). Targets: refused in under 1 s and under 200 MB.

The price of the check on an honest workbook (``xlsx_check``): `check_xlsx` on a snapshot
of XLSX_ROWS generated penalties, against openpyxl reading every row of it (read-only
mode, as the sync does) as the baseline.

JSON (``json_stream``): a penalty export of ROWS records as one JSON object (~600 bytes a
record), read with `read_snapshot` (headers, then every row) — against ``json.load`` of the
same file followed by the same iteration (the old way) as the baseline.

One JSON line per measurement on stdout (see README, Benchmarks).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.common import OUT_DIR, emit, note, report, run_child  # noqa: E402

SCRIPT = str(Path(__file__).resolve())
FOLDER = OUT_DIR / "hostile"
SHEET = "xl/worksheets/sheet1.xml"
SHARED = "xl/sharedStrings.xml"
CHUNK = 1 << 20
NOW = "2026-11-27T09:00"
MAX_SECONDS = 1.0
MAX_RSS_MB = 200.0
RELAXED = {
    "CREDIT_REPAIR_FILES__XLSX_MAX_RATIO": "1000000",
    "CREDIT_REPAIR_FILES__XLSX_MAX_UNPACKED_MB": "1000000",
    "CREDIT_REPAIR_FILES__XLSX_MAX_SHARED_STRINGS_MB": "1000000",
}
HEAD = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
)
TAIL = b"</sheetData></worksheet>"


# --------------------------------------------------------------------------- files


def _base(path: Path) -> Path:
    import openpyxl

    from pipeline.sync.samplegen import PENALTY_HEADERS, penalties

    if not path.exists():
        book = openpyxl.Workbook()
        ws = book.active
        ws.append(PENALTY_HEADERS)
        for row in penalties(3, 7):
            ws.append([row.get(h, "") for h in PENALTY_HEADERS])
        book.save(path)
    return path


def _repeated(head: bytes, unit: bytes, total: int, tail: bytes) -> Iterator[bytes]:
    yield head
    block = unit * (CHUNK // len(unit))
    whole, rest = divmod(total, len(block))
    for _ in range(whole):
        yield block
    yield block[:rest]
    yield tail


def _bomb(base: Path, path: Path, part: str, chunks: Iterator[bytes]) -> Path:
    if path.exists():
        return path
    tmp = path.with_suffix(".part")
    with zipfile.ZipFile(base) as old, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as new:
        for info in old.infolist():
            if info.filename != part:
                new.writestr(info, old.read(info))
        with new.open(part, "w", force_zip64=True) as out:
            for chunk in chunks:
                out.write(chunk)
    tmp.replace(path)
    return path


def build(gib: float) -> dict[str, Path]:
    FOLDER.mkdir(parents=True, exist_ok=True)
    base = _base(FOLDER / "base.xlsx")
    size = int(gib * (1 << 30))
    tag = f"{gib:g}gib"
    row = b'<row r="1"><c t="inlineStr"><is><t>CF_WSH</t></is></c></row><row r="2"><c t="inlineStr"><is><t>'
    sst = b'<?xml version="1.0" encoding="UTF-8"?>\n<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><si><t>'
    files = {
        "cell_bomb": _bomb(
            base,
            FOLDER / f"cell-{tag}.xlsx",
            SHEET,
            _repeated(HEAD + row, b"A", size, b"</t></is></c></row>" + TAIL),
        ),
        "sst_bomb": _bomb(
            base,
            FOLDER / f"sst-{tag}.xlsx",
            SHARED,
            _repeated(sst, b"B", size, b"</t></si></sst>"),
        ),
        "wide_row": _bomb(
            base,
            FOLDER / "wide-60m.xlsx",
            SHEET,
            _repeated(HEAD + b'<row r="1">', b"<c/>", 60_000_000 * 4, b"</row>" + TAIL),
        ),
    }
    for name, path in files.items():
        note(f"{name}: {path.name}, {path.stat().st_size / 1048576:.1f} MB on disk")
    return {"base": base, **files}


def _json_file(rows: int) -> Path:
    from pipeline.sync.samplegen import penalties

    path = FOLDER / f"penalties-{rows}.json"
    if not path.exists():
        FOLDER.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part")
        with tmp.open("w", encoding="utf-8") as out:
            out.write(f'{{"total": {rows}, "data": [')
            for i, row in enumerate(penalties(rows, 7)):
                out.write(("," if i else "") + json.dumps(row, ensure_ascii=False))
            out.write("]}")
        tmp.replace(path)
    return path


# --------------------------------------------------------------------------- children


def child_sync(path: str) -> None:
    """`credit-repair sync --file PATH` on a fresh SQLite database; times the command."""
    import contextlib
    import io

    from pipeline.cli import main

    config = str(REPO / "config")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["CREDIT_REPAIR_DATABASE_URL"] = f"sqlite:///{tmp}/bench.db"
        with contextlib.redirect_stderr(io.StringIO()):
            main(["--config", config, "init"])
        err = io.StringIO()
        start = time.perf_counter()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(["--config", config, "--now", NOW, "sync", "--file", path])
        seconds = time.perf_counter() - start
    report(seconds=seconds, code=code, message=err.getvalue().strip()[:300])


def child_check(path: str) -> None:
    import openpyxl

    from pipeline.office.archive import XlsxLimits, check_xlsx

    start = time.perf_counter()
    check_xlsx(Path(path), XlsxLimits())
    seconds = time.perf_counter() - start
    start = time.perf_counter()
    book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    rows = sum(1 for _ in book.worksheets[0].iter_rows(values_only=True))
    book.close()
    report(seconds=seconds, baseline=time.perf_counter() - start, rows=rows)


def _xlsx_file(rows: int) -> Path:
    import openpyxl

    from pipeline.sync.samplegen import PENALTY_HEADERS, penalties

    path = FOLDER / f"penalties-{rows}.xlsx"
    if not path.exists():
        FOLDER.mkdir(parents=True, exist_ok=True)
        book = openpyxl.Workbook(write_only=True)
        ws = book.create_sheet("data")
        ws.append(PENALTY_HEADERS)
        for row in penalties(rows, 7):
            ws.append([row.get(h, "") for h in PENALTY_HEADERS])
        book.save(path.with_suffix(".part"))
        path.with_suffix(".part").replace(path)
    return path


def measure_check(rows: int) -> None:
    path = _xlsx_file(rows)
    child = run_child([SCRIPT, "--child", "check", str(path)])
    emit(
        "xlsx_check",
        int(child.report["rows"]),
        float(child.report["seconds"]),
        float(child.report["baseline"]),
        child.peak_rss_mb,
        "-",
        file_mb=round(path.stat().st_size / 1048576, 1),
    )


def child_json(path: str, whole: bool) -> None:
    """Headers and every row of a JSON snapshot: streamed, or (baseline) json.load first."""
    from pipeline.sync.sources.base import pick_records, record_headers, record_rows
    from pipeline.sync.sources.files import read_snapshot

    start = time.perf_counter()
    if whole:
        with open(path, encoding="utf-8") as stream:
            records = pick_records(json.load(stream), None, path)
        headers = record_headers(records)
        rows = sum(1 for _ in record_rows(records, headers))
    else:
        with read_snapshot(Path(path)) as snapshot:
            rows = sum(1 for _ in snapshot)
    report(seconds=time.perf_counter() - start, rows=rows)


# --------------------------------------------------------------------------- driver


def measure_bombs(files: dict[str, Path]) -> None:
    base = run_child([SCRIPT, "--child", "sync", str(files["base"])])
    assert base.report["code"] == 0, base.report
    for name in ("cell_bomb", "sst_bomb", "wide_row"):
        for mode, env in (("shipped", {}), ("relaxed", RELAXED)):
            child = run_child(
                [SCRIPT, "--child", "sync", str(files[name])], env={**os.environ, **env}
            )
            seconds = float(child.report["seconds"])
            emit(
                f"{name}_{mode}",
                0,
                seconds,
                float(base.report["seconds"]),
                child.peak_rss_mb,
                "sqlite",
                exit_code=child.report["code"],
                file_mb=round(files[name].stat().st_size / 1048576, 1),
                message=child.report["message"],
                target=f"refused (exit 2) in < {MAX_SECONDS:g} s and < {MAX_RSS_MB:g} MB: "
                + (
                    "✔"
                    if child.report["code"] == 2
                    and seconds < MAX_SECONDS
                    and child.peak_rss_mb < MAX_RSS_MB
                    else "✘"
                ),
            )


def measure_json(rows: int) -> None:
    path = _json_file(rows)
    note(f"json: {path.name}, {path.stat().st_size / 1048576:.1f} MB")
    whole = run_child([SCRIPT, "--child", "json-whole", str(path)])
    stream = run_child([SCRIPT, "--child", "json-stream", str(path)])
    emit(
        "json_stream",
        int(stream.report["rows"]),
        float(stream.report["seconds"]),
        float(whole.report["seconds"]),
        stream.peak_rss_mb,
        "-",
        file_mb=round(path.stat().st_size / 1048576, 1),
        baseline_peak_rss_mb=round(whole.peak_rss_mb, 1),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=2.0, help="size of the cell and sst bombs")
    parser.add_argument("--rows", type=int, default=350_000, help="records in the JSON file")
    parser.add_argument("--xlsx-rows", type=int, default=100_000, help="rows of the honest XLSX")
    parser.add_argument("--child", nargs=2, metavar=("WHAT", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        what, path = args.child
        if what == "sync":
            child_sync(path)
        elif what == "check":
            child_check(path)
        else:
            child_json(path, whole=what == "json-whole")
        return
    measure_bombs(build(args.gib))
    measure_check(min(args.xlsx_rows, args.rows))
    measure_json(args.rows)


if __name__ == "__main__":
    main()
