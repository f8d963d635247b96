"""Compile the consortium contracts with the pinned Vyper version for the `cancun` EVM."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
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


@lru_cache(maxsize=None)
def compile_contract(name: str) -> Compiled:
    """Compile one contract (cached per process)."""
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
