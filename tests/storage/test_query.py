"""The search query language: what each piece means, and that no input makes it raise."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storage.search import DEFAULT_STATUSES, Query, parse, parse_date


def test_words_phrases_and_exclusions() -> None:
    q = parse('CMO "launch party" -draft -"old logo"')
    assert q.words == ("CMO",)
    assert q.phrases == ("launch party",)
    assert q.excluded == ("draft", "old logo")
    assert q.problems == ()


def test_filters() -> None:
    q = parse(
        'tag:keynote tag:"New York" category:Marketing #Events by:<@U0ANA|ana> '
        "in:<#C0SHOOT|shoots> status:Approved"
    )
    assert q.tags == ("keynote", "New York")
    assert q.categories == ("Marketing", "Events")
    assert q.uploaders == ("U0ANA",)
    assert q.channels == ("C0SHOOT",)
    assert q.statuses == ("approved",)
    assert q.problems == ()


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("date:2026-11", date(2026, 11, 1), date(2026, 11, 30)),
        ("date:2026-11-03", date(2026, 11, 3), date(2026, 11, 3)),
        ("date:2024-02", date(2024, 2, 1), date(2024, 2, 29)),
        ("date:2026", date(2026, 1, 1), date(2026, 12, 31)),
        ("after:2026-11-01", date(2026, 11, 2), None),
        ("before:2026-11", None, date(2026, 10, 31)),
        ("after:2026-01-01 before:2026-03-01", date(2026, 1, 2), date(2026, 2, 28)),
    ],
)
def test_dates(text: str, start: date | None, end: date | None) -> None:
    q = parse(text)
    assert (q.date_from, q.date_to) == (start, end)
    assert q.problems == ()


def test_rejected_and_archived_only_when_asked() -> None:
    assert parse("CMO").effective_statuses == DEFAULT_STATUSES
    assert "rejected" not in DEFAULT_STATUSES
    assert "archived" not in DEFAULT_STATUSES
    assert parse("status:rejected").effective_statuses == ("rejected",)


@pytest.mark.parametrize(
    ("text", "explained"),
    [
        ("tag:", "\u201ctag:\u201d needs something after it"),
        ("colour:red", "I don't know the filter \u201ccolour:\u201d"),
        ("by:nobody", "I can't tell who \u201cnobody\u201d is"),
        ("in:#nope", "I can't find the channel \u201c#nope\u201d"),
        ("date:yesterday", "is not a date I understand"),
        ("date:2026-13", "is not a date I understand"),
        ("status:lost", "There is no status \u201clost\u201d"),
        ("after:2026-12-01 before:2026-01-01", "no days in between"),
        ("-tag:x", "only words can be excluded"),
    ],
)
def test_what_cannot_be_used_is_explained(text: str, explained: str) -> None:
    q = parse(text)
    assert any(explained in p for p in q.problems), q.problems


def test_unbalanced_quotes_and_sql_metacharacters_are_just_text() -> None:
    q = parse('"launch party')
    assert q.phrases == ("launch party",)
    q = parse("'; DROP TABLE images; -- %_ \\")
    assert "DROP" in q.words
    assert q.problems == ()


def test_urls_are_words_not_filters() -> None:
    assert parse("https://example.com/x").words == ("https://example.com/x",)


def test_long_queries_are_trimmed_with_a_note() -> None:
    q = parse("word " * 1000)
    assert q.words == ("word",)
    assert any("first" in p for p in q.problems)


def test_empty_query() -> None:
    assert parse("").is_empty
    assert parse("   ").is_empty
    assert not parse("CMO").is_empty


def test_describe_round_trips() -> None:
    q = parse('CMO "launch party" -draft tag:"New York" #Events by:<@U1> date:2026-11-03')
    assert parse(q.describe()).words == q.words
    assert parse(q.describe()).tags == q.tags
    assert "date:2026-11-03" in q.describe()


def test_parse_date_bounds() -> None:
    assert parse_date("1700") is None
    assert parse_date("2026-02-30") is None


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_parser_never_raises_on_any_unicode(text: str) -> None:
    assert isinstance(parse(text), Query)


@settings(max_examples=30, deadline=None)
@given(st.text(min_size=1, max_size=120).map(lambda s: (s * (10_000 // len(s) + 1))[:10_000]))
def test_parser_never_raises_on_ten_thousand_characters(text: str) -> None:
    q = parse(text)
    assert isinstance(q, Query)
    assert len(q.words) + len(q.phrases) + len(q.excluded) <= 40


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "tag:",
                "by:",
                "in:",
                '"',
                "-",
                "#",
                "date:",
                "status:",
                "<@",
                "<#",
                ">",
                "|",
                "x",
                " ",
                ":",
                "after:2026",
                "before:",
                "\u201c",
                "\\",
                "%",
                "'",
            ]
        ),
        max_size=60,
    )
)
def test_parser_never_raises_on_filter_soup(parts: list[str]) -> None:
    assert isinstance(parse("".join(parts)), Query)
