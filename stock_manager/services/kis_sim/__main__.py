"""``python -m stock_manager.services.kis_sim --host H --port P --env real|paper [--data-dir DIR] [--replay FILE]``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from datetime import datetime
from pathlib import Path
from typing import Literal, cast

from .app import serve
from .config import SimConfig
from .replay import ReplayError

DATA_DIR_HELP = (
    "keep accounts, orders, fills, tokens and the market clock here and resume them on start "
    "(a stored clock wins over --start/--speed); without it the simulator forgets everything when it stops"
)

REPLAY_HELP = ("play the recorded day in FILE (a day file, stock-manager export-day) as the market; the clock "
               "starts at 08:00 KST of its trade date unless --start says otherwise")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stock_manager.services.kis_sim",
                                     description="KIS-compatible simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8800)
    parser.add_argument("--env", choices=("real", "paper"), default="real")
    parser.add_argument("--seed", type=int, default=SimConfig.seed)
    parser.add_argument("--speed", type=float, default=1.0, help="market clock speed (clock s per wall s)")
    parser.add_argument("--start", default=None, help="market clock start, ISO 8601 with offset")
    parser.add_argument("--rate-limit", type=float, default=None, help="requests/s per app key; 0 = off")
    parser.add_argument("--data-dir", type=Path, default=None, help=DATA_DIR_HELP)
    parser.add_argument("--master", type=Path, default=None, metavar="DIR",
                        help="list the shares of the KIS master files in DIR instead of a seeded universe")
    parser.add_argument("--replay", type=Path, default=None, metavar="FILE", help=REPLAY_HELP)
    args = parser.parse_args(argv)
    env = cast(Literal["real", "paper"], args.env)
    config = SimConfig(
        env=env,
        seed=args.seed,
        clock_speed=args.speed,
        clock_start=datetime.fromisoformat(args.start) if args.start else None,
        rate_limit_per_s=args.rate_limit,
        master_dir=args.master,
        replay=args.replay,
    )
    runner = asyncio.run
    with contextlib.suppress(ImportError):
        import uvloop

        runner = uvloop.run
    try:
        with contextlib.suppress(KeyboardInterrupt):
            runner(serve(args.host, args.port, env, config, data_dir=args.data_dir))
    except ReplayError as e:
        print(f"kis-sim: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
