"""Config files: YAML with `_base_:` inheritance, `a.b=value` overrides, keys checked against defaults.

Every key the suite understands is listed with its default in `defaults.yaml`; a config file
names only what it changes. A key that is not there is an error naming the closest valid keys,
so a typo never silently falls back to a default.
"""
from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Iterable

import yaml

from .errors import UserError

DEFAULTS_FILE = Path(__file__).with_name("defaults.yaml")
# Keys that take either a flag or a path (`pretrained: true` or `pretrained: weights/x.pth`).
FLAG_OR_PATH_KEYS = {"model.pretrained"}


class ConfigError(UserError, ValueError):
    """A config file or override the user wrote is wrong; the message says what and where."""


class Config(Mapping):
    """Read-only nested mapping with attribute access (`cfg.model.backbone`).

    Read-only because run state (iteration, ramps, RNG) belongs in checkpoints, not here.
    """

    def __init__(self, tree: Mapping[str, Any]):
        object.__setattr__(self, "_tree", {k: Config(v) if isinstance(v, Mapping) else v
                                           for k, v in tree.items()})

    def __getitem__(self, key):
        return self._tree[key]

    def __iter__(self):
        return iter(self._tree)

    def __len__(self):
        return len(self._tree)

    def __getattr__(self, key):
        try:
            return self._tree[key]
        except KeyError:
            raise AttributeError(f"config has no key {key!r}") from None

    def __setattr__(self, key, value):
        raise TypeError("Config is read-only; use load_config(..., overrides=[...]) to change it")

    def __repr__(self):
        return f"Config({self.to_dict()!r})"

    def to_dict(self) -> dict:
        return {k: v.to_dict() if isinstance(v, Config) else v for k, v in self._tree.items()}


def load_config(source: str | Path | Mapping | None = None, overrides: Iterable[str] = ()) -> Config:
    """Defaults ← file (with its bases) or stored mapping ← overrides, every key checked.

    `source` is a YAML path, or a mapping such as the config stored in a checkpoint.
    """
    merged = _read_yaml(DEFAULTS_FILE)
    if isinstance(source, Mapping):
        merged = _merge_checked(merged, source, prefix="", source="the stored config")
    elif source is not None:
        merged = _merge_checked(merged, _read_with_bases(Path(source), ()), prefix="", source=str(source))
    tree: dict = {}
    for item in overrides:
        _set_dotted(tree, *_parse_override(item))
    return Config(_merge_checked(merged, tree, prefix="", source="--opts"))


def save_config(cfg: Config, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        yaml.safe_dump(cfg.to_dict(), f, sort_keys=False)


def _read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    with open(path) as f:
        try:
            data = yaml.safe_load(f) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"config file {path} is not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of keys, not {type(data).__name__}")
    return data


def _read_with_bases(path: Path, chain: tuple) -> dict:
    path = path.resolve()
    if path in chain:
        raise ConfigError(f"config file {path} inherits from itself through _base_")
    data = _read_yaml(path)
    bases = data.pop("_base_", None) or []
    if isinstance(bases, str):
        bases = [bases]
    merged: dict = {}
    for base in bases:
        _deep_update(merged, _read_with_bases(path.parent / base, chain + (path,)))
    _deep_update(merged, data)
    return merged


def _deep_update(dst: dict, src: Mapping) -> None:
    for key, value in src.items():
        if isinstance(value, Mapping) and isinstance(dst.get(key), dict):
            _deep_update(dst[key], value)
        else:
            dst[key] = dict(value) if isinstance(value, Mapping) else value


def _parse_override(item: str) -> tuple[list[str], Any]:
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {item!r} must look like section.key=value")
    return key.strip().split("."), yaml.safe_load(raw) if raw.strip() else None


def _set_dotted(tree: dict, keys: list[str], value: Any) -> None:
    for key in keys[:-1]:
        node = tree.setdefault(key, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override sets {'.'.join(keys)} but {key} is not a section")
        tree = node
    tree[keys[-1]] = value


def _all_keys(defaults: Mapping, prefix: str = "") -> list[str]:
    keys = []
    for key, value in defaults.items():
        keys.append(prefix + key)
        if isinstance(value, Mapping):
            keys += _all_keys(value, prefix + key + ".")
    return keys


def _merge_checked(defaults: Mapping, tree: Mapping, prefix: str, source: str) -> dict:
    out = dict(defaults)
    for key, value in tree.items():
        name = prefix + key
        if key not in defaults:
            raise ConfigError(f"unknown config key {name!r} in {source}; {_suggest(key, name, defaults)}")
        default = defaults[key]
        if isinstance(default, Mapping):
            if not isinstance(value, Mapping):
                raise ConfigError(f"config key {name!r} in {source} is a section; give it keys, not {value!r}")
            out[key] = _merge_checked(default, value, name + ".", source)
        else:
            out[key] = _coerce(name, default, value, source)
    return out


def _suggest(key: str, name: str, siblings: Mapping) -> str:
    close = difflib.get_close_matches(key, list(siblings), n=3, cutoff=0.6)
    prefix = name[: len(name) - len(key)]
    if close:
        return "did you mean " + " or ".join(repr(prefix + c) for c in close) + "?"
    # The key may sit in the wrong section (`lr` for `optim.lr`): match on the last part.
    all_keys = _all_keys(_read_yaml(DEFAULTS_FILE))
    leaves = difflib.get_close_matches(key, {k.rsplit(".", 1)[-1] for k in all_keys}, n=3, cutoff=0.75)
    everywhere = [k for k in all_keys if k.rsplit(".", 1)[-1] in leaves]
    if everywhere:
        return "did you mean " + " or ".join(repr(c) for c in everywhere) + "?"
    return "valid keys here: " + ", ".join(repr(prefix + c) for c in siblings)


def _coerce(name: str, default: Any, value: Any, source: str) -> Any:
    """Keep the type of the default; YAML reads `1e-4` as text, so numbers in text are accepted."""
    if default is None or value is None:
        return value
    if name in FLAG_OR_PATH_KEYS and isinstance(value, (bool, str)):
        return value
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
    elif isinstance(default, (int, float)) and not isinstance(value, bool):
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, float) and isinstance(default, int) and value.is_integer():
            value = int(value)
        if isinstance(default, float) and isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, int):
            return value
    elif isinstance(default, type(value)) or isinstance(value, type(default)):
        return value
    raise ConfigError(f"config key {name!r} in {source} expects {type(default).__name__} "
                      f"(default {default!r}), got {value!r}")
