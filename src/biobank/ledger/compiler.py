"""Compile the consortium contracts with the pinned Vyper version for the `cancun` EVM."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

COMPILER_VERSION = "0.4.3"
EVM_VERSION = "cancun"
# Deployment order: the registry first, the others take its address in their constructor.
CONTRACT_NAMES: tuple[str, ...] = (
    "InstitutionRegistry",
    "ResourceRegistry",
    "AccessAgreements",
    "RevenueLedger",
    "AuditAnchors",
)


class CompilerVersionError(RuntimeError):
    """The installed Vyper is not the pinned version, so the bytecode would differ from other nodes'."""


@dataclass(frozen=True)
class Compiled:
    """One compiled contract."""

    name: str
    abi: list[dict[str, Any]]
    bytecode: bytes
    runtime_bytecode: bytes
    source_hash: str


def contract_source(name: str) -> str:
    """The Vyper source of a contract shipped in this package."""
    if name not in CONTRACT_NAMES:
        raise KeyError(f"unknown contract {name!r}")
    return resources.files("biobank.ledger").joinpath("contracts", f"{name}.vy").read_text(encoding="utf-8")


def _check_vyper() -> Any:
    try:
        import vyper
        from vyper.compiler import compile_code
        from vyper.compiler.settings import Settings
    except ImportError as exc:  # pragma: no cover - vyper is a dependency
        raise CompilerVersionError(f"vyper {COMPILER_VERSION} is not installed") from exc
    installed = str(vyper.__version__).split("+")[0]
    if installed != COMPILER_VERSION:
        raise CompilerVersionError(f"vyper {installed} is installed; the contracts are pinned to {COMPILER_VERSION}")
    return compile_code, Settings


def _hex_bytes(value: str) -> bytes:
    return bytes.fromhex(value.removeprefix("0x"))


def cache_dir() -> Path:
    """Where compiled contracts are kept between processes (BIOBANK_CONTRACT_CACHE or ~/.cache)."""
    configured = os.environ.get("BIOBANK_CONTRACT_CACHE")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "biobank-commons" / "contracts"


def _cache_key(name: str) -> str:
    """Content address of a compilation: every contract source, the compiler and the EVM version."""
    digest = hashlib.sha256(f"{name}\0{COMPILER_VERSION}\0{EVM_VERSION}".encode())
    folder = resources.files("biobank.ledger").joinpath("contracts")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith((".vy", ".vyi")):
            digest.update(entry.name.encode() + b"\0" + entry.read_bytes())
    return digest.hexdigest()


def _load_cached(name: str, key: str) -> Compiled | None:
    path = cache_dir() / f"{name}-{key}.json"
    try:
        data = json.loads(path.read_text())
        return Compiled(name=name, abi=data["abi"], bytecode=bytes.fromhex(data["bytecode"]),
                        runtime_bytecode=bytes.fromhex(data["runtime_bytecode"]), source_hash=data["source_hash"])
    except (OSError, ValueError, KeyError):
        return None


def _store_cached(compiled: Compiled, key: str) -> None:
    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{compiled.name}-{key}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps({"abi": compiled.abi, "bytecode": compiled.bytecode.hex(),
                                   "runtime_bytecode": compiled.runtime_bytecode.hex(),
                                   "source_hash": compiled.source_hash}))
        tmp.replace(folder / f"{compiled.name}-{key}.json")
    except OSError:
        pass  # a read-only home only costs the next process a compilation


@cache
def compile_contract(name: str) -> Compiled:
    """Compile one contract: cached per process, and on disk by content (sources + compiler version)."""
    if name not in CONTRACT_NAMES:
        raise KeyError(f"unknown contract {name!r}")
    key = _cache_key(name)
    cached = _load_cached(name, key)
    if cached is not None:
        return cached
    compiled = _compile(name)
    _store_cached(compiled, key)
    return compiled


def _compile(name: str) -> Compiled:
    compile_code, settings_cls = _check_vyper()
    source = contract_source(name)
    out = compile_code(
        source,
        contract_path=f"{name}.vy",
        output_formats=["abi", "bytecode", "bytecode_runtime"],
        settings=settings_cls(evm_version=EVM_VERSION),
    )
    return Compiled(
        name=name,
        abi=list(out["abi"]),
        bytecode=_hex_bytes(out["bytecode"]),
        runtime_bytecode=_hex_bytes(out["bytecode_runtime"]),
        source_hash=hashlib.sha256(source.encode("utf-8")).hexdigest(),
    )


def compile_all() -> dict[str, Compiled]:
    """Every contract, in deployment order."""
    return {name: compile_contract(name) for name in CONTRACT_NAMES}
