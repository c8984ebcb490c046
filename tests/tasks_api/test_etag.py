"""ETags from id and version, and If-Match parsing with strong comparison."""

from __future__ import annotations

from tasks_api.etag import IfMatch, etag, none_match_hits, parse_if_match


def test_etag_is_strong_and_changes_with_the_version() -> None:
    assert etag(5, 1) == '"5.1"'
    assert etag(5, 1) != etag(5, 2)
    assert etag(5, 1) != etag(51, 1)


def test_absent_header_means_unconditional() -> None:
    assert parse_if_match(None, 5) is None


def test_star_matches_any_version() -> None:
    assert parse_if_match(" * ", 5) == IfMatch(any_version=True, versions=frozenset())


def test_lists_weak_and_foreign_tags() -> None:
    parsed = parse_if_match('"5.1", W/"5.2", "6.3", "5.4", garbage', 5)
    assert parsed == IfMatch(any_version=False, versions=frozenset({1, 4}))
    assert parse_if_match('W/"5.2"', 5) == IfMatch(any_version=False, versions=frozenset())


def test_if_none_match_uses_weak_comparison() -> None:
    assert none_match_hits('"5.1"', '"5.1"')
    assert none_match_hits('W/"5.1"', '"5.1"')
    assert none_match_hits('"5.0", "5.1"', '"5.1"')
    assert none_match_hits("*", '"5.1"')
    assert not none_match_hits('"5.2"', '"5.1"')
