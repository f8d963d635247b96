"""The compiler wrapper: pinned version, cancun, deployment order, the deployed code is the compiled code."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import boa
import pytest

from biobank.ledger import compiler
from biobank.ledger.keys import Role
from tests.ledger.contracts.conftest import World

EIP170_LIMIT = 24576


def test_compile_all_in_deployment_order() -> None:
    compiled = compiler.compile_all()
    assert list(compiled) == list(compiler.CONTRACT_NAMES)
    assert compiler.CONTRACT_NAMES[0] == "InstitutionRegistry"
    for name, contract in compiled.items():
        assert contract.name == name
        assert 0 < len(contract.runtime_bytecode) < EIP170_LIMIT
        assert len(contract.bytecode) > len(contract.runtime_bytecode)
        assert any(item.get("type") == "function" for item in contract.abi)
        source = compiler.contract_source(name)
        assert contract.source_hash == hashlib.sha256(source.encode()).hexdigest()
        assert source.startswith("# pragma version 0.4.3\n")


def test_compile_is_cached() -> None:
    assert compiler.compile_contract("AuditAnchors") is compiler.compile_contract("AuditAnchors")


def test_unknown_contract() -> None:
    with pytest.raises(KeyError):
        compiler.contract_source("Nope")


def test_deployed_code_is_the_compiled_runtime(world: World) -> None:
    for contract in (world.registry, world.resources, world.agreements, world.revenue, world.anchors):
        compiled = compiler.compile_contract(contract.contract_name)
        assert boa.env.get_code(contract.address) == compiled.runtime_bytecode


def test_wrong_vyper_version_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import vyper

    monkeypatch.setattr(vyper, "__version__", "0.4.2")
    with pytest.raises(compiler.CompilerVersionError, match=r"0\.4\.2"):
        compiler._compile("AuditAnchors")


def test_compilations_are_cached_on_disk_by_content(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BIOBANK_CONTRACT_CACHE", str(tmp_path))
    fresh = compiler.compile_contract.__wrapped__("AuditAnchors")
    (cached_file,) = tmp_path.glob("AuditAnchors-*.json")
    assert compiler.compile_contract.__wrapped__("AuditAnchors") == fresh  # read back, equal
    cached_file.write_text("{not json")  # a damaged cache entry is recompiled, not trusted
    assert compiler.compile_contract.__wrapped__("AuditAnchors") == fresh


def test_role_flags_match_keys_module() -> None:
    source = compiler.contract_source("InstitutionRegistry")
    for role in Role:
        match = re.search(rf"^{role.name}: constant\(uint256\) = (\d+)$", source, re.MULTILINE)
        assert match is not None and int(match.group(1)) == role.value
