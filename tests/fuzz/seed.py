"""Write each target's seeds into tests/fuzz/corpus/<target>/ (named by content).

python -m tests.fuzz.seed
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from tests.fuzz.targets import TARGETS

CORPUS = Path(__file__).resolve().parent / "corpus"


def main() -> None:
    for name, target in TARGETS.items():
        directory = CORPUS / name
        directory.mkdir(parents=True, exist_ok=True)
        for seed in target.seeds():
            (directory / f"seed-{hashlib.sha1(seed).hexdigest()[:16]}").write_bytes(seed)


if __name__ == "__main__":
    main()
