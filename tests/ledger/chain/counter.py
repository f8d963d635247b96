"""A small Vyper test contract (a counter with events, a struct view, a default-argument overload
and reverts with and without a reason), compiled once per test session for cancun."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import vyper
from vyper.compiler.settings import Settings

SOURCE = """
# pragma version 0.4.3

struct Stamp:
    who: address
    value: uint256
    note: bytes32

event Bumped:
    who: indexed(address)
    value: uint256
    by: uint256

event Noted:
    label: indexed(String[32])
    tag: indexed(bytes32)
    text: String[64]

owner: public(address)
count: public(uint256)
last: public(Stamp)

@deploy
def __init__(start: uint256, owner: address):
    self.count = start
    self.owner = owner

@external
def bump(by: uint256 = 1) -> uint256:
    assert by > 0, "by must be positive"
    self.count += by
    self.last = Stamp(who=msg.sender, value=self.count, note=empty(bytes32))
    log Bumped(who=msg.sender, value=self.count, by=by)
    return self.count

@external
def note(label: String[32], tag: bytes32, text: String[64]):
    log Noted(label=label, tag=tag, text=text)
    self.last = Stamp(who=msg.sender, value=self.count, note=tag)

@external
def only_owner():
    assert msg.sender == self.owner, "not the owner"
    self.count = 0

@external
def fail_silently(x: uint256):
    assert x == 42

@view
@external
def pair(x: uint256) -> (uint256, address):
    return x * 2, self.owner
"""


@dataclass(frozen=True)
class Compiled:
    abi: list[dict[str, Any]]
    bytecode: bytes


@cache
def counter() -> Compiled:
    """The compiled test contract."""
    out = vyper.compiler.compile_code(
        SOURCE, output_formats=["abi", "bytecode"], settings=Settings(evm_version="cancun")
    )
    return Compiled(abi=out["abi"], bytecode=bytes.fromhex(out["bytecode"].removeprefix("0x")))
