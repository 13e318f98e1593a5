"""`eucgate witness`: run a C2SP tlog-witness for eucgate logs (or any C2SP log).

A witness is run by someone other than the log's operator, with its own key:

    eucgate witness keygen witness/ --name customs.example/witness
    eucgate witness serve --data-dir witness/ --name customs.example/witness \\
        --log-key 'eucgate.example/log+...' --listen 0.0.0.0:7380

`keygen` prints the cosigner verifier key the log's operator configures and the
auditors pin; `serve` answers add-checkpoint until SIGTERM or SIGINT.
"""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eucgate_client.tlog import CheckpointError
from rich.console import Console

from eucgate.cli.output import fail
from eucgate.cli.render import print_json
from eucgate.log.witness import Cosigner, Witness, WitnessState, log_keys, start_witness
from eucgate.logconfig import configure_logging
from eucgate.signing import load_private_key, write_pem_key

witness_app = typer.Typer(help="Run a transparency-log witness.", no_args_is_help=True)

out = Console()

KEY_FILE = "witness.key.pem"
STATE_FILE = "witness.db"

NameOpt = Annotated[
    str, typer.Option("--name", help="the witness's name, e.g. customs.example/witness")
]


def _cosigner(directory: Path, name: str) -> Cosigner:
    try:
        key = load_private_key(directory / KEY_FILE)
    except (OSError, ValueError) as exc:
        raise fail(f"cannot read the witness key: {exc}", 1) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise fail("the witness key must be Ed25519", 1)
    try:
        return Cosigner(name, key)
    except CheckpointError as exc:
        raise fail(f"--name: {exc}", 2) from None


@witness_app.command("keygen")
def keygen(
    directory: Annotated[Path, typer.Argument(help="the witness's data directory")],
    name: NameOpt,
    json_output: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Make the witness key (refuses to overwrite one) and print its verifier key."""
    path = directory / KEY_FILE
    if path.exists():
        raise fail(f"{path} exists; a witness keeps its key", 1)
    directory.mkdir(parents=True, exist_ok=True)
    write_pem_key(path, Ed25519PrivateKey.generate())
    verifier = str(_cosigner(directory, name).verifier)
    if json_output:
        print_json(out, {"key_file": str(path), "verifier_key": verifier})
    else:
        out.print(verifier, highlight=False)


@witness_app.command("serve")
def serve(
    name: NameOpt,
    log_key: Annotated[
        list[str],
        typer.Option(
            "--log-key",
            help="a log verifier key to trust (repeat for several logs, or a log's rotated keys)",
        ),
    ],
    data_dir: Annotated[
        Path, typer.Option("--data-dir", help="holds witness.key.pem and the state")
    ] = Path("witness"),
    listen: Annotated[str, typer.Option(help="host:port to serve HTTP on")] = "127.0.0.1:7380",
) -> None:
    """Serve add-checkpoint (C2SP tlog-witness) until SIGTERM or SIGINT."""
    configure_logging("info", json=True)
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit():
        raise fail(f"--listen: expected host:port, got {listen!r}", 2)
    try:
        logs = log_keys(log_key)
    except CheckpointError as exc:
        raise fail(f"--log-key: {exc}", 2) from None
    cosigner = _cosigner(data_dir, name)
    state = WitnessState(data_dir / STATE_FILE)
    try:
        httpd, thread = start_witness((host, int(port)), Witness(cosigner, logs, state))
    except OSError as exc:
        raise fail(f"cannot listen on {listen}: {exc}", 1) from None
    # One line on stdout, so a supervisor (or a test) can read the port it bound.
    serving = {
        "event": "witness_serving",
        "port": httpd.port,
        "verifier_key": str(cosigner.verifier),
    }
    print(json.dumps(serving), flush=True)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        threading.Thread(target=httpd.shutdown).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    thread.join()
    httpd.server_close()
    state.close()
