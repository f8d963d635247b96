"""The consortium ledger: Vyper contracts, chain clients (embedded py-evm / JSON-RPC), the outbox
publisher and audit anchoring. Services call `ledger.outbox.enqueue(...)`; nothing here calls a
domain service back (see docs/decisions/2026-11-21-ledger-and-access.md)."""
