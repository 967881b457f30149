"""The failover rules (`libertai_failover.rules`)."""

from libertai_failover.rules import (
    error_reason,
    host_body,
    order_hosts,
    read_model,
    retry_reason,
    status_reason,
)

__all__ = ["error_reason", "host_body", "order_hosts", "read_model", "retry_reason", "status_reason"]
