"""KIS's symbol master files made from the simulator's universe: ``GET /sim/master/<name>``.

KIS publishes ``kospi_code.mst.zip`` and ``kosdaq_code.mst.zip`` on a download host of its own,
which paper and live PriceSync read (``SM_PRICESYNC_MASTER_URLS``).  The simulator serves files in
the same format (``stock_manager.shared.kis.master``) listing its own universe, so that paper mode
against it has a master: the codes, names, markets, base prices (prior closes), halt flags, prior
volumes, listed shares and market caps, with every other field as an unremarkable share's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stock_manager.shared.kis.master import KOSDAQ_MST, KOSPI_MST, MstLayout, format_line, master_zip
from stock_manager.shared.market_rules import Market

from .listing import NO_DESIGNATION, Designation
from .sim import Sim
from .universe import Symbol

# which file lists which market, and the group code a symbol of it carries there
_FILES: dict[str, tuple[MstLayout, dict[Market, str]]] = {
    KOSPI_MST.zip_name: (KOSPI_MST, {Market.KOSPI: "ST", Market.ETF: "EF"}),
    KOSDAQ_MST.zip_name: (KOSDAQ_MST, {Market.KOSDAQ: "ST"}),
}
# 시가총액규모 (KOSPI: 1 large, 2 mid, 3 small) by liquidity tier
_CAP_SIZE = ("1", "2", "3", "3")


def standard_code(code: str) -> str:
    """The ISIN of a Korean common share: ``KR7`` + code + ``00`` + the ISIN check digit (a real
    preferred share's ISIN names its common share instead)."""
    body = f"KR7{code}00"
    digits = "".join(str(int(ch, 36)) for ch in body)
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d // 10 + d % 10
    return body + str((10 - total % 10) % 10)


def master_line(layout: MstLayout, group: str, sym: Symbol, designation: Designation = NO_DESIGNATION) -> bytes:
    return format_line(layout, sym.code, standard_code(sym.code), sym.name, {
        "group": group,
        "cap_size": _CAP_SIZE[min(sym.tier, len(_CAP_SIZE) - 1)],
        "base_price": sym.prior_close,
        "lot": 1,
        "overtime_lot": 1,
        "halted": sym.halted,
        # the designations inquire-price reports, in the files' own flags
        "administrative": designation.status == "51",
        "market_warning": designation.warning,
        "liquidation": designation.liquidation,
        "prior_volume": sym.prior_volume,
        "listed_shares_k": max(1, sym.listed_shares // 1000),
        "market_cap": sym.prior_close * sym.listed_shares // 100_000_000,
    })


def master_file(name: str, universe: Iterable[Symbol], designations: Mapping[str, Designation] | None = None) -> bytes:
    """The zip KIS would serve as ``name``, listing the universe's symbols of that file's markets."""
    layout, groups = _FILES[name]
    marks = designations or {}
    return master_zip(layout, (master_line(layout, groups[s.market], s, marks.get(s.code, NO_DESIGNATION))
                               for s in universe if s.market in groups))


def routes(sim: Sim) -> list[Route]:
    # the universe never changes while the simulator runs; its designations can (POST /sim/designate)
    made: dict[tuple[str, tuple[tuple[str, Designation], ...]], bytes] = {}

    async def master(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in _FILES:
            return Response(f"no master file {name!r}; there are {', '.join(_FILES)}", status_code=404)
        designations = sim.broker.designations
        key = (name, tuple(sorted(designations.items(), key=lambda item: item[0])))
        if key not in made:
            made[key] = master_file(name, sim.broker.universe.values(), designations)
        return Response(made[key], media_type="application/zip")

    return [Route("/sim/master/{name}", master, methods=["GET"])]
