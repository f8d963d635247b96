"""Shared ledger fixtures: a real anvil node for the JSON-RPC path (one per test session) and a
fresh embedded chain per test.

anvil comes from npm: `npm install --prefix .ci/tools @foundry-rs/anvil@1.7.1` (CI does the same).
Without it the JSON-RPC tests fail, with that hint, unless BIOBANK_SKIP_ANVIL=1 is set.
Every test on the shared anvil should use its own fresh account (`Account.create()`): fees are
zero, so new accounts need no funding, and nonces of different tests never collide."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from biobank.ledger.embedded import EmbeddedChain
from biobank.ledger.jsonrpc import JsonRpcChain

ROOT = Path(__file__).resolve().parents[2]
ANVIL_CHAIN_ID = 31337
EMBEDDED_CHAIN_ID = 20387
INSTALL_HINT = (
    "anvil not found: install it with `npm install --prefix .ci/tools @foundry-rs/anvil@1.7.1` "
    "(from the repository root), or set BIOBANK_SKIP_ANVIL=1 to skip the JSON-RPC tests"
)


def anvil_binary() -> str | None:
    """The anvil executable: the repository's .ci/tools install first, then PATH."""
    local = ROOT / ".ci" / "tools" / "node_modules" / ".bin" / "anvil"
    if local.exists():
        return str(local)
    return shutil.which("anvil")


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rpc_answers(url: str) -> bool:
    """Whether a JSON-RPC node answers eth_chainId at `url`."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})  # noqa: S310 - http URL we built
    try:
        with urllib.request.urlopen(request, timeout=1) as response:  # noqa: S310
            return "result" in json.loads(response.read())
    except OSError:
        return False


class AnvilNode:
    """A running anvil process (zero base fee and gas price: the consortium chain's free gas)."""

    def __init__(
        self, binary: str, chain_id: int = ANVIL_CHAIN_ID, port: int | None = None, extra_args: tuple[str, ...] = ()
    ) -> None:
        self.port = port or free_port()
        self.chain_id = chain_id
        self.url = f"http://127.0.0.1:{self.port}"
        args = [
            binary,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--chain-id",
            str(chain_id),
            "--base-fee",
            "0",
            "--gas-price",
            "0",
            "--hardfork",
            "prague",
            "--silent",
            *extra_args,
        ]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while not rpc_answers(self.url):
            if self.process.poll() is not None:
                stderr = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
                raise RuntimeError(f"anvil exited with {self.process.returncode}: {stderr[-2000:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"anvil did not answer on {self.url} within 30 s")
            time.sleep(0.1)

    def stop(self) -> None:
        """Terminate the process (kill if it lingers)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stderr:
            self.process.stderr.close()


def start_anvil(chain_id: int = ANVIL_CHAIN_ID, extra_args: tuple[str, ...] = ()) -> AnvilNode:
    """Start an anvil node, or fail (skip with BIOBANK_SKIP_ANVIL=1) when it is not installed."""
    binary = anvil_binary()
    if binary is None:
        if os.environ.get("BIOBANK_SKIP_ANVIL") == "1":
            pytest.skip("BIOBANK_SKIP_ANVIL=1: JSON-RPC chain tests skipped")
        pytest.fail(INSTALL_HINT, pytrace=False)
    return AnvilNode(binary, chain_id, extra_args=extra_args)


@pytest.fixture(scope="session")
def anvil_node() -> Iterator[AnvilNode]:
    """The session's anvil node (process, port, chain id)."""
    node = start_anvil()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="session")
def anvil(anvil_node: AnvilNode) -> str:
    """The JSON-RPC URL of the session's anvil node (chain id 31337, zero fees, prague rules)."""
    return anvil_node.url


@pytest.fixture
def anvil_chain(anvil: str) -> Iterator[JsonRpcChain]:
    """A JSON-RPC client on the session's anvil."""
    client = JsonRpcChain(anvil, timeout=20)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def embedded_chain(tmp_path: Path) -> Iterator[EmbeddedChain]:
    """A fresh embedded chain in tmp_path/chain.sqlite3 (non-durable sync: tests need no fsync)."""
    chain = EmbeddedChain(tmp_path / "chain.sqlite3", chain_id=EMBEDDED_CHAIN_ID, durable=False)
    try:
        yield chain
    finally:
        chain.close()
