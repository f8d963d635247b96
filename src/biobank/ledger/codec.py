"""Offline ABI helpers: calldata, return values, constructor arguments and event logs, with
eth_abi / eth_utils only (no provider), so the same code serves the embedded and JSON-RPC chains."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_account.signers.local import LocalAccount
from eth_utils.abi import collapse_if_tuple
from eth_utils.crypto import keccak

from biobank.ledger.client import ChainClient, LogEntry, Receipt, checksum, transact

ABI = Sequence[dict[str, Any]]


def _types(params: Sequence[dict[str, Any]]) -> list[str]:
    return [collapse_if_tuple(p) for p in params]


def _signature(entry: dict[str, Any]) -> str:
    return f"{entry['name']}({','.join(_types(entry.get('inputs', [])))})"


def _normalize(abi_type: str, value: Any) -> Any:
    """Accept hex strings for bytes types and for addresses (outbox payloads are JSON)."""
    if abi_type.endswith("]"):
        inner = abi_type[: abi_type.rindex("[")]
        return [_normalize(inner, v) for v in value]
    if abi_type.startswith("bytes") and isinstance(value, str):
        return bytes.fromhex(value.removeprefix("0x"))
    if abi_type == "address" and isinstance(value, bytes):
        return checksum(value)
    return value


def _denormalize(abi_type: str, value: Any) -> Any:
    """Checksummed addresses in decoded values (eth_abi gives lowercase hex)."""
    if abi_type.endswith("]"):
        inner = abi_type[: abi_type.rindex("[")]
        return [_denormalize(inner, v) for v in value]
    if abi_type == "address":
        return checksum(value)
    if abi_type.startswith("(") and isinstance(value, tuple):
        inner_types = _split_tuple(abi_type)
        return tuple(_denormalize(t, v) for t, v in zip(inner_types, value, strict=True))
    return value


def _split_tuple(abi_type: str) -> list[str]:
    """The component types of "(t1,t2,...)" (nested tuples kept whole)."""
    parts, depth, current = [], 0, ""
    for char in abi_type[1:-1]:
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        depth += char == "("
        depth -= char == ")"
        current += char
    if current:
        parts.append(current)
    return parts


class Contract:
    """A contract's ABI at an address: encode calls, decode results and logs."""

    def __init__(self, abi: ABI, address: str | None = None) -> None:
        self.abi = list(abi)
        self.address = checksum(address) if address else None
        self._functions: dict[str, list[dict[str, Any]]] = {}
        self._events: dict[bytes, dict[str, Any]] = {}
        self._constructor: dict[str, Any] | None = None
        for entry in self.abi:
            kind = entry.get("type")
            if kind == "function":
                self._functions.setdefault(entry["name"], []).append(entry)
            elif kind == "event" and not entry.get("anonymous"):
                self._events[keccak(text=_signature(entry))] = entry
            elif kind == "constructor":
                self._constructor = entry

    def function(self, fn: str, arg_count: int | None = None) -> dict[str, Any]:
        """The ABI entry of `fn` (an overload chosen by argument count, e.g. Vyper default args)."""
        entries = self._functions.get(fn)
        if not entries:
            raise KeyError(f"no function {fn!r} in the ABI")
        if arg_count is not None:
            matching = [e for e in entries if len(e.get("inputs", [])) == arg_count]
            if not matching:
                raise TypeError(
                    f"{fn}() takes {[len(e.get('inputs', [])) for e in entries]} arguments, not {arg_count}"
                )
            return matching[0]
        return entries[0]

    def selector(self, fn: str, arg_count: int | None = None) -> bytes:
        """The 4-byte selector of `fn`."""
        return keccak(text=_signature(self.function(fn, arg_count)))[:4]

    def encode(self, fn: str, *args: Any) -> bytes:
        """Calldata for `fn(*args)`."""
        entry = self.function(fn, len(args))
        types = _types(entry.get("inputs", []))
        values = [_normalize(t, v) for t, v in zip(types, args, strict=True)]
        return keccak(text=_signature(entry))[:4] + abi_encode(types, values)

    def decode(self, fn: str, output: bytes, arg_count: int | None = None) -> Any:
        """The return value of `fn`: None for no outputs, the value for one, a tuple for several."""
        outputs = self.function(fn, arg_count).get("outputs", [])
        if not outputs:
            return None
        types = _types(outputs)
        values = [_denormalize(t, v) for t, v in zip(types, abi_decode(types, output), strict=True)]
        return values[0] if len(values) == 1 else tuple(values)

    def encode_constructor(self, bytecode: bytes | str, *args: Any) -> bytes:
        """Init code with the ABI-encoded constructor arguments appended."""
        code = bytes.fromhex(bytecode.removeprefix("0x")) if isinstance(bytecode, str) else bytes(bytecode)
        inputs = self._constructor.get("inputs", []) if self._constructor else []
        if len(inputs) != len(args):
            raise TypeError(f"the constructor takes {len(inputs)} arguments, not {len(args)}")
        types = _types(inputs)
        return code + abi_encode(types, [_normalize(t, v) for t, v in zip(types, args, strict=True)])

    def event_topic(self, name: str) -> bytes:
        """topic0 of event `name`."""
        for topic, entry in self._events.items():
            if entry["name"] == name:
                return topic
        raise KeyError(f"no event {name!r} in the ABI")

    def decode_log(self, log: LogEntry) -> tuple[str, dict[str, Any]] | None:
        """(event name, arguments) of a log of this contract, None when it is not one of its events.

        Indexed dynamic arguments (string, bytes, arrays) are only their keccak hash in the topic.
        """
        if not log.topics or (self.address and checksum(log.address) != self.address):
            return None
        entry = self._events.get(bytes(log.topics[0]))
        if entry is None:
            return None
        inputs = entry.get("inputs", [])
        indexed = [p for p in inputs if p.get("indexed")]
        plain = [p for p in inputs if not p.get("indexed")]
        if len(log.topics) - 1 != len(indexed):
            return None
        args: dict[str, Any] = {}
        for param, topic in zip(indexed, log.topics[1:], strict=True):
            kind = collapse_if_tuple(param)
            dynamic = kind in ("string", "bytes") or kind.endswith("]") or kind.startswith("(")
            args[param["name"]] = bytes(topic) if dynamic else _denormalize(kind, abi_decode([kind], bytes(topic))[0])
        plain_types = _types(plain)
        values = abi_decode(plain_types, log.data) if plain else ()
        for param, kind, value in zip(plain, plain_types, values, strict=True):
            args[param["name"]] = _denormalize(kind, value)
        return entry["name"], {p["name"]: args[p["name"]] for p in inputs}


class ContractHandle:
    """A deployed contract on a chain client: call views, send transactions, read its events."""

    def __init__(self, client: ChainClient, abi: ABI, address: str) -> None:
        self.client = client
        self.contract = Contract(abi, address)
        self.address = checksum(address)

    def call(self, fn: str, *args: Any, sender: str | None = None) -> Any:
        """Call a view (or simulate a write) and decode its result; raises Reverted."""
        output = self.client.call(self.address, self.contract.encode(fn, *args), sender)
        return self.contract.decode(fn, output, len(args))

    def transact(self, account: LocalAccount, fn: str, *args: Any, gas: int | None = None) -> Receipt:
        """Send `fn(*args)` signed by `account`; returns the receipt (raises Reverted)."""
        return transact(self.client, account, self.address, self.contract.encode(fn, *args), gas)

    def events(self, from_block: int = 0, to_block: int | None = None) -> list[tuple[str, dict[str, Any], LogEntry]]:
        """This contract's decoded events in the block range, in chain order."""
        out = []
        for log in self.client.logs([self.address], from_block, to_block):
            decoded = self.contract.decode_log(log)
            if decoded is not None:
                out.append((decoded[0], decoded[1], log))
        return out

    def decode_receipt(self, receipt: Receipt) -> list[tuple[str, dict[str, Any]]]:
        """This contract's events in one receipt."""
        return [d for d in (self.contract.decode_log(log) for log in receipt.logs) if d is not None]
