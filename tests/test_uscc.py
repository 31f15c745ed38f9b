"""GB 32100-2015 codes: malformed is an error, a wrong check character only a warning."""

from __future__ import annotations

import pytest

from pipeline.domain.uscc import area_code, check_uscc, make_uscc, normalise_code

REAL_VALID = ["914403001922038216", "91330100716105852F", "91230500MA1B3N1N2M"]
PILOT_AREA_CODE = "91350100M0001TGQXM"  # real, issued before the check was enforced


@pytest.mark.parametrize("code", REAL_VALID)
def test_real_codes_pass_both_checks(code: str) -> None:
    result = check_uscc(code)
    assert (result.error, result.warning) == (None, None)
    assert result.ok


def test_the_authority_code_from_the_shuangyashan_record_is_valid() -> None:
    assert check_uscc("11230500001755309F").ok


def test_bad_check_character_is_a_warning_not_an_error() -> None:
    result = check_uscc(PILOT_AREA_CODE)
    assert result.error is None
    assert result.warning == "check character is 'M', expected '1'"


def test_organisation_code_check_mismatch_is_a_warning() -> None:
    # change the org-code check (char 17) and re-derive char 18 so only the org check fails
    code = make_uscc("91330100716105853")
    result = check_uscc(code)
    assert result.error is None
    assert result.warning == "organisation code check character is '3', expected '2'"


def test_wrong_length_is_an_error_naming_the_count() -> None:
    result = check_uscc("91330100716105852")
    assert result.error == "has 17 characters, expected 18"
    assert result.warning is None


@pytest.mark.parametrize("letter", ["I", "O", "S", "V", "Z", "-"])
def test_letters_outside_the_alphabet_are_errors(letter: str) -> None:
    result = check_uscc("9133010071610585" + letter + "F")
    assert result.error == f"contains {letter!r}, not allowed"


def test_lower_case_is_an_error_until_normalised() -> None:
    assert check_uscc("91230500ma1b3n1n2m").error == "contains 'm', not allowed"
    assert check_uscc(normalise_code("91230500ma1b3n1n2m")).ok


def test_normalise_turns_full_width_into_ascii_and_drops_all_whitespace() -> None:
    assert normalise_code("　９１２３０５００ＭＡ１Ｂ　３Ｎ１Ｎ２ｍ \t") == "91230500MA1B3N1N2M"
    assert normalise_code(" 9123 0500MA1B3N1N2M\n") == "91230500MA1B3N1N2M"


def test_normalise_drops_zero_width_characters_pasted_with_the_code() -> None:
    assert normalise_code("\ufeff91230500MA1B3N1N2M\u200b") == "91230500MA1B3N1N2M"


def test_area_code_is_characters_three_to_eight() -> None:
    assert area_code("91230500MA1B3N1N2M") == "230500"


@pytest.mark.parametrize("code", REAL_VALID)
def test_make_uscc_appends_the_published_check_character(code: str) -> None:
    assert make_uscc(code[:17]) == code


def test_make_uscc_refuses_a_prefix_of_the_wrong_length_or_alphabet() -> None:
    with pytest.raises(ValueError, match="prefix has 16 characters, expected 17"):
        make_uscc("9123050000000000")
    with pytest.raises(ValueError, match="contains 'O'"):
        make_uscc("9123050000000000O")


def test_every_single_character_change_of_a_valid_code_is_caught() -> None:
    code = "91230500MA1B3N1N2M"
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    for i in range(18):
        for ch in alphabet.replace(code[i], ""):
            changed = code[:i] + ch + code[i + 1 :]
            assert not check_uscc(changed).ok, changed


# --------------------------------------------------------------------------- other identity codes


def _person_id(body: str = "23050619850312451") -> str:
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body + "10X98765432"[sum(int(c) * w for c, w in zip(body, weights, strict=True)) % 11]


@pytest.mark.parametrize(
    ("text", "kind", "code"),
    [
        ("91230500MA1B3N1N2M", "uscc", "91230500MA1B3N1N2M"),
        ("91230500 MA1B3N1N2M", "uscc_split", "91230500MA1B3N1N2M"),
        ("91230500MA1B3N1N2M 230506600012345", "uscc_split", "91230500MA1B3N1N2M"),
        ("230506600012345", "reg_no", "230506600012345"),
        ("MA1B3N1N-2", "org_code", "MA1B3N1N-2"),
        ("00000000000000000X", "placeholder", "00000000000000000X"),
        ("000000000000000000", "placeholder", "000000000000000000"),
        (_person_id(), "person_id", _person_id()),
        ("", "empty", ""),
        ("9123", "malformed", "9123"),
    ],
)
def test_the_codes_a_uscc_column_holds_are_told_apart(text: str, kind: str, code: str) -> None:
    from pipeline.domain.uscc import identify

    found = identify(text)
    assert (found.kind, found.code) == (kind, code)
    assert (found.uscc is not None) == (kind in ("uscc", "uscc_split"))
