"""The TLS trust that probes and the failover client share. The code lives in the light client
package (`libertai_failover.tls`), which the failover client ships alone."""

from libertai_failover.tls import make_ssl_context

__all__ = ["make_ssl_context"]
