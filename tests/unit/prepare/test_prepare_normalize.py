"""Normalization rules: properties over generated inputs, and the IDNA cases that bite."""

from __future__ import annotations

import phonenumbers
import pyarrow as pa
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from cleanroom.errors import ConfigError
from cleanroom.prepare.normalize import (
    EMAIL_REASONS,
    PHONE_REASONS,
    check_region,
    normalize_email,
    normalize_email_reason,
    normalize_emails,
    normalize_phone,
    normalize_phone_reason,
)

LOCAL_CHARS = st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+-")
LABEL = st.text(alphabet="abcdefghijklmnopqrstuvwxyzäöüßé0123456789", min_size=1, max_size=12).filter(lambda s: not s[0].isdigit())
TLD = st.sampled_from(["de", "com", "org", "at", "eu", "info"])
SPACE = st.text(alphabet=" \t\n\u00a0", max_size=3)


@st.composite
def emails(draw: st.DrawFn) -> str:
    local = draw(st.text(alphabet=LOCAL_CHARS, min_size=1, max_size=20))
    labels = draw(st.lists(LABEL, min_size=1, max_size=3))
    return f"{local}@{'.'.join(labels)}.{draw(TLD)}"


# --- email properties ----------------------------------------------------------------------------


@given(st.one_of(st.none(), st.text(max_size=60), emails()))
def test_email_never_raises_and_gives_value_xor_reason(raw: str | None) -> None:
    result = normalize_email_reason(raw)
    assert (result.value is None) != (result.reason is None)
    assert result.reason is None or result.reason in EMAIL_REASONS


@given(st.one_of(st.text(max_size=60), emails()))
def test_email_is_idempotent(raw: str) -> None:
    once = normalize_email(raw)
    assume(once is not None)
    assert normalize_email(once) == once


@given(emails(), SPACE, SPACE, st.randoms(use_true_random=False))
def test_email_ignores_case_and_surrounding_whitespace(raw: str, left: str, right: str, rnd: object) -> None:
    base = normalize_email(raw)
    assume(base is not None)
    flipped = "".join(c.upper() if rnd.random() < 0.5 else c for c in raw)  # type: ignore[attr-defined]
    if flipped.lower() == raw.lower():  # str.upper can change length (ß -> SS): then it is another address
        assert normalize_email(left + flipped + right) == base


@given(st.lists(st.one_of(st.none(), st.text(max_size=30), emails()), max_size=40))
@settings(max_examples=50)
def test_bulk_and_scalar_agree(raws: list[str | None]) -> None:
    batch = normalize_emails(pa.array(raws, pa.string()))
    assert batch.values.to_pylist() == [normalize_email(r) for r in raws]
    assert batch.reasons.to_pylist() == [normalize_email_reason(r).reason for r in raws]


# --- email examples --------------------------------------------------------------------------------


def test_idna_keeps_sharp_s_distinct_from_ss() -> None:
    assert normalize_email("jo@straße.de") == "jo@xn--strae-oqa.de"
    assert normalize_email("jo@strasse.de") == "jo@strasse.de"
    assert normalize_email("jo@straße.de") != normalize_email("jo@strasse.de")


def test_idna_unicode_and_punycode_domains_meet() -> None:
    assert normalize_email("Jo@Bücher.DE") == normalize_email("jo@xn--bcher-kva.de") == "jo@xn--bcher-kva.de"


def test_local_part_is_kept_as_given() -> None:
    assert normalize_email("  First.Last+Cars@Example.com\t") == "first.last+cars@example.com"
    assert normalize_email("firstlast@example.com") != normalize_email("first.last@example.com")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "empty"),
        ("   ", "empty"),
        ("n/a", "no_at"),
        ("jo.example.com", "no_at"),
        ("@example.com", "bad_local"),
        ("jo doe@example.com", "bad_local"),
        ("jo\u00a0doe@example.com", "bad_local"),
        ("a@b@example.com", "bad_local"),
        ("jo@", "bad_domain"),
        ("jo@localhost", "bad_domain"),
        ("jo@example..com", "bad_domain"),
        ("jo@example.com.", "bad_domain"),
        ("jo@exa_mple.com", "bad_domain"),
        ("jo@-example.com", "bad_domain"),
        ("jo@xn--zz.de", "bad_domain"),
    ],
)
def test_email_reasons(raw: str | None, reason: str) -> None:
    assert normalize_email_reason(raw) == (None, reason)


# --- phone properties -----------------------------------------------------------------------------

# National significant numbers of German fixed and mobile lines (area code, subscriber).
AREA = st.sampled_from(["30", "40", "89", "221", "69", "711", "151", "160", "170", "176"])


@st.composite
def german_numbers(draw: st.DrawFn) -> tuple[str, str]:
    area = draw(AREA)
    subscriber = draw(st.text(alphabet="0123456789", min_size=7, max_size=8).filter(lambda s: s[0] not in "01"))
    number = phonenumbers.parse(f"+49{area}{subscriber}")
    assume(phonenumbers.is_valid_number(number))
    return area, subscriber


def _grouped(digits: str, seps: list[str]) -> str:
    """Insert separators between digit groups (as people type numbers)."""
    out, i = [], 0
    for k, sep in enumerate(seps):
        step = 2 + k % 3
        out.append(digits[i : i + step] + sep)
        i += step
    return "".join(out) + digits[i:]


@given(german_numbers(), st.lists(st.sampled_from([" ", "-", "", " / ", "."]), max_size=4), st.sampled_from(range(6)))
def test_every_way_to_write_a_number_gives_one_e164(number: tuple[str, str], seps: list[str], form: int) -> None:
    area, subscriber = number
    sub = _grouped(subscriber, seps)
    written = [
        f"0{area} {sub}",
        f"(0{area}) {sub}",
        f"0{area}-{sub}",
        f"+49 {area} {sub}",
        f"+49 (0){area} {sub}",
        f"0049 {area} {sub}",
    ][form]
    assert normalize_phone(f"  {written} ") == f"+49{area}{subscriber}"


@given(st.one_of(st.none(), st.text(max_size=40), st.text(alphabet="0123456789+-() ", max_size=25)))
def test_phone_never_raises_and_gives_value_xor_reason(raw: str | None) -> None:
    result = normalize_phone_reason(raw)
    assert (result.value is None) != (result.reason is None)
    assert result.reason is None or result.reason in PHONE_REASONS


@given(german_numbers())
def test_phone_is_idempotent(number: tuple[str, str]) -> None:
    e164 = normalize_phone("0" + "".join(number))
    assert e164 is not None and normalize_phone(e164) == e164


# --- phone examples ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "reason"),
    [(None, "empty"), ("  ", "empty"), ("n/a", "unparseable"), ("abc", "unparseable"), ("12345", "invalid_number"), ("+49 30 1", "invalid_number")],
)
def test_phone_reasons(raw: str | None, reason: str) -> None:
    assert normalize_phone_reason(raw) == (None, reason)


def test_region_decides_national_numbers_and_is_checked() -> None:
    assert normalize_phone("01 53 45 67 89", "FR") == "+33153456789"
    assert normalize_phone("+33 1 53 45 67 89") == "+33153456789"
    assert normalize_phone("030 1234567", "AT") != "+49301234567"
    with pytest.raises(ConfigError):
        check_region("XX")
