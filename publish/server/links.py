"""The URL a client used: links in every response follow it unless ``publish.base_url`` is set.

Why: a release is built once and served on whatever host, port or proxy prefix an operator
chooses (``serve --port 8080``, a reverse proxy under ``/gis``); links pointing at the URL of the
publish run send GDAL, QGIS and browsers to a dead port. So each request's links are built from

* ``publish.base_url`` (or ``serve --base-url``) when it is set: the operator says so;
* otherwise the request: its scheme, its ``Host`` header and the WSGI ``SCRIPT_NAME``.

``X-Forwarded-Proto/Host/Port/Prefix`` are believed only from a peer listed in
``publish.trusted_proxies`` (werkzeug's ``ProxyFix`` for those requests); from anyone else they
are removed before the application sees them, so a client cannot make the server write links to
a host of its choosing through them. A ``Host`` header that is not a plain host name or address
(with an optional port) is a 400: it would otherwise be copied into every link.
"""

from __future__ import annotations

import contextvars
import ipaddress
import re
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from werkzeug.middleware.proxy_fix import ProxyFix

from publish.errors import PublishError

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
#: a DNS name or IPv4 address, or a bracketed IPv6 address, and an optional port
HOST = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]{2,45}\])"
                  r"(?::[0-9]{1,5})?$")
#: a proxy prefix: path segments of unreserved characters only
PREFIX = re.compile(r"^(?:/[A-Za-z0-9._~-]+)*$")
#: The public root URL of the request being served (no trailing slash), for code that builds a
#: link outside a response body, e.g. a process printing a QR code (set by publish.server.api).
PUBLIC_ROOT: contextvars.ContextVar[str] = contextvars.ContextVar("public_root", default="")
FORWARDED = ("HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST",
             "HTTP_X_FORWARDED_PORT", "HTTP_X_FORWARDED_PREFIX", "HTTP_FORWARDED")


def check_base_url(url: str) -> str:
    """``url`` without its trailing slash, if it is http(s)://host[:port][/path]."""
    parts = urlsplit(url)
    if (parts.scheme not in ("http", "https") or not HOST.match(parts.netloc or "")
            or parts.query or parts.fragment or not PREFIX.match(parts.path.rstrip("/"))):
        raise PublishError("base_url_invalid", url=url)
    return url.rstrip("/")


def trusted_networks(values: Iterable[str]) -> list[Network]:
    """``publish.trusted_proxies`` as networks (a bare address is a /32 or /128)."""
    out = []
    for v in values:
        try:
            out.append(ipaddress.ip_network(str(v).strip(), strict=False))
        except ValueError:
            raise PublishError("trusted_proxy_invalid", value=v) from None
    return out


class ProxyHeaders:
    """WSGI middleware: X-Forwarded-* from trusted proxies applied, from anyone else dropped."""

    def __init__(self, app: WSGIApp, trusted: list[Network]) -> None:
        self.app = app
        self.trusted = trusted
        # one proxy in front of us; it sets proto, host, port and prefix
        self.fixed = ProxyFix(app, x_for=1, x_proto=1, x_host=1, x_port=1, x_prefix=1)

    def is_trusted(self, addr: str | None) -> bool:
        try:
            ip = ipaddress.ip_address(addr or "")
        except ValueError:
            return False
        return any(ip in net for net in self.trusted)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if self.trusted and self.is_trusted(environ.get("REMOTE_ADDR")):
            return self.fixed(environ, start_response)
        for key in FORWARDED:
            environ.pop(key, None)
        return self.app(environ, start_response)


def request_root(environ: dict[str, Any], fixed: str | None) -> str | None:
    """The public root URL for this request (no trailing slash), or None for a bad Host."""
    if fixed:
        return fixed
    scheme = environ.get("wsgi.url_scheme", "http")
    host = environ.get("HTTP_HOST") or ""
    if not host:
        port = str(environ.get("SERVER_PORT", ""))
        host = environ.get("SERVER_NAME", "localhost")
        if port and port != {"http": "80", "https": "443"}.get(scheme):
            host = f"{host}:{port}"
    prefix = environ.get("SCRIPT_NAME", "").rstrip("/")
    if scheme not in ("http", "https") or not HOST.match(host) or not PREFIX.match(prefix):
        return None
    return f"{scheme}://{host}{prefix}"
