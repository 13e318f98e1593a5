"""Generate the eucgate.v1 Python modules from ../../proto with grpcio-tools.

protoc writes absolute imports named after the proto package (`from eucgate.v1 import
x_pb2`); they are rewritten to this distribution's package (`eucgate_client.v1`) so the
client never claims the top-level `eucgate` name the server package owns.

    python clients/python/gen_proto.py            # rewrite eucgate_client/v1 in place
    python clients/python/gen_proto.py --out DIR  # write elsewhere (the drift test does)
"""

from __future__ import annotations

import argparse
import importlib.resources
import re
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROTO_ROOT = HERE.parent.parent / "proto"
DEFAULT_OUT = HERE / "eucgate_client" / "v1"
_IMPORT = re.compile(r"^from eucgate\.v1 import ", re.MULTILINE)
_HEADER = "# Generated from proto/ by clients/python/gen_proto.py. Do not edit.\n"


def generate(out: Path) -> list[Path]:
    """Write the generated modules into `out`; returns the files written."""
    from grpc_tools import protoc  # noqa: PLC0415 - a dev dependency, needed only here

    protos = sorted(p.relative_to(PROTO_ROOT).as_posix() for p in PROTO_ROOT.rglob("*.proto"))
    well_known = str(importlib.resources.files("grpc_tools") / "_proto")
    with tempfile.TemporaryDirectory() as tmp:
        args = [
            "protoc",
            f"-I{PROTO_ROOT}",
            f"-I{well_known}",
            f"--python_out={tmp}",
            f"--pyi_out={tmp}",
            f"--grpc_python_out={tmp}",
            *protos,
        ]
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed")
        out.mkdir(parents=True, exist_ok=True)
        for stale in out.glob("*_pb2*.py*"):
            stale.unlink()
        written = []
        for src in sorted((Path(tmp) / "eucgate" / "v1").iterdir()):
            text = _IMPORT.sub("from eucgate_client.v1 import ", src.read_text())
            if src.name.endswith("_pb2_grpc.py") and "Stub" not in text:
                continue  # protoc writes an empty gRPC module for files without services
            target = out / src.name
            target.write_text(_HEADER + text)
            written.append(target)
        (out / "__init__.py").write_text('"""Generated eucgate.v1 protobuf and gRPC modules."""\n')
        return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    for path in generate(args.out):
        print(
            path.relative_to(args.out.parent) if args.out == DEFAULT_OUT else path, file=sys.stderr
        )


if __name__ == "__main__":
    main()
