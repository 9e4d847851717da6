"""The report building blocks: number formats, axis ticks, escaping in every block."""

from __future__ import annotations

from decimal import Decimal

import pytest

from rental_analytics.platform import html_report as H
from tests.html_page import HOSTILE, assert_inert, parse

FMT = H.Formats()


def test_numbers_read_as_a_person_writes_them():
    assert FMT.integer(4918.0) == "4,918" and FMT.integer(None) == "—" and FMT.integer("x") == "—"
    assert FMT.money(Decimal("11710.0")) == "$11,710.00" and FMT.money(-3) == "-$3.00"
    assert H.Formats("EUR").money(5) == "€5.00" and H.Formats("CHF").money(5) == "CHF 5.00"
    assert FMT.percent(0.0164, 2) == "1.64%" and FMT.percent(1) == "100.0%"
    assert FMT.hours(2.25) == "2.2 h" and FMT.number(float("nan")) == "—"


@pytest.mark.parametrize(
    ("low", "high", "whole", "ticks"),
    [
        (11710, 12783, False, [0, 5000, 10000, 15000]),
        (0, 3, True, [0, 1, 2, 3]),
        (0, 0.43, False, [0, 0.1, 0.2, 0.3, 0.4, 0.5]),
        (0, 0, False, [0, 0.2, 0.4, 0.6, 0.8, 1.0]),
        (-20, 60, False, [-20, 0, 20, 40, 60]),
    ],
)
def test_axis_ticks_are_round_and_cover_the_values(low, high, whole, ticks):
    assert H.nice_ticks(low, high, whole=whole) == pytest.approx(ticks)


def test_tick_labels_are_short():
    assert FMT.tick(H.MONEY, 15000) == "$15k" and FMT.tick(H.MONEY, 2_500_000) == "$2.5M"
    assert FMT.tick(H.PERCENT, 0.2) == "20%" and FMT.tick(H.PERCENT, 0.075) == "7.5%"
    assert FMT.tick(H.INTEGER, 3) == "3" and FMT.tick(H.INTEGER, 1000) == "1k"
    assert FMT.tick(H.NUMBER, 0.25) == "0.25"


def test_tiles_sit_in_even_rows():
    assert "tiles c3" in H.tiles([H.Tile("a", "1")] * 6) and "tiles c4" in H.tiles([H.Tile("a", "1")] * 4)
    assert "tiles c3" in H.tiles([H.Tile("a", "1")] * 5) and "tiles c4" in H.tiles([H.Tile("a", "1")] * 7)


def test_charts_have_axes_ticks_and_titles():
    line = parse(H.line_chart("Revenue", ["d1", "d2", "d3"], [1, 2, 3], H.MONEY, FMT, "Day", "Revenue ($)"))
    assert line.count("svg") == 1 and line.count("polyline") == 1 and line.count("circle") == 3
    assert "$0 $1 $2 $3" in line.text and "Day" in line.text and "Revenue ($)" in line.text
    bars = parse(H.bar_chart("Rentals", ["SUV", "Sedan"], [4918, 3100], H.INTEGER, FMT, "Rentals"))
    assert bars.count("rect") == 2 and "4,918" in bars.text and "5k" in bars.text
    assert "Nothing to chart yet." in H.bar_chart("x", [], [], H.INTEGER, FMT)
    assert "Nothing to chart yet." in H.line_chart("x", ["a"], [None], H.INTEGER, FMT)


@pytest.mark.parametrize("hostile", HOSTILE)
def test_every_block_escapes_what_it_is_given(hostile: str):
    cols = [H.Column("name", hostile), H.Column("n", "N", H.INTEGER)]
    document = H.page(
        hostile,
        hostile,
        [
            H.banner(hostile, hostile),
            H.tiles([H.Tile(hostile, hostile, hostile, hostile)]),
            H.table([{"name": hostile, "n": 1, H.TONE: hostile}], cols, FMT, hostile),
            H.table([], cols, FMT, hostile),
            H.facts([(hostile, hostile)]),
            H.bullets([hostile, f"`{hostile}`"], css=hostile),
            H.section(hostile, H.paragraph(hostile, hostile), intro=hostile),
            H.bar_chart(hostile, [hostile], [1], H.MONEY, H.Formats(hostile), hostile),
            H.line_chart(hostile, [hostile, hostile], [1, 2], H.INTEGER, FMT, hostile, hostile),
        ],
        hostile,
    )
    page = assert_inert(document)
    assert hostile in page.text and hostile not in document
