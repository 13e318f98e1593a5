"""`eucgate keys`: print the verification keys this service publishes.

Receipt keys (DSSE keyid, PEM, validity period) and log keys (C2SP signed-note verifier
keys), the active ones first, then the earlier ones a rotation kept published; and the
witnesses the log asks, with the quorum. Give the output to customs gateways and
auditors through a channel they trust (never through the API itself); they load it with
`eucgate_client.tlog.PublishedKeys.from_json`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from eucgate.api.server import load_log_signer, load_service_key
from eucgate.cli.output import fail
from eucgate.cli.render import print_json
from eucgate.config import load_settings
from eucgate.errors import ConfigError
from eucgate.log.keyset import published_keys

out = Console()


def keys(
    config: Annotated[Path | None, typer.Option(help="YAML configuration file")] = None,
    service_key: Annotated[Path | None, typer.Option(help="Ed25519 receipt key (PEM)")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Print the published verification key set (receipt and log keys, witnesses)."""
    try:
        settings = load_settings(config, service_key_path=service_key)
        key = load_service_key(settings)
        published = published_keys(settings, key, load_log_signer(settings, key))
    except ConfigError as exc:
        raise fail(str(exc), 1) from None
    if json_output:
        print_json(out, published)
        return
    out.print("receipt keys (DSSE keyid):", highlight=False)
    for k in published["service_keys"]:
        period = f"{k['valid_from'] or '…'} to {k['valid_until'] or '…'}"
        mark = "active" if k["active"] else "earlier"
        out.print(f"  {k['keyid']}  {mark}, valid {period}", highlight=False)
    out.print(f"log keys ({published['log_origin']}):", highlight=False)
    for k in published["log_keys"]:
        out.print(
            f"  {k['verifier_key']}  {'active' if k['active'] else 'earlier'}", highlight=False
        )
    if published["witnesses"]:
        out.print(f"witnesses (quorum {published['witness_quorum']}):", highlight=False)
        for w in published["witnesses"]:
            out.print(f"  {w['verifier_key']}  {w['url']}", highlight=False)
