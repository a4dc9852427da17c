"""The VI and designation vocabularies (shared/market_status.py): KIS's codes in, our states out."""

from __future__ import annotations

from decimal import Decimal

import pytest

from stock_manager.shared.market_status import (
    IN_VI,
    ViState,
    designation_of,
    static_vi_triggers,
    vi_from_quote,
    vi_from_trade,
    warn_code_of,
)


@pytest.mark.parametrize(("code", "state"), [("N", ViState.NONE), ("Y", ViState.AUCTION), ("1", ViState.STATIC),
                                             ("2", ViState.DYNAMIC), ("3", ViState.BOTH), (" 1 ", ViState.STATIC),
                                             ("", None), ("X", None)])
def test_a_quotes_vi_code(code: str, state: ViState | None) -> None:
    assert vi_from_quote(code) is state


def test_a_quotes_y_keeps_the_vi_known() -> None:
    assert vi_from_quote("Y", ViState.STATIC) is ViState.STATIC
    assert vi_from_quote("Y", ViState.NONE) is ViState.AUCTION
    assert vi_from_quote("2", ViState.STATIC) is ViState.DYNAMIC
    assert vi_from_quote("N", ViState.BOTH) is ViState.NONE


def test_a_prints_hour_code_keeps_the_vi_a_quote_named() -> None:
    assert vi_from_trade("C", None) is ViState.AUCTION
    assert vi_from_trade("C", ViState.NONE) is ViState.AUCTION
    assert vi_from_trade("C", ViState.STATIC) is ViState.STATIC  # the stream does not say which VI
    assert vi_from_trade("C", ViState.DYNAMIC) is ViState.DYNAMIC
    assert vi_from_trade("0", ViState.STATIC) is ViState.NONE  # trading again: the VI is over
    assert vi_from_trade("A", ViState.AUCTION) is ViState.NONE  # the post-close indication is no VI
    assert vi_from_trade("", ViState.STATIC) is None  # a blank says nothing
    assert ViState.NONE not in IN_VI and set(ViState) - {ViState.NONE} == IN_VI


def test_static_vi_fires_ten_percent_from_its_reference() -> None:
    assert static_vi_triggers(Decimal(10_000)) == (Decimal(9_000), Decimal(11_000))
    assert static_vi_triggers(Decimal(52_300)) == (Decimal("47070.0"), Decimal("57530.0"))


@pytest.mark.parametrize(("code", "designation"), [("51", "51"), ("52", "52"), ("53", "53"), ("54", "54"),
                                                   ("57", "57"), ("58", "58"), ("59", "59"), ("55", None),
                                                   ("00", None), ("", None), ("5", None), ("ab", None)])
def test_designations(code: str, designation: str | None) -> None:
    assert designation_of(code) == designation


def test_warn_codes() -> None:
    assert [warn_code_of(c) for c in ("00", "01", "02", "03", "04", "")] == ["00", "01", "02", "03", None, None]
