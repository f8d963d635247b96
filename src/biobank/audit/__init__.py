"""The node's tamper-evident audit log (RFC 6962 transparency log with signed checkpoints)."""

from biobank.audit.service import as_details, record

__all__ = ["as_details", "record"]
