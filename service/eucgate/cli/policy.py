"""`eucgate policy check|test`: validate a bundle, and run the test cases it carries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from eucgate.core.bundle import Bundle, load_bundle
from eucgate.errors import BundleError
from eucgate.policytest import run_bundle_tests

policy_app = typer.Typer(
    help="Check policy bundles and run their test cases.", no_args_is_help=True
)

BundleArg = Annotated[Path, typer.Argument(help="policy bundle (YAML or JSON)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]

out = Console()
err = Console(stderr=True)


def _load(path: Path) -> Bundle:
    try:
        return load_bundle(path)
    except BundleError as exc:
        err.print(f"[red]invalid bundle:[/]\n{exc}", highlight=False)
        raise typer.Exit(1) from None


@policy_app.command("check")
def check(bundle: BundleArg, json_output: JsonOpt = False) -> None:
    """Validate a bundle; exit 1 with file, line and path of every problem."""
    loaded = _load(bundle)
    summary = {
        "name": loaded.name,
        "digest": loaded.digest,
        "rules": len(loaded.rules),
        "controlled_items": len(loaded.controlled_items),
        "licensed_importers": len(loaded.licensed_importers),
        "trust_anchor_roles": sorted(loaded.anchors),
        "test_cases": len(loaded.tests.cases) if loaded.tests else 0,
    }
    if json_output:
        out.print_json(json.dumps(summary))
        return
    out.print(f"[green]valid[/] {loaded.name}  digest {loaded.digest}", soft_wrap=True)
    for key, value in summary.items():
        if key not in {"name", "digest"}:
            out.print(f"  {key.replace('_', ' '):<20} {value}")


@policy_app.command("test")
def run_tests(bundle: BundleArg, json_output: JsonOpt = False) -> None:
    """Run the bundle's test cases through decide(); exit 1 when any case fails."""
    loaded = _load(bundle)
    if loaded.tests is None:
        err.print(f"[red]error:[/] {bundle} carries no test cases")
        raise typer.Exit(1)
    results = run_bundle_tests(loaded)
    failed = [r for r in results if not r.passed]
    if json_output:
        out.print_json(
            json.dumps(
                [
                    {
                        "name": r.name,
                        "passed": r.passed,
                        "expected": {
                            "outcome": r.expected_outcome,
                            "rules": list(r.expected_rules),
                        },
                        "got": {"outcome": r.outcome, "rules": list(r.rules)},
                        "error": r.error or None,
                    }
                    for r in results
                ]
            )
        )
    else:
        table = Table("case", "expected", "got", "result")
        for r in results:
            table.add_row(
                r.name,
                f"{r.expected_outcome} {' '.join(sorted(r.expected_rules))}".strip(),
                r.error or f"{r.outcome} {' '.join(sorted(r.rules))}".strip(),
                "[green]pass[/]" if r.passed else "[red]FAIL[/]",
            )
        out.print(table)
        out.print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    if failed:
        raise typer.Exit(1)
