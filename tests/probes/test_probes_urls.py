"""normalise_url and AllowList."""

from __future__ import annotations

import pytest

from monitor.core.urls import AllowList, normalise_url


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://a.libertai.io", "https://a.libertai.io"),
        ("HTTPS://A.LibertAI.IO/", "https://a.libertai.io"),
        ("https://a.libertai.io:443/", "https://a.libertai.io"),
        ("http://a.libertai.io:80", "http://a.libertai.io"),
        ("https://a.libertai.io:80", "https://a.libertai.io:80"),
        ("http://127.0.0.1:8443", "http://127.0.0.1:8443"),
        ("https://a.libertai.io/prefix/", "https://a.libertai.io/prefix"),
        ("https://a.libertai.io/?x=1#frag", "https://a.libertai.io"),
        ("  https://a.libertai.io  ", "https://a.libertai.io"),
        ("https://a.libertai.io.", "https://a.libertai.io"),
        ("http://[::1]:8080/", "http://[::1]:8080"),
        ("http://[0:0:0:0:0:0:0:1]", "http://[::1]"),
        ("https://bücher.example", "https://xn--bcher-kva.example"),
    ],
)
def test_normalise_url_canonical_form(raw: str, expected: str) -> None:
    assert normalise_url(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "a.libertai.io",
        "ftp://a.libertai.io",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "https://",
        "https://user:pw@a.libertai.io",
        "https://a.libertai.io:99999",
        "https://a.libertai.io:abc",
        "https://a b.libertai.io",
        "https://a.libertai.io/\nx",
        "https://a\\b.io",
        "https://-bad-.io",
        "https://[::zz]",
        "https://a..b.io",
    ],
)
def test_normalise_url_rejects_bad_urls(raw: str) -> None:
    with pytest.raises(ValueError):
        normalise_url(raw)


def test_normalise_url_error_message_names_the_problem() -> None:
    with pytest.raises(ValueError, match="scheme must be http or https"):
        normalise_url("ftp://x.io")


@pytest.mark.parametrize(
    "url",
    [
        "https://a.libertai.io",
        "https://a.b.libertai.io",
        "https://A.LIBERTAI.IO/",
        "https://a.libertai.io:443",
        "https://a.libertai.io/some/path",
        "http://127.0.0.1:1234",
        "http://127.0.0.1",
    ],
)
def test_allow_list_admits(url: str) -> None:
    allow = AllowList.parse("https://*.libertai.io,http://127.0.0.1:*")
    assert allow.admits(url)


@pytest.mark.parametrize(
    "url",
    [
        "https://libertai.io",
        "https://evil-libertai.io",
        "https://a.libertai.io.evil.com",
        "http://a.libertai.io",
        "https://a.libertai.io:8443",
        "https://127.0.0.1:1234",
        "http://127.0.0.2:1234",
        "http://localhost:1234",
        "not a url",
        "https://user@a.libertai.io",
    ],
)
def test_allow_list_refuses(url: str) -> None:
    allow = AllowList.parse("https://*.libertai.io,http://127.0.0.1:*")
    assert not allow.admits(url)


def test_allow_list_exact_port_only_that_port() -> None:
    allow = AllowList.parse("https://h.example:8443")
    assert allow.admits("https://h.example:8443")
    assert not allow.admits("https://h.example")


def test_allow_list_wildcard_never_matches_ip() -> None:
    allow = AllowList.parse("http://*.0.1:*")
    assert not allow.admits("http://127.0.0.1:80")


def test_allow_list_pattern_path_is_ignored() -> None:
    allow = AllowList.parse("https://h.example/only/here")
    assert allow.admits("https://h.example/elsewhere")


def test_allow_list_str_gives_back_patterns() -> None:
    allow = AllowList.parse(" https://*.LibertAI.io , http://127.0.0.1:* ,https://x.io:443")
    assert str(allow) == "https://*.libertai.io,http://127.0.0.1:*,https://x.io"
    assert AllowList.parse(str(allow)) == allow


def test_allow_list_empty_admits_nothing() -> None:
    assert not AllowList.parse("").admits("https://a.libertai.io")


@pytest.mark.parametrize(
    "pattern",
    [
        "*.libertai.io",
        "ftp://*.x.io",
        "https://*",
        "https://a*.x.io",
        "https://a.*.io",
        "https://x.io:0",
        "https://x.io:abc",
        "https://u@x.io",
    ],
)
def test_allow_list_rejects_bad_pattern(pattern: str) -> None:
    with pytest.raises(ValueError):
        AllowList.parse(pattern)
