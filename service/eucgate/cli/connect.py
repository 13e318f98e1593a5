"""How every client command reaches the API: `--server`, the mutual-TLS flags, and
what a refused call exits with.

The API is mutual TLS by default: `--ca` is the CA that issued the server's
certificate, `--cert` and `--key` this client's certificate and key, which the server
maps to a caller and its roles. Each flag has an EUCGATE_* variable, so a shell set up
once (`export EUCGATE_CA=... EUCGATE_CERT=... EUCGATE_KEY=...`) needs none of them.
`--insecure` talks plaintext to a server run with `insecure`, for local use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import grpc
import typer
from eucgate_client.client import ApiError, open_channel

from eucgate.cli.output import fail

EXIT_USAGE = 2
EXIT_REFUSED = 3
EXIT_UNAVAILABLE = 4
_UNAVAILABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}
T = TypeVar("T")

ServerOpt = Annotated[
    str, typer.Option("--server", "-s", envvar="EUCGATE_SERVER", help="host:port of the API")
]
CaOpt = Annotated[
    Path | None,
    typer.Option(
        "--ca", envvar="EUCGATE_CA", help="CA certificate(s) that issued the server's (PEM)"
    ),
]
CertOpt = Annotated[
    Path | None,
    typer.Option("--cert", envvar="EUCGATE_CERT", help="this client's certificate (PEM), mTLS"),
]
KeyOpt = Annotated[
    Path | None,
    typer.Option("--key", envvar="EUCGATE_KEY", help="this client's private key (PEM), mTLS"),
]
InsecureOpt = Annotated[
    bool,
    typer.Option(
        "--insecure",
        envvar="EUCGATE_INSECURE",
        help="plaintext, to a server run with insecure (local use only)",
    ),
]


@dataclass(frozen=True)
class Connection:
    """Where and how to reach the API, from the flags."""

    server: str
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    insecure: bool = False

    def open(self, *options: tuple[str, Any]) -> grpc.Channel:
        """The channel; on unusable flags or files, says why and exits with code 2."""
        try:
            if self.insecure:
                given = [f for f, p in (("--ca", self.ca), ("--cert", self.cert)) if p]
                if given or self.key is not None:
                    raise ValueError("--insecure is plaintext: drop --ca, --cert and --key")
                return open_channel(self.server, insecure=True, options=options)
            if self.cert is None or self.key is None:
                raise ValueError(
                    "the API needs a client certificate: give --cert and --key (or "
                    "EUCGATE_CERT and EUCGATE_KEY), with --ca for the server's CA; "
                    "--insecure only for a local server run with insecure"
                )
            return open_channel(
                self.server,
                ca=None if self.ca is None else self.ca.read_bytes(),
                cert=self.cert.read_bytes(),
                key=self.key.read_bytes(),
                options=options,
            )
        except (OSError, ValueError) as exc:
            raise fail(str(exc), EXIT_USAGE) from None

    def call(self, request: Callable[[grpc.Channel], T]) -> T:
        """`request` over a channel opened for it; a refused call exits as `api_failure`
        says, so a command holds only what it asks and what it prints."""
        with self.open() as channel:
            try:
                return request(channel)
            except ApiError as exc:
                raise api_failure(exc) from None


def api_failure(exc: ApiError) -> typer.Exit:
    """Say what the service refused (with any bad fields) and exit 4 when it could not
    be reached in time, else 3."""
    return fail(
        f"{exc.code.name} {exc.reason}: {exc.message}" if exc.reason else str(exc),
        EXIT_UNAVAILABLE if exc.code in _UNAVAILABLE else EXIT_REFUSED,
        code=exc.code.name,
        reason=exc.reason,
        field_violations=exc.field_violations,
    )
