"""docs/数据格式.md is generated from the code (`pipeline.sync.formats_doc`): it lists the
accepted header aliases and date/amount forms, and must match what the code does now."""

from __future__ import annotations

from pipeline.sync.formats_doc import DOC, main, render
from pipeline.sync.normalize import DATE_EXAMPLES
from pipeline.sync.sources.fields import PENALTY_ALIASES


def test_the_formats_doc_is_current_with_the_code() -> None:
    assert DOC.read_text(encoding="utf-8") == render(), (
        "docs/数据格式.md is stale: run `python -m pipeline.sync.formats_doc` (make docs)"
    )


def test_the_doc_lists_every_alias_and_shows_what_each_form_parses_to() -> None:
    text = render()
    for aliases in PENALTY_ALIASES.values():
        for alias in aliases:
            assert f"`{alias}`" in text
    assert "| `二〇〇八年三月二十七日` | ymd | 2008-03-27 |" in text
    assert (
        "| `'罚款人民币二十万元'` |" not in text
        and "| `罚款人民币二十万元` | fine_amount | 万元 | 20 |" in text
    )
    assert len(DATE_EXAMPLES) <= text.count("| ymd |") + text.count("| mdy |") + text.count(
        "| dmy |"
    )


def test_the_check_mode_fails_on_a_stale_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    stale = tmp_path / "doc.md"
    stale.write_text("old\n", encoding="utf-8")
    assert main(["--out", str(stale), "--check"]) == 1
    assert main(["--out", str(stale)]) == 0
    assert main(["--out", str(stale), "--check"]) == 0
