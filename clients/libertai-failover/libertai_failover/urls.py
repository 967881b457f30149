"""Host URLs: one canonical spelling for every host, and the allow-list that decides which get the key.

`normalise_url` gives every URL one spelling so that the same host read twice (or written two ways
by the gateway) is one member, and so that the allow-list compares like with like.

Allow-list patterns (`AllowList.parse("https://*.libertai.io,http://127.0.0.1:*")`):

- the scheme (`http` or `https`) must match exactly; there is no scheme wildcard;
- the host is either an exact name or address, or `*.` followed by a domain suffix. `*` stands for
  ONE OR MORE whole labels: `*.libertai.io` admits `a.libertai.io` and `a.b.libertai.io` but not
  `libertai.io` itself nor `evil-libertai.io`. A wildcard never matches an IP address. `*` is
  allowed only as the whole leftmost label (`a*.x.io`, `a.*.io` and a bare `*` are rejected);
- the port: `:*` admits any port, `:N` exactly port N, and no port admits the scheme's default port
  only (443 for https, 80 for http);
- any path in a pattern is ignored: a pattern admits every path of the hosts it names.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["AllowList", "HostPattern", "normalise_url"]

DEFAULT_PORTS: dict[str, int] = {"http": 80, "https": 443}

# One DNS label: letters, digits, hyphens (not at either end) and underscores, 1..63 characters.
_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
# Characters never acceptable anywhere in a URL we store: controls (C0, DEL, C1), space, backslash,
# and lone surrogates (JSON's "\ud800" decodes to one: not Unicode, so no database, metric family or
# log encoder can write it).
_BAD_CHARS = re.compile(r"[\x00-\x20\x7f-\x9f\\\ud800-\udfff]")


def _normalise_host(raw_host: str, where: str) -> str:
    """Lower-case a host name (IDNA-encoded) or give an IP address its canonical form."""
    host = raw_host
    if host.startswith("[") and host.endswith("]"):
        try:
            return f"[{ipaddress.IPv6Address(host[1:-1]).compressed}]"
        except ValueError:
            raise ValueError(f"{where}: invalid IPv6 address {host!r}") from None
    if not host:
        raise ValueError(f"{where}: missing host")
    try:
        host = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise ValueError(f"{where}: invalid host name {raw_host!r}") from None
    if host.endswith("."):
        host = host[:-1]
    if len(host) > 253 or not all(_LABEL.match(label) for label in host.split(".")):
        raise ValueError(f"{where}: invalid host name {raw_host!r}")
    return host


def _is_ip(host: str) -> bool:
    if host.startswith("["):
        return True
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return True


def _split_netloc(netloc: str, where: str) -> tuple[str, str | None]:
    """Split `host[:port]` (IPv6 in brackets) into host and the port text, if any."""
    if netloc.startswith("["):
        end = netloc.find("]")
        if end < 0:
            raise ValueError(f"{where}: unclosed '[' in host")
        host, rest = netloc[: end + 1], netloc[end + 1 :]
        if not rest:
            return host, None
        if not rest.startswith(":"):
            raise ValueError(f"{where}: unexpected text after IPv6 address")
        return host, rest[1:]
    if ":" in netloc:
        host, _, port = netloc.rpartition(":")
        return host, port
    return netloc, None


def _parse_port(text: str, where: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"{where}: invalid port {text!r}")
    return int(text)


def normalise_url(raw: str) -> str:
    """Return the canonical form of a host URL: `scheme://host[:port][/path]`.

    Scheme and host are lower-cased (IDNA for non-ASCII names, canonical text for IPv6), the
    scheme's default port is dropped, and the query, fragment and trailing slashes are removed.
    Raises `ValueError` for anything but an absolute http(s) URL with a valid host, and for a URL
    carrying credentials (`user:pass@`): such a URL is refused rather than silently rewritten.
    """
    if not isinstance(raw, str):
        raise ValueError("URL must be a string")
    return _normalise(raw)


# Discovery meets the same few thousand URLs every minute: parsing them again each time was most
# of a poll's cost.
@functools.lru_cache(maxsize=1 << 17)
def _normalise(raw: str) -> str:
    text = raw.strip()
    shown = text if len(text) <= 80 else text[:77] + "..."
    where = f"URL {shown!r}"
    if not text:
        raise ValueError("empty URL")
    if _BAD_CHARS.search(text):
        raise ValueError(f"{where}: contains whitespace, control characters, a backslash or invalid Unicode")
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ValueError(f"{where}: scheme must be http or https")
    netloc = parts.netloc
    if "@" in netloc:
        raise ValueError(f"{where}: credentials in a URL are not accepted")
    host_text, port_text = _split_netloc(netloc, where)
    host = _normalise_host(host_text, where)
    port = _parse_port(port_text, where) if port_text not in (None, "") else None
    path = parts.path.rstrip("/")
    port_part = "" if port is None or port == DEFAULT_PORTS[scheme] else f":{port}"
    return f"{scheme}://{host}{port_part}{path}"


@dataclass(frozen=True, slots=True)
class HostPattern:
    """One allow-list entry. `suffix` is set (`.libertai.io`) for a wildcard pattern, else `host`."""

    text: str
    scheme: str
    host: str | None
    suffix: str | None
    port: int | None  # None = any port

    @classmethod
    def parse(cls, raw: str) -> HostPattern:
        text = raw.strip()
        where = f"allow-list pattern {text!r}"
        scheme, sep, rest = text.partition("://")
        scheme = scheme.lower()
        if not sep or scheme not in DEFAULT_PORTS:
            raise ValueError(f"{where}: must start with http:// or https://")
        if _BAD_CHARS.search(rest):
            raise ValueError(f"{where}: contains whitespace, control characters or a backslash")
        netloc = re.split(r"[/?#]", rest, maxsplit=1)[0]
        if "@" in netloc:
            raise ValueError(f"{where}: credentials are not accepted")
        host_text, port_text = _split_netloc(netloc, where)
        if port_text == "*":
            port: int | None = None
        elif port_text in (None, ""):
            port = DEFAULT_PORTS[scheme]
        else:
            port = _parse_port(port_text, where)
        if host_text.startswith("*."):
            suffix_host = _normalise_host(host_text[2:], where)
            if "*" in suffix_host or _is_ip(suffix_host):
                raise ValueError(f"{where}: '*.' must be followed by a domain name")
            host, suffix = None, "." + suffix_host
            shown_host = "*" + suffix
        elif "*" in host_text:
            raise ValueError(f"{where}: '*' may only stand for the whole leftmost labels ('*.example.com')")
        else:
            host, suffix = _normalise_host(host_text, where), None
            shown_host = host
        if port is None:
            shown_port = ":*"
        elif port == DEFAULT_PORTS[scheme]:
            shown_port = ""
        else:
            shown_port = f":{port}"
        return cls(f"{scheme}://{shown_host}{shown_port}", scheme, host, suffix, port)

    def admits(self, scheme: str, host: str, port: int) -> bool:
        """`host` is normalised; `port` is the effective port (the default port filled in)."""
        if scheme != self.scheme or (self.port is not None and port != self.port):
            return False
        if self.suffix is not None:
            return host.endswith(self.suffix) and len(host) > len(self.suffix) and not _is_ip(host)
        return host == self.host


class AllowList:
    """Which host URLs may receive the API key (see the module docstring for the pattern syntax).

    An empty specification admits nothing. Immutable; `str()` gives back the normalised patterns.
    """

    __slots__ = ("_patterns", "_verdicts")

    def __init__(self, patterns: tuple[HostPattern, ...]) -> None:
        self._patterns = patterns
        # Verdicts never change (the patterns cannot): every discovery asks again about every host.
        self._verdicts: dict[str, bool] = {}

    @classmethod
    def parse(cls, spec: str) -> AllowList:
        """Parse comma-separated patterns; empty items are ignored. `ValueError` on a bad pattern."""
        return cls(tuple(HostPattern.parse(item) for item in spec.split(",") if item.strip()))

    @property
    def patterns(self) -> tuple[HostPattern, ...]:
        return self._patterns

    def admits(self, url: str) -> bool:
        """True if `url` (any spelling; it is normalised first) matches a pattern. Never raises."""
        verdict = self._verdicts.get(url)
        if verdict is None:
            if len(self._verdicts) >= 1 << 17:
                self._verdicts.clear()
            verdict = self._verdicts[url] = self._admits(url)
        return verdict

    def _admits(self, url: str) -> bool:
        try:
            canonical = normalise_url(url)
        except ValueError:
            return False
        scheme, _, rest = canonical.partition("://")
        netloc = rest.split("/", 1)[0]
        host, port_text = _split_netloc(netloc, "")
        port = int(port_text) if port_text else DEFAULT_PORTS[scheme]
        return any(p.admits(scheme, host, port) for p in self._patterns)

    def __str__(self) -> str:
        return ",".join(p.text for p in self._patterns)

    def __repr__(self) -> str:
        return f"AllowList.parse({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AllowList) and other._patterns == self._patterns

    def __hash__(self) -> int:
        return hash(self._patterns)
