#!/usr/bin/env bash
# Builds (once) the Python environment GenReID runs in and links it as ./.venv.
#
# The environment lives outside the checkout (default ~/.cache/genreid/venv, or $GENREID_VENV)
# so fresh clones and CI runs reuse it: when it is already right this takes a few seconds.
# It is rebuilt only when pyproject.toml or this script change.
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3}
VENV=${GENREID_VENV:-$HOME/.cache/genreid/venv}
TORCH_PAIR=(torch==2.14.1 torchvision==0.29.1)   # the tested pair; see README "Environment"
STAMP="$VENV/.genreid-stamp"
pip() {  # this machine's pip config names local mirrors that lack some packages; hide that chatter
    "$VENV/bin/python" -m pip -q "$@" 2>&1 | { grep -v -e "is neither a file nor a directory" -e "^ *$" || true; }
}
want=$(cat pyproject.toml setup.sh | sha256sum | cut -d' ' -f1)

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && "$VENV/bin/python" -c "import torch, torchvision" 2>/dev/null; then
    echo "setup: environment $VENV is up to date"
else
    echo "setup: building environment in $VENV (first time: a few minutes)"
    [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
    pip install --upgrade pip setuptools wheel
    pip install "${TORCH_PAIR[@]}"
    pip install -e ".[test]"
    echo "$want" > "$STAMP"
fi
# Point the editable install at this checkout (cheap; needed when several clones share the env).
pip install --no-deps --no-build-isolation -e .
ln -sfn "$VENV" .venv
echo "setup: done; use .venv/bin/python"
