"""Brand matching (case, whole words, handles, Hebrew prefixes/finals/niqqud) and brands file validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from chalicelib.config import Settings
from chalicelib.ingest.brands import BrandConfigError, BrandMatcher, load_brands, normalise, parse_brands

ACME = ("acme-telecom",)
GOLDEN = ("golden-foods",)
NONE: tuple[str, ...] = ()


def test_shipped_brands_file_loads() -> None:
    matcher = load_brands(Settings().brands_file)
    assert [b.id for b in matcher.brands] == ["acme-telecom", "golden-foods"]
    acme = matcher.brands[0]
    assert acme.handles == {
        "x": ["AcmeTelecom", "AcmeSupport"],
        "facebook": ["104857600000001"],
        "instagram": ["17841400000000001"],
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Acme Telecom is down again", ACME),
        ("ACME TELECOM IS DOWN AGAIN", ACME),
        ("acme telecom", ACME),
        ("AcMe TeLeCoM", ACME),
        ("switched from AcmeTel last year", ACME),
        ("ACMETEL!!!", ACME),
        ("(acmetel)", ACME),
        ("acmetel's support", ACME),
        ("acmetelecomfan", NONE),
        ("i am an acmetelecomfan", NONE),
        ("acmetelx", NONE),
        ("xacmetel", NONE),
        ("acmetel2", NONE),
        ("acme_telecom", NONE),
        ("acme", NONE),
        ("telecom", NONE),
        ("the acme telecommunications museum", NONE),
        ("golden foods hummus", GOLDEN),
        ("acme telecom and Golden Foods both", ACME + GOLDEN),
        ("", NONE),
    ],
)
def test_keywords_case_insensitive_whole_words(matcher: BrandMatcher, text: str, expected: tuple[str, ...]) -> None:
    assert matcher.match(platform="reddit", text=text) == expected


@pytest.mark.parametrize(
    ("platform", "text", "expected"),
    [
        ("x", "@AcmeTelecom my line is dead", ACME),
        ("x", "@acmetelecom my line is dead", ACME),
        ("x", "@ACMESUPPORT help", ACME),
        ("x", "thanks @AcmeTelecom's team", ACME),
        ("x", "yo (@AcmeTelecom)", ACME),
        ("x", "@AcmeTelecomFan is my account", NONE),
        ("x", "@AcmeTelecom_ nope", NONE),
        ("x", "write to help@AcmeTelecom.example", NONE),
        ("x", "@@AcmeTelecom", NONE),
        ("x", "@GoldenFoods the hummus!", GOLDEN),
        ("x", "＠AcmeTelecom full-width at sign", ACME),
    ],
)
def test_handles_in_text(matcher: BrandMatcher, platform: str, text: str, expected: tuple[str, ...]) -> None:
    assert matcher.match(platform=platform, text=text) == expected


def test_handles_are_per_platform(matcher: BrandMatcher) -> None:
    """@AcmeTelecom is Acme's X account; on another platform the same string is someone else."""
    assert matcher.match(platform="instagram", text="@AcmeTelecom") == NONE


@pytest.mark.parametrize(
    ("platform", "accounts", "expected"),
    [
        ("x", ["AcmeTelecom"], ACME),
        ("x", ["@acmetelecom"], ACME),
        ("x", ["ACMESUPPORT", "AcmeTelecom"], ACME),
        ("x", ["GoldenFoods", "AcmeTelecom"], GOLDEN + ACME),
        ("facebook", ["104857600000001"], ACME),
        ("facebook", ["104857600000002"], GOLDEN),
        ("instagram", ["17841400000000001"], ACME),
        ("instagram", ["104857600000001"], NONE),
        ("x", ["AcmeTelecomFan"], NONE),
    ],
)
def test_accounts_addressed(
    matcher: BrandMatcher, platform: str, accounts: list[str], expected: tuple[str, ...]
) -> None:
    assert matcher.match(platform=platform, text="no keyword here", accounts=accounts) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("אקמי שוב נפלה", ACME),
        ("כתבתי לאקמי שלוש פעמים", ACME),
        ("ואקמי לא עונים", ACME),
        ("באקמי אין אף אחד", ACME),
        ("האקמי הזאת", ACME),
        ("מאקמי עברתי", ACME),
        ("שאקמי תחזיר לי כסף", ACME),
        ("כאקמי", ACME),
        ("שבאקמי עובדים", ACME),
        ("תאקמי", NONE),  # ת is not a prefix
        ("אקמיות", NONE),
        ("אקמי, תחזרו אליי!", ACME),
        ("(אקמי)", ACME),
        ("אקמי-תקשורת נפלה", ACME),
        ('החברה "אקמי" שוב נפלה', ACME),
        ("אקמי תקשורת", ACME),
        ("Acme אקמי", ACME),
        ("גולדן פודס", GOLDEN),
        ("קניתי בגולדן", GOLDEN),
    ],
)
def test_hebrew_prefixes_and_word_boundaries(matcher: BrandMatcher, text: str, expected: tuple[str, ...]) -> None:
    assert matcher.match(platform="facebook", text=text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("אַקְמִי", ACME),
        ("לְאַקְמִי", ACME),
        ("וְאַקְמִי", ACME),
        ("גּוֹלְדֶּן", GOLDEN),
    ],
)
def test_niqqud_ignored(matcher: BrandMatcher, text: str, expected: tuple[str, ...]) -> None:
    assert matcher.match(platform="facebook", text=text) == expected


def test_final_letters_either_way(matcher: BrandMatcher) -> None:
    """Keyword גולדן (final nun) matches text written with a regular nun, and the reverse."""
    assert matcher.match(platform="facebook", text="גולדנ") == GOLDEN
    assert matcher.match(platform="facebook", text="בגולדנ") == GOLDEN
    custom = parse_brands("brands:\n  - id: shalom\n    name: Shalom\n    keywords: [שלומ, ענן]\n", "custom.yaml")
    assert custom.match(platform="x", text="שלום לכולם") == ("shalom",)
    assert custom.match(platform="x", text="בענן") == ("shalom",)
    assert custom.match(platform="x", text="בעננ") == ("shalom",)
    assert custom.match(platform="x", text="עננים") == NONE


@pytest.mark.parametrize(
    "text",
    ["אקמי\u05beתקשורת נפלה", "החברה \u05f4אקמי\u05f4 שוב נפלה"],
    ids=["maqaf", "gershayim-quotes"],
)
def test_hebrew_punctuation_is_a_word_boundary(matcher: BrandMatcher, text: str) -> None:
    assert matcher.match(platform="facebook", text=text) == ACME


def test_three_letter_hebrew_prefix(matcher: BrandMatcher) -> None:
    assert matcher.match(platform="facebook", text="וכשאקמי נופלת אף אחד לא עונה") == ACME


def test_normalise() -> None:
    assert normalise("ACME Telecom") == "acme telecom"
    assert normalise("לְאַקְמִי") == "לאקמי"
    assert normalise("שלום ענן ארץ כף דרך") == "שלומ עננ ארצ כפ דרכ"


def test_matches_are_deduplicated_and_ordered(matcher: BrandMatcher) -> None:
    """Account first, then handle in text, then keywords; each brand once."""
    found = matcher.match(
        platform="x", text="@GoldenFoods vs acme telecom vs @AcmeTelecom", accounts=["AcmeSupport", "AcmeTelecom"]
    )
    assert found == ACME + GOLDEN


# ---------------------------------------------------------------- brands file validation


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "brands.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "brands:\n  - id: acme\n    name: Acme\n    keywords: [acme]\n    handles: x: [Acme]\n",
    )
    with pytest.raises(BrandConfigError) as info:
        load_brands(path)
    assert str(info.value).startswith(f"{path}:5: not valid YAML:")


def test_yaml_tab_indentation_names_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "brands:\n  - id: acme\n\tname: Acme\n")
    with pytest.raises(BrandConfigError) as info:
        load_brands(path)
    assert str(info.value).startswith(f"{path}:3: not valid YAML:")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "brands:\n  - id: acme\n    name: Acme\n    keyword: [acme]\n",
            "brands.0.keyword: Extra inputs are not permitted",
        ),
        ("brands:\n  - id: Acme Telecom\n    name: Acme\n", "brands.0.id: String should match pattern"),
        ("brands:\n  - id: acme\n", "brands.0.name: Field required"),
        ("brands:\n  - id: acme\n    name: ''\n", "brands.0.name: String should have at least 1 character"),
        (
            "brands:\n  - id: acme\n    name: Acme\n    handles: {facebook: [104857600000001]}\n",
            "brands.0.handles.facebook.0: Input should be a valid string",
        ),
        (
            "brands:\n  - id: acme\n    name: Acme\n    keywords: acme\n",
            "brands.0.keywords: Input should be a valid list",
        ),
        ("brand:\n  - id: acme\n    name: Acme\n", "brands: Field required"),
        ("- id: acme\n  name: Acme\n", "Input should be a valid dictionary"),
        ("", "Input should be a valid dictionary"),
        (
            "brands:\n  - id: acme\n    name: Acme\n  - id: golden\n    name: Golden\n"
            "  - id: acme\n    name: Acme again\n",
            "brand id 'acme' is defined twice",
        ),
    ],
    ids=[
        "unknown-key",
        "bad-id",
        "no-name",
        "empty-name",
        "unquoted-page-id",
        "keywords-not-list",
        "no-brands",
        "top-level-list",
        "empty-file",
        "duplicate-id",
    ],
)
def test_invalid_brands_file_names_file_and_entry(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(BrandConfigError) as info:
        load_brands(path)
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)


def test_parse_brands_uses_given_source_name() -> None:
    with pytest.raises(BrandConfigError) as info:
        parse_brands("brands: [", "config/brands.yaml")
    assert str(info.value).startswith("config/brands.yaml:")
