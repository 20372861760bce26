"""`sweep --address`: check the value and that something answers there, within a bound, before anything is written.

Ray's own connect retries for minutes when nothing listens; a plain TCP connect with a timeout answers at once
(refused) or within CONNECT_TIMEOUT_S (a silent host).
"""
from __future__ import annotations

import ipaddress
import socket
from typing import Optional

from bench.errors import UserError

CONNECT_TIMEOUT_S = 5.0  # documented in docs/sweeps.md


def parse_address(address: str) -> Optional[tuple[str, int]]:
    """(host, port) of HOST:PORT or [IPv6]:PORT; None for `auto` (Ray finds the cluster started on this machine)."""
    text = address.strip()
    if text == "auto":
        return None
    if text.startswith("ray://"):
        text = text[len("ray://"):]
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
        ok = bool(sep) and _is_ip(host, 6)
    else:
        host, _, port_text = text.rpartition(":")
        ok = bool(host) and ":" not in host and " " not in host
    if not ok or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise UserError(f"--address {address!r}: expected `auto` or HOST:PORT (e.g. 10.0.0.5:6379, "
                        f"[fd00::5]:6379), with a port from 1 to 65535")
    return host, int(port_text)


def _is_ip(text: str, version: int) -> bool:
    try:
        return ipaddress.ip_address(text).version == version
    except ValueError:
        return False


def probe(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """UserError unless a TCP connection to the address opens within timeout_s."""
    hostport = parse_address(address)
    if hostport is None:
        return
    try:
        with socket.create_connection(hostport, timeout=timeout_s):
            pass
    except OSError as exc:
        reason = "no answer" if isinstance(exc, TimeoutError) else (exc.strerror or type(exc).__name__)
        raise UserError(f"--address {address}: cannot connect to a Ray cluster there within {timeout_s:g}s "
                        f"({reason}); start one with `ray start --head` or leave out --address for a local "
                        f"embedded Ray") from None
