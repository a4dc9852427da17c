"""No Docker engine runs here, so the compose file is checked against the CLI instead."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from stock_manager.cli import build_parser
from stock_manager.dashboard.config import DashboardConfig
from stock_manager.shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data["services"]


def test_the_services_of_the_design_card(compose: dict[str, Any]) -> None:
    assert set(compose) == {"postgres", "migrate", "pricesync", "strategy", "execution", "kis-sim", "dashboard"}


def test_every_command_is_a_valid_cli_invocation(compose: dict[str, Any]) -> None:
    parser = build_parser()
    runs = {}
    for name, svc in compose.items():
        if name == "postgres":
            continue
        args = parser.parse_args(svc["command"])
        if args.command == "run":
            runs[name] = args.service
        else:
            assert (name, args.command) == ("migrate", "migrate")
    assert runs == {"pricesync": "pricesync", "strategy": "strategy", "execution": "execution", "kis-sim": "kis-sim",
                    "dashboard": "dashboard"}


def test_long_running_services_restart_and_have_healthchecks(compose: dict[str, Any]) -> None:
    parser = build_parser()
    for name in ("postgres", "pricesync", "strategy", "execution", "kis-sim", "dashboard"):
        svc = compose[name]
        assert svc["restart"] == "unless-stopped", name
        assert svc["healthcheck"]["test"], name
        test = svc["healthcheck"]["test"]
        if test[:2] == ["CMD", "stock-manager"]:
            args = parser.parse_args(test[2:])
            assert (args.command, args.service) == ("healthcheck", name)
    assert compose["migrate"]["restart"] == "no"


def test_services_wait_for_migrations_and_use_only_known_settings(compose: dict[str, Any]) -> None:
    known = {k.upper() for k in (*Settings.model_fields, *DashboardConfig.model_fields)}
    for name in ("pricesync", "strategy", "execution", "dashboard"):
        svc = compose[name]
        assert svc["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert set(svc["environment"]) <= known, name
    assert compose["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_the_dashboard_listens_on_loopback_8080_and_checks_its_health(compose: dict[str, Any]) -> None:
    svc = compose["dashboard"]
    assert svc["environment"]["SM_DASHBOARD_ADDR"] == "0.0.0.0:8080"
    assert svc["ports"] == ["127.0.0.1:8080:8080"]
    assert "http://127.0.0.1:8080/healthz" in " ".join(svc["healthcheck"]["test"])
    assert svc["environment"]["DATABASE_URL"] == compose["execution"]["environment"]["DATABASE_URL"]


def test_the_image_runs_the_cli() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["stock-manager"]' in dockerfile
    # services/, shared/ and db/ live inside the stock_manager package (issue #16)
    assert "COPY stock_manager ./stock_manager" in dockerfile


def _dockerignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule for the build context: the last pattern matching the path or a parent decides."""
    from fnmatch import fnmatch

    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for raw in patterns:
        neg, pat = raw.startswith("!"), raw.lstrip("!").rstrip("/")
        if pat.startswith("**/"):
            hit = any(fnmatch(p, pat[3:]) for p in parts)
        else:
            hit = any(fnmatch(p, pat) for p in prefixes)
        if hit:
            ignored = not neg
    return ignored


def test_the_build_context_is_only_what_the_image_needs() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [x.strip() for x in lines if x.strip() and not x.startswith("#")]
    copied = [x.split()[1:-1] for x in (ROOT / "Dockerfile").read_text().splitlines() if x.startswith("COPY ")]
    for src in (s for srcs in copied for s in srcs):
        assert not _dockerignored(src, patterns), f"the Dockerfile copies {src} but .dockerignore leaves it out"
    assert not _dockerignored("stock_manager/db/migrations/0001_create_roles.sql", patterns)
    for private in (".stock-manager/pgdata/PG_VERSION", ".stock-manager/kis-sim/state.json", ".env", ".git/config",
                    ".venv/bin/python", "stock_manager/__pycache__/cli.cpython-311.pyc", "reports/x/index.html"):
        assert _dockerignored(private, patterns), private


def test_an_optional_env_file_says_which_compose_it_needs(compose: dict[str, Any]) -> None:
    optional = [s for s in compose.values() for e in s.get("env_file", []) if isinstance(e, dict)
                and e.get("required") is False]
    if optional:  # `required: false` is Compose 2.24+; older ones reject the file
        assert "Compose 2.24" in (ROOT / "README.md").read_text()
        assert "Compose 2.24" in (ROOT / "docker-compose.yml").read_text()
