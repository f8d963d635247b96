"""Browser tests: a real node served by uvicorn in a subprocess, driven by Debian's Chromium.

The live server is started once per run on a free localhost port. Its database is a copy of the
migrated template (a fresh PostgreSQL database cloned from it when BIOBANK_TEST_POSTGRES=1); the node
is set up with `biobank db upgrade` and its users with `biobank users create`, as an operator would.
Each test gets a new browser context, so cookies never leak from one test to the next.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.conftest import POSTGRES, _pg_admin_execute, _pg_url

CHROMIUM = os.environ.get("BIOBANK_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
BROWSER_BIOBANK = "BRW"
PASSWORD = "browser test password"
STARTUP_SECONDS = 60
# username -> (role, biobank code or None)
USERS: dict[str, tuple[str, str | None]] = {
    "admin": ("admin", None),
    "manager": ("manager", BROWSER_BIOBANK),
    "tech": ("technician", BROWSER_BIOBANK),
}

CREATE_BIOBANK = f"""
from biobank.config import get_settings
from biobank.identity.principal import system_principal
from biobank.institutions.schemas import BiobankCreate
from biobank.institutions.service import create_biobank
from biobank.kit.db import unit_of_work

with unit_of_work() as session:
    create_biobank(session, system_principal(get_settings().institution_code),
                   BiobankCreate(code="{BROWSER_BIOBANK}", name="Browser test biobank", country="CN"))
"""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test in this folder drives the browser, whether or not it says so."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


_call_failed = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Remember whether the test itself failed, so the page fixture can keep a screenshot."""
    report = yield
    if report.when == "call":
        item.stash[_call_failed] = report.failed
    return report


@dataclass
class LiveServer:
    """A node listening on localhost, and who can log in to it."""

    url: str
    log_path: Path
    password: str = PASSWORD
    users: dict[str, tuple[str, str | None]] = field(default_factory=lambda: dict(USERS))
    biobank: str = BROWSER_BIOBANK
    # The node's environment, for a test that arranges data the UI cannot create (`python -c` with it).
    env: dict[str, str] = field(default_factory=dict)

    def log_tail(self, lines: int = 60) -> str:
        """The end of the server's output, for failure messages."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"


def _listening_socket() -> socket.socket:
    """A socket bound to a free localhost port, handed to uvicorn (--fd) so no other process can take it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _cli() -> list[str]:
    script = Path(sys.executable).with_name("biobank")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from biobank.cli import main; main()"]


def _run(command: list[str], env: dict[str, str], *, stdin: str | None = None) -> None:
    result = subprocess.run(command, env=env, input=stdin, capture_output=True, text=True, timeout=120,
                            check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:4])} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")


def _server_env(data_dir: Path, database_url: str) -> dict[str, str]:
    # The node reads only what we give it: no BIOBANK_* setting leaks in from the developer's shell.
    env = {key: value for key, value in os.environ.items() if not key.startswith("BIOBANK_")}
    env |= {
        "BIOBANK_ENV": "development",
        "BIOBANK_DATA_DIR": str(data_dir),
        "BIOBANK_DATABASE_URL": database_url,
        "BIOBANK_LOG_JSON": "false",
        "BIOBANK_LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }
    return env


def _wait_until_healthy(url: str, process: subprocess.Popen[bytes], server: LiveServer) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}:\n{server.log_tail()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"the server did not answer /healthz within {STARTUP_SECONDS}s:\n{server.log_tail()}")


@pytest.fixture(scope="session")
def live_server(template_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A node served by uvicorn in a subprocess, with a biobank and one user per role."""
    root = tmp_path_factory.mktemp("live")
    data_dir = root / "data"
    pg_database = None
    if POSTGRES:
        pg_database = f"biobank_browser_{os.getpid()}"
        _pg_admin_execute(f'DROP DATABASE IF EXISTS "{pg_database}" WITH (FORCE)')
        _pg_admin_execute(f'CREATE DATABASE "{pg_database}" TEMPLATE "{template_database}"')
        database_url = _pg_url(pg_database)
    else:
        path = root / "live.sqlite3"
        shutil.copyfile(template_database, path)
        database_url = f"sqlite:///{path}"
    env = _server_env(data_dir, database_url)

    _run([*_cli(), "db", "upgrade"], env)
    _run([sys.executable, "-c", CREATE_BIOBANK], env)
    for username, (role, biobank) in USERS.items():
        _run([*_cli(), "users", "create", username, "--role", role, *(["--biobank", biobank] if biobank else [])],
             env, stdin=PASSWORD + "\n")

    with _listening_socket() as sock:
        port = sock.getsockname()[1]
        url = f"http://127.0.0.1:{port}"
        server = LiveServer(url=url, log_path=root / "server.log", env=env)
        with server.log_path.open("wb") as log:
            # Equivalent to `python -m uvicorn biobank.app:asgi_app --factory --port PORT`, on our socket.
            process = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "biobank.app:asgi_app", "--factory",
                 "--fd", str(sock.fileno()), "--no-access-log"],
                env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root, pass_fds=(sock.fileno(),),
            )
    try:
        _wait_until_healthy(url, process, server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if pg_database:
            _pg_admin_execute(f'DROP DATABASE IF EXISTS "{pg_database}" WITH (FORCE)')


@pytest.fixture(scope="package")
def chromium_browser() -> Iterator[Browser]:
    """Debian's Chromium driven by Playwright (never a browser downloaded by `playwright install`)."""
    if not Path(CHROMIUM).exists():
        message = f"Chromium not found at {CHROMIUM}: apt-get install -y chromium"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(chromium_browser: Browser, live_server: LiveServer, request: pytest.FixtureRequest,
         tmp_path: Path) -> Iterator[Page]:
    """A fresh browser tab (own cookies) whose relative URLs go to the live server."""
    context = chromium_browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(10_000)
    tab = context.new_page()
    try:
        yield tab
    finally:
        if request.node.stash.get(_call_failed, False):
            shot = tmp_path / "failure.png"
            with contextlib.suppress(Exception):
                tab.screenshot(path=str(shot), full_page=True)
                print(f"screenshot of the failed page: {shot}\nserver log:\n{live_server.log_tail()}")
        context.close()


@pytest.fixture
def log_in(live_server: LiveServer) -> Callable[..., None]:
    """Log a user in through the login form: log_in(page, "manager")."""

    def _log_in(tab: Page, username: str, password: str | None = None) -> None:
        tab.goto("/login")
        tab.get_by_label("Username").fill(username)
        tab.get_by_label("Password").fill(password if password is not None else live_server.password)
        tab.get_by_role("button", name="Log in").click()

    return _log_in
