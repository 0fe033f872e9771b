"""Which requests a ``fastuss serve`` server answers: its own Host names, and no other site's Origin.

Any web page the user has open can send requests to ``127.0.0.1``. Two checks keep such pages out,
as Jupyter does:

- **Host** (every request): a page on ``evil.example`` whose DNS name is re-pointed at 127.0.0.1 (DNS
  rebinding) reaches the server as ``Host: evil.example``; only the server's own names are answered:
  ``127.0.0.1:PORT``, ``localhost:PORT``, ``[::1]:PORT``, the bound host, and ``allowed_hosts``. A
  server bound to every interface (``0.0.0.0``, ``::``) cannot know the names it is reached by: it
  answers any Host and relies on its token (``make_server`` always gives it one).
- **Origin** (every request that carries one): browsers send it on every POST (and on cross-site
  reads); it must be ``http://`` plus one of the names above (for an any-Host server: the request's own
  Host). Clients that send none (curl, scripts) are not browsers and are let through.
"""

from __future__ import annotations

from collections.abc import Iterable

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
WILDCARD_HOSTS = ("0.0.0.0", "::", "")


def host_with_port(host: str, port: int) -> str:
    """``host:port`` as a browser writes it in a Host header (IPv6 in brackets, lower case)."""
    host = host.lower()
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{port}"


def own_hosts(bound_host: str, port: int, allowed_hosts: Iterable[str] = ()) -> frozenset[str] | None:
    """The Host header values a server answers (``None``: any, for a wildcard bind).

    Args:
        bound_host: the address the server listens on (``ServeConfig.host``).
        port: the port it listens on (after binding, so port 0 is resolved).
        allowed_hosts: more names, ``name`` (this port) or ``name:port`` (e.g. an SSH tunnel's local port).
    """
    if bound_host in WILDCARD_HOSTS:
        return None
    names = {host_with_port(h, port) for h in (*LOOPBACK_NAMES, bound_host)}
    for extra in allowed_hosts:
        extra = extra.strip().lower()
        names.add(extra if extra.rsplit(":", 1)[-1].isdigit() and not extra.endswith("]") else f"{extra}:{port}")
    if port == 80:  # browsers leave the default port out
        names |= {n[: -len(":80")] for n in names if n.endswith(":80")}
    return frozenset(names)


def refusal(host: str | None, origin: str | None, hosts: frozenset[str] | None) -> str | None:
    """Why a request with these Host and Origin headers is refused, or ``None`` when it is answered.

    Args:
        host: the Host header (``None`` when absent: HTTP/1.0 clients, never a browser).
        origin: the Origin header (``None`` when absent: not a browser, or a same-site page load).
        hosts: ``own_hosts(...)``.
    """
    host = host.strip().lower() if host is not None else None
    if hosts is not None and host is not None and host not in hosts:
        return (
            f"Host {host!r} is not this server's ({', '.join(sorted(hosts))}); requests under other names are "
            "refused (DNS rebinding). Open the URL printed by `fastuss serve`, or add the name with --allow-host"
        )
    if origin is None:
        return None
    origins = {f"http://{h}" for h in (hosts if hosts is not None else ([host] if host else []))}
    if origin.strip().lower() not in origins:
        return (
            f"requests from other web sites are refused: Origin {origin!r} is not this server's "
            f"({', '.join(sorted(origins)) or 'none'})"
        )
    return None
