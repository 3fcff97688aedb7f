"""What every benchmark shares: printing a JSON line and appending it to its results file."""
import json
from pathlib import Path


def emit(record: dict, out: Path) -> None:
    """Print `record` as one JSON line and append it to `out` (created with its folder)."""
    line = json.dumps(record)
    print(line, flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a") as f:
        f.write(line + "\n")
