"""Built-in scenarios and `load_scenario`, which takes a preset name, a `name:k=v,...` spec or a path."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from monitor.sim.scenario import parse_scenario, parse_toml_file
from monitor.sim.specs import Behaviour, Dist, HostSpec, ModelSpec, Scenario


@dataclass(frozen=True, slots=True)
class Preset:
    name: str
    description: str
    build: Callable[..., Scenario]

    @property
    def params(self) -> dict[str, Any]:
        """Parameter names and defaults (empty for fixed presets)."""
        return {
            p.name: p.default
            for p in inspect.signature(self.build).parameters.values()
            if p.default is not inspect.Parameter.empty
        }


def _toml_preset(name: str) -> Callable[..., Scenario]:
    def build(**params: Any) -> Scenario:
        if params:
            raise ValueError(f"preset {name!r} takes no parameters, got {', '.join(sorted(params))}")
        import tomllib

        text = resources.files("monitor.sim").joinpath("presets", f"{name}.toml").read_text(encoding="utf-8")
        return parse_scenario(tomllib.loads(text), f"preset {name}")

    return build


def scale(
    hosts: int = 100,
    models: int = 10,
    ttft_ms: float = 50.0,
    sd_ms: float = 0.0,
    itl_ms: float = 10.0,
    tokens: int = 8,
    tls: bool = False,
) -> Scenario:
    """`hosts` hosts spread round-robin over `models` text models, all healthy. TTFT is fixed
    `ttft_ms`, or normal around it when `sd_ms` > 0."""
    if not isinstance(hosts, int) or hosts < 1:
        raise ValueError(f"preset 'scale': hosts must be a positive integer, got {hosts!r}")
    if not isinstance(models, int) or models < 1:
        raise ValueError(f"preset 'scale': models must be a positive integer, got {models!r}")
    if not isinstance(tokens, int) or tokens < 1:
        raise ValueError(f"preset 'scale': tokens must be a positive integer, got {tokens!r}")
    for pname, value in (("ttft_ms", ttft_ms), ("sd_ms", sd_ms), ("itl_ms", itl_ms)):
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ValueError(f"preset 'scale': {pname} must be a number >= 0, got {value!r}")
    n_models = min(models, hosts)
    width = len(str(n_models - 1))
    model_specs = tuple(ModelSpec(id=f"scale-model-{i:0{width}d}") for i in range(n_models))
    ttft = Dist("normal", float(ttft_ms), float(sd_ms)) if sd_ms > 0 else Dist("fixed", float(ttft_ms))
    behaviour = Behaviour(ttft=ttft, itl=Dist("fixed", float(itl_ms)), tokens=tokens)
    hwidth = len(str(hosts))
    host_specs = tuple(
        HostSpec(
            name=f"h{i:0{hwidth}d}", models=(model_specs[i % n_models].id,), behaviour=behaviour, tls=tls
        )
        for i in range(hosts)
    )
    return Scenario(
        name="scale",
        description=f"{hosts} healthy hosts over {n_models} models, TTFT {ttft_ms:g} ms",
        models=model_specs,
        hosts=host_specs,
    )


PRESETS: Mapping[str, Preset] = {
    "demo": Preset(
        "demo",
        "a handful of models shaped like the real list: a reasoning model with a fast, a slow and a "
        "flapping host, a host without the key, an image and an embedding model",
        _toml_preset("demo"),
    ),
    "chaos": Preset(
        "chaos", "every failure mode, one host each, next to healthy hosts", _toml_preset("chaos")
    ),
    "herd": Preset(
        "herd",
        "one model on hosts of unequal speed and capacity: 2 fast with 4 slots, 1 medium with 8, "
        "1 slow with 16, and one that answers /health with 202 (not loaded)",
        _toml_preset("herd"),
    ),
    "impostor": Preset(
        "impostor",
        "one model on 3 honest hosts and a faster one serving another model (another tokenizer and answer)",
        _toml_preset("impostor"),
    ),
    "scale": Preset("scale", "N healthy hosts (parameterised: scale:hosts=5000,ttft_ms=50)", scale),
}


def _parse_value(text: str) -> Any:
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """`scale:hosts=5000,ttft_ms=50` -> ("scale", {"hosts": 5000, "ttft_ms": 50})."""
    name, sep, rest = spec.partition(":")
    if not sep or name not in PRESETS:
        return spec, {}
    params: dict[str, Any] = {}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ValueError(f"scenario {spec!r}: expected name:key=value,..., got {item!r}")
        params[key.strip()] = _parse_value(value.strip())
    return name, params


def load_scenario(source: str | Path, **params: Any) -> Scenario:
    """A preset by name (with keyword parameters, or as `name:k=v,...`), or a TOML file by path.

    Raises ValueError with a one-line message for an unknown preset, a missing file or a bad scenario.
    """
    if isinstance(source, str):
        name, spec_params = parse_spec(source)
        if name in PRESETS:
            preset = PRESETS[name]
            merged = {**spec_params, **params}
            unknown = sorted(set(merged) - set(preset.params))
            if unknown and preset.params:
                raise ValueError(
                    f"preset {name!r}: unknown parameter {unknown[0]!r} (known: {', '.join(preset.params)})"
                )
            try:
                return preset.build(**merged)
            except TypeError as exc:
                raise ValueError(f"preset {name!r}: {exc}") from None
    path = Path(source)
    if params:
        raise ValueError(f"{path}: parameters are only for presets ({', '.join(PRESETS)})")
    if not path.is_file():
        raise ValueError(f"scenario {str(source)!r}: no such preset ({', '.join(PRESETS)}) or file")
    return parse_toml_file(path)
