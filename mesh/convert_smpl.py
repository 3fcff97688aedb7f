"""Rewrite an official SMPL model pickle (which holds chumpy objects) as plain numpy, without
needing chumpy installed:

    python -m mesh.convert_smpl SMPL_NEUTRAL.pkl SMPL_NEUTRAL_numpy.pkl

How it works: a chumpy ``Ch`` pickles as its class plus its ``__dict__`` minus two caches; for a
plain ``Ch`` the array lives under the key ``x``. The unpickler here maps every chumpy class to a
small stand-in that keeps that state, and the converter then takes the ``x`` arrays out. scipy
sparse matrices (the joint regressor) become dense arrays. The result is a dict of numpy arrays
(plus the file's plain strings and numbers) that `smplx.SMPL` and `mesh.load_body_model` read.
"""
from __future__ import annotations

import argparse
import os
import pickle
import tempfile
from pathlib import Path

import numpy as np

from configs.errors import UserError, command


class ChumpyStandIn:
    """Holds the pickled state of a chumpy object (``x`` for a plain ``Ch``)."""

    chumpy_class = "Ch"

    def __setstate__(self, state):
        if isinstance(state, tuple) and len(state) == 2:      # (dict, slots) form
            state = {**(state[0] or {}), **(state[1] or {})}
        self.__dict__.update(state if isinstance(state, dict) else {"x": state})


class _Unpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if module.split(".")[0] == "chumpy":
            return type(name, (ChumpyStandIn,), {"chumpy_class": f"{module}.{name}"})
        if module.startswith("scipy.sparse"):                  # old private module paths
            import scipy.sparse
            if hasattr(scipy.sparse, name):
                return getattr(scipy.sparse, name)
        if module.startswith("numpy.core") and hasattr(np, "_core"):   # numpy 1 -> 2
            module = "numpy._core" + module[len("numpy.core"):]
        return super().find_class(module, name)


def _plain(value, key):
    if isinstance(value, ChumpyStandIn):
        if "x" in value.__dict__:
            return np.asarray(_plain(value.__dict__["x"], key))
        raise ValueError(f"entry {key!r} is a chumpy expression ({value.chumpy_class}) "
                         f"rather than a stored array; this converter only unwraps stored arrays")
    if hasattr(value, "toarray") and "scipy.sparse" in type(value).__module__:
        return np.ascontiguousarray(value.toarray())  # C order: the GEMMs of the built-in body, bit for bit
    if isinstance(value, dict):
        return {k: _plain(v, f"{key}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v, key) for v in value)
    return value


def convert(src, dst) -> dict:
    """Read ``src`` (chumpy or not) and write ``dst`` as a plain pickle; returns the dict."""
    with open(src, "rb") as fh:
        data = _Unpickler(fh, encoding="latin1").load()
    if not isinstance(data, dict):
        raise ValueError(f"{src} does not hold a dict of model arrays")
    out = {k: _plain(v, k) for k, v in data.items()}
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dst.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            pickle.dump(out, fh, protocol=4)
        os.replace(tmp, dst)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return out


@command
def main(argv=None) -> dict:
    """Converts the file; returns the plain arrays written."""
    ap = argparse.ArgumentParser(prog="python -m mesh.convert_smpl",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("src", help="SMPL model pickle as released (chumpy inside)")
    ap.add_argument("dst", help="where to write the plain-numpy pickle")
    args = ap.parse_args(argv)
    if not Path(args.src).is_file():
        raise UserError(f"{args.src} not found: pass the SMPL model pickle as released")
    try:
        out = convert(args.src, args.dst)
    except (ValueError, pickle.UnpicklingError) as exc:
        raise UserError(f"{args.src}: {exc}") from None
    shapes = ", ".join(f"{k} {v.shape}" for k, v in out.items() if isinstance(v, np.ndarray))
    print(f"wrote {args.dst}: {shapes}")
    return out


if __name__ == "__main__":
    main.cli()
