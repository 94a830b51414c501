"""The query string to conditions: values are always bound parameters, never SQL text."""

from __future__ import annotations

import pytest

from floopy.dashboard.filters import FilterError, Scope, Sql, parse, raw_conditions

NOW = 1_700_000_000.0


def test_ranges_and_explicit_times() -> None:
    assert parse({}, NOW).start == NOW - 86400
    assert parse({"range": ["7d"]}, NOW).start == NOW - 7 * 86400
    window = parse({"from": ["2023-11-14T00:00:00"], "to": ["2023-11-14T12:00:00Z"]}, NOW)
    assert (window.start, window.end) == (1699920000.0, 1699963200.0)
    for bad in ({"range": ["2w"]}, {"from": ["yesterday"]}, {"from": [str(NOW + 1)]}):
        with pytest.raises(FilterError):
            parse(bad, NOW)


def test_every_filter_value_is_a_parameter() -> None:
    hostile = "' OR 1=1 --"
    filters = parse(
        {
            "user": [hostile],
            "model": [hostile],
            "status": ["5xx"],
            "prop": [f"feature={hostile}", f"{hostile}=x"],
        },
        NOW,
    )
    sql = Sql()
    raw_conditions(sql, filters, Scope(("acme", hostile)))
    text = sql.clause()
    assert "OR 1=1" not in text and "acme" not in text
    assert hostile in sql.params.values()
    assert ["acme", hostile] in sql.params.values()
    assert 5 in sql.params.values()  # the status class


@pytest.mark.parametrize("status", ["abc", "6xx", "4x"])
def test_a_status_that_is_no_code_or_class_is_refused(status: str) -> None:
    with pytest.raises(FilterError, match="status"):
        parse({"status": [status]}, NOW)


def test_a_property_filter_needs_key_and_value_sign() -> None:
    assert parse({"prop": ["feature=sum=mary"]}, NOW).properties == (("feature", "sum=mary"),)
    with pytest.raises(FilterError, match="prop"):
        parse({"prop": ["feature"]}, NOW)
