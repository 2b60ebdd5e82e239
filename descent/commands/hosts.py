"""Which addresses ``descent up`` and ``descent api`` may listen on without more ado.

On a loopback address only this machine reaches the api, and the api answers only the loopback
host names (``core.settings.LOOPBACK_HOSTS``), so a web page cannot rebind a name of its own to
it.  Any other address serves a network: the names clients use must be listed
(``--allowed-host`` / ``DESCENT_ALLOWED_HOSTS``) and someone must be able to sign in."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from core.settings import LOOPBACK_HOSTS

ALLOWED_HOSTS_ENV = "DESCENT_ALLOWED_HOSTS"


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def split_hosts(value: str | None) -> list[str]:
    return [h.strip() for h in (value or "").split(",") if h.strip()]


def allowed_hosts(extra: Iterable[str]) -> str:
    """``DESCENT_ALLOWED_HOSTS`` for the api: the loopback names, then ``extra``, once each."""
    return ",".join(dict.fromkeys([*LOOPBACK_HOSTS, *extra]))


def refusal(prog: str, host: str, how: str) -> str:
    """The one line ``prog`` prints when it will not listen on ``host``."""
    return (f"{prog}: refusing to listen on {host}, which is not a loopback address, without {how}: "
            "the api would answer any host name a web page points at it (DNS rebinding)")
