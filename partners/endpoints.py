"""Checks on partner push endpoints, so the gateway cannot be aimed at our own network."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return ip.is_global and not ip.is_multicast


def validate_push_endpoint(url: str, *, resolve: bool = True) -> None:
    """Require https to a public address unless ALLOW_PRIVATE_ENDPOINTS is on."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValidationError({"endpoint_url": "Must be an http(s) URL with a host."})
    if settings.ALLOW_PRIVATE_ENDPOINTS:
        return
    if parts.scheme != "https":
        raise ValidationError({"endpoint_url": "Push endpoints must use https."})
    if not resolve:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise ValidationError({"endpoint_url": f"Host does not resolve: {exc}"}) from exc
    if not infos or not all(_is_public(str(info[4][0])) for info in infos):
        raise ValidationError({"endpoint_url": "Host resolves to a non-public address."})
