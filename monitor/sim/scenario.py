"""Reading a scenario of the simulated network: parsing and validating TOML, and run-time changes.

Every error is a ValueError with one line naming where in the scenario it is. The values it builds
are in `monitor.sim.specs` (re-exported here, where callers have always imported them from).
"""

from __future__ import annotations

import dataclasses
import math
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

# The values, re-exported (`X as X`) for callers that import them from here.
from monitor.sim.model import MODEL_KEYS, parse_model_value
from monitor.sim.specs import FAULTS as FAULTS
from monitor.sim.specs import GATEWAY_FAULTS as GATEWAY_FAULTS
from monitor.sim.specs import ROUTINGS, GatewayFault, Routing
from monitor.sim.specs import Behaviour as Behaviour
from monitor.sim.specs import Dist as Dist
from monitor.sim.specs import Flap as Flap
from monitor.sim.specs import GatewaySpec as GatewaySpec
from monitor.sim.specs import HostSpec as HostSpec
from monitor.sim.specs import ModelSpec as ModelSpec
from monitor.sim.specs import Scenario as Scenario
from monitor.sim.specs import TimeWindow as TimeWindow

__all__ = ["apply_changes", "gateway_changes", "parse_dist", "parse_scenario", "parse_toml_file"]

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


_HOST_KEYS = {"name", "models", "tls", "listed_as"}
_BEHAVIOUR_KEYS = {f.name for f in dataclasses.fields(Behaviour)} - {"listed_windows"}
_TOP_KEYS = {"name", "description", "keys", "blocked_keys", "models", "hosts", "gateway", "defaults"}


def parse_scenario(data: Mapping[str, Any], source: str = "scenario") -> Scenario:
    """Build a Scenario from a TOML document already parsed into a mapping."""
    _no_unknown(data, _TOP_KEYS, source)
    name = _str(data.get("name", Path(source).stem), f"{source}: name")
    models = tuple(
        _parse_model(m, f"{source}: models[{i}]")
        for i, m in enumerate(_list(data.get("models", []), "models"))
    )
    if not models:
        raise ValueError(f"{source}: at least one [[models]] entry is required")
    _unique([m.id for m in models], f"{source}: models", "model id")
    defaults_raw = _table(data.get("defaults", {}), f"{source}: defaults")
    defaults = apply_changes(Behaviour(), defaults_raw, where=f"{source}: defaults")
    hosts_raw = _list(data.get("hosts", []), f"{source}: hosts")
    hosts = tuple(
        _parse_host(h, defaults, f"{source}: hosts[{i}]", {m.id for m in models})
        for i, h in enumerate(hosts_raw)
    )
    if not hosts:
        raise ValueError(f"{source}: at least one [[hosts]] entry is required")
    _unique([h.name for h in hosts], f"{source}: hosts", "host name")
    names = {h.name for h in hosts}
    for h in hosts:
        if h.behaviour.fault == "redirect" and h.behaviour.redirect_to not in names:
            target = h.behaviour.redirect_to
            raise ValueError(f"{source}: host {h.name!r}: redirect_to must name another host, got {target!r}")
    gateway = _parse_gateway(_table(data.get("gateway", {}), f"{source}: gateway"), f"{source}: gateway")
    keys = tuple(_str(k, f"{source}: keys") for k in _list(data.get("keys", []), f"{source}: keys"))
    blocked = tuple(
        _str(k, f"{source}: blocked_keys")
        for k in _list(data.get("blocked_keys", []), f"{source}: blocked_keys")
    )
    if any(not k for k in keys + blocked):
        raise ValueError(f"{source}: keys must be non-empty strings")
    return Scenario(
        name=name,
        description=_str(data.get("description", ""), f"{source}: description"),
        models=models,
        hosts=hosts,
        gateway=gateway,
        keys=keys,
        blocked_keys=blocked,
    )


def parse_toml_file(path: Path) -> Scenario:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"{path}: cannot read scenario file ({exc.strerror or exc})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: invalid TOML: {exc}") from None
    return parse_scenario(data, str(path))


def _parse_model(raw: Any, where: str) -> ModelSpec:
    t = _table(raw, where)
    _no_unknown(t, {"id", "kind", "reasoning", "dim"}, where)
    model_id = _str(t.get("id"), f"{where}.id")
    if not model_id or model_id.endswith("-thinking"):
        raise ValueError(f"{where}.id: must be a non-empty base id (the -thinking alias is derived)")
    kind = t.get("kind", "text")
    if kind not in ("text", "image", "embedding"):
        raise ValueError(f"{where}.kind: expected text, image or embedding, got {kind!r}")
    reasoning = _bool(t.get("reasoning", False), f"{where}.reasoning")
    dim = _int(t.get("dim", 64), f"{where}.dim", minimum=1)
    return ModelSpec(id=model_id, kind=kind, reasoning=reasoning, dim=dim)


def _parse_host(raw: Any, defaults: Behaviour, where: str, model_ids: set[str]) -> HostSpec:
    t = _table(raw, where)
    _no_unknown(t, _HOST_KEYS | _BEHAVIOUR_KEYS, where)
    name = _str(t.get("name"), f"{where}.name")
    if not _NAME_RE.match(name):
        raise ValueError(
            f"{where}.name: {name!r} must be 1-64 characters of letters, digits, '.', '_' or '-'"
        )
    where = f"{where} ({name!r})"
    models = tuple(_str(m, f"{where}.models") for m in _list(t.get("models", []), f"{where}.models"))
    for m in models:
        if m not in model_ids:
            raise ValueError(f"{where}.models: {m!r} is not declared in [[models]]")
    tls = _bool(t.get("tls", False), f"{where}.tls")
    listed_as = _str(t.get("listed_as", "{scheme}://{host}:{port}"), f"{where}.listed_as")
    try:
        listed_as.format(scheme="http", host="127.0.0.1", port=1)
    except (KeyError, IndexError, ValueError):
        raise ValueError(f"{where}.listed_as: only {{scheme}}, {{host}} and {{port}} may be used") from None
    if "{port}" not in listed_as:
        raise ValueError(f"{where}.listed_as: must contain {{port}}")
    changes = {k: v for k, v in t.items() if k in _BEHAVIOUR_KEYS}
    behaviour = apply_changes(defaults, changes, where=where)
    return HostSpec(name=name, models=models, behaviour=behaviour, tls=tls, listed_as=listed_as)


def _parse_gateway(t: Mapping[str, Any], where: str) -> GatewaySpec:
    _no_unknown(t, {"fault", "upstream_timeout", "routing"}, where)
    fault = _gateway_fault(t.get("fault", "ok"), f"{where}.fault")
    timeout = _float(t.get("upstream_timeout", 30.0), f"{where}.upstream_timeout", minimum=0.001)
    routing = t.get("routing", "ordered")
    if routing not in ROUTINGS:
        raise ValueError(f"{where}.routing: expected one of {', '.join(ROUTINGS)}, got {routing!r}")
    return GatewaySpec(fault=fault, upstream_timeout=timeout, routing=cast(Routing, routing))


def gateway_changes(current: GatewaySpec, changes: Mapping[str, Any]) -> GatewaySpec:
    """A new GatewaySpec with `changes` applied (run-time control)."""
    now = {"fault": current.fault, "upstream_timeout": current.upstream_timeout, "routing": current.routing}
    return _parse_gateway({**now, **changes}, "gateway")


def _gateway_fault(value: Any, where: str) -> GatewayFault:
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if text not in GATEWAY_FAULTS:
        raise ValueError(f"{where}: expected one of {', '.join(GATEWAY_FAULTS)}, got {value!r}")
    return cast(GatewayFault, text)


def apply_changes(base: Behaviour, changes: Mapping[str, Any], where: str = "behaviour") -> Behaviour:
    """A new Behaviour with `changes` (TOML-shaped values) applied; used by TOML and run-time control.

    `down` takes a bool or a list of [start, end] windows; `listed` a bool or a list of windows;
    `ttft` / `itl` / `cached_ttft` a number of milliseconds or a distribution table (`cached_ttft`
    also false, for no prompt cache); `slots` a positive integer, or false for unlimited;
    `cache_ttl` seconds > 0, or false for no prefix cache; `cache_factor` a number in (0, 1];
    `paths` a list of the POST paths the host accepts, or false for every path.
    """
    _no_unknown(changes, _BEHAVIOUR_KEYS | {"down_windows", "listed_windows"}, where)
    out: dict[str, Any] = {}
    for key, value in changes.items():
        w = f"{where}.{key}"
        if key in ("ttft", "itl"):
            out[key] = parse_dist(value, w)
        elif key == "cached_ttft":
            out[key] = None if value is None or value is False else parse_dist(value, w)
        elif key in ("tokens", "fault_after_tokens"):
            out[key] = _int(value, w, minimum=1 if key == "tokens" else 0)
        elif key == "errors":
            out[key] = _parse_errors(value, w)
        elif key in ("retry_after", "header_delay_ms"):
            out[key] = _float(value, w, minimum=0.0)
        elif key == "down":
            if isinstance(value, bool):
                out["down"] = value
            else:
                out["down_windows"] = _windows(value, w)
        elif key == "down_windows":
            out[key] = _windows(value, w)
        elif key == "flap":
            out[key] = None if value is None or value is False else _parse_flap(value, w)
        elif key == "down_mode":
            if str(value) not in ("503", "refuse"):
                raise ValueError(f"{w}: expected '503' or 'refuse', got {value!r}")
            out[key] = str(value)
        elif key in ("key_distributed", "key_blocked", "loaded"):
            out[key] = _bool(value, w)
        elif key == "fault":
            if value not in FAULTS:
                raise ValueError(f"{w}: expected one of {', '.join(FAULTS)}, got {value!r}")
            out[key] = value
        elif key in ("html_status", "redirect_status"):
            lo, hi = (200, 599) if key == "html_status" else (300, 399)
            out[key] = _int(value, w, minimum=lo, maximum=hi)
        elif key == "redirect_to":
            out[key] = _str(value, w)
        elif key == "listed":
            if isinstance(value, bool):
                out["listed"] = value
                if value:
                    out["listed_windows"] = None
            else:
                out["listed"] = True
                out["listed_windows"] = _windows(value, w)
        elif key == "listed_windows":
            out[key] = None if value is None else _windows(value, w)
        elif key == "slots":
            out[key] = None if value is None or value is False else _positive_int(value, w)
        elif key == "cache_ttl":
            out[key] = None if value is None or value is False else _positive_float(value, w)
        elif key == "cache_factor":
            out[key] = _fraction(value, w)
        elif key in MODEL_KEYS:
            out[key] = parse_model_value(key, value, w)
        elif key == "paths":
            out[key] = None if value is None or value is False else _paths(value, w)
    new = dataclasses.replace(base, **out)
    if new.cached_ttft is not None and new.cache_ttl is not None:
        raise ValueError(
            f"{where}: cached_ttft and cache_ttl are two prompt caches, set only one "
            "(cached_ttft = false, or cache_ttl = false, turns one off)"
        )
    return new


def _paths(value: Any, where: str) -> tuple[str, ...]:
    paths = tuple(_str(p, where) for p in _list(value, where))
    if any(not p.startswith("/") for p in paths):
        raise ValueError(f"{where}: each path starts with '/', got {list(paths)!r}")
    return paths


def parse_dist(value: Any, where: str) -> Dist:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return Dist("fixed", _float(value, where, minimum=0.0))
    if isinstance(value, Dist):
        return value
    t = _table(value, where)
    kind = t.get("dist", "fixed")
    if kind == "fixed":
        _no_unknown(t, {"dist", "ms"}, where)
        return Dist("fixed", _float(t.get("ms"), f"{where}.ms", minimum=0.0))
    if kind == "normal":
        _no_unknown(t, {"dist", "mean_ms", "sd_ms"}, where)
        return Dist(
            "normal",
            _float(t.get("mean_ms"), f"{where}.mean_ms", minimum=0.0),
            _float(t.get("sd_ms", 0.0), f"{where}.sd_ms", minimum=0.0),
        )
    if kind == "lognormal":
        _no_unknown(t, {"dist", "median_ms", "sigma"}, where)
        return Dist(
            "lognormal",
            _float(t.get("median_ms"), f"{where}.median_ms", minimum=0.0),
            _float(t.get("sigma", 0.5), f"{where}.sigma", minimum=0.0),
        )
    raise ValueError(f"{where}.dist: expected fixed, normal or lognormal, got {kind!r}")


def _parse_errors(value: Any, where: str) -> tuple[tuple[int, float], ...]:
    t = _table(value, where)
    pairs: list[tuple[int, float]] = []
    for status_raw, rate_raw in t.items():
        try:
            status = int(status_raw)
        except (TypeError, ValueError):
            raise ValueError(f"{where}: status {status_raw!r} is not a number") from None
        if not 400 <= status <= 599:
            raise ValueError(f"{where}: status {status} is not a 4xx or 5xx code")
        pairs.append((status, _float(rate_raw, f"{where}.{status}", minimum=0.0, maximum=1.0)))
    pairs.sort()
    if sum(r for _, r in pairs) > 1.0 + 1e-9:
        raise ValueError(f"{where}: rates add up to more than 1")
    return tuple(p for p in pairs if p[1] > 0)


def _parse_flap(value: Any, where: str) -> Flap:
    t = _table(value, where)
    _no_unknown(t, {"period", "down_for", "offset"}, where)
    period = _float(t.get("period"), f"{where}.period", minimum=0.001)
    down_for = _float(t.get("down_for"), f"{where}.down_for", minimum=0.0, maximum=period)
    return Flap(period, down_for, _float(t.get("offset", 0.0), f"{where}.offset", minimum=0.0))


def _windows(value: Any, where: str) -> tuple[TimeWindow, ...]:
    out: list[TimeWindow] = []
    for i, item in enumerate(_list(value, where)):
        pair = _list(item, f"{where}[{i}]")
        if len(pair) != 2:
            raise ValueError(f"{where}[{i}]: expected [start, end] in seconds")
        start = _float(pair[0], f"{where}[{i}]", minimum=0.0)
        end = _float(pair[1], f"{where}[{i}]", minimum=0.0)
        if end <= start:
            raise ValueError(f"{where}[{i}]: end must be after start")
        out.append((start, end))
    return tuple(out)


# Small typed readers: TOML already gives Python types, these only check them.


def _no_unknown(t: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(map(str, t)) - allowed)
    if unknown:
        raise ValueError(f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})")


def _unique(items: list[str], where: str, what: str) -> None:
    seen: set[str] = set()
    for item in items:
        if item in seen:
            raise ValueError(f"{where}: duplicate {what} {item!r}")
        seen.add(item)


def _table(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: expected a table, got {type(value).__name__}")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise ValueError(f"{where}: expected a list, got {type(value).__name__}")
    return list(value)


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{where}: expected a string, got {type(value).__name__}")
    return value


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{where}: expected true or false, got {value!r}")
    return value


def _int(value: Any, where: str, minimum: int | None = None, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{where}: expected an integer, got {value!r}")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(f"{where}: {value} is out of range [{minimum}, {maximum}]")
    return value


def _positive_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{where}: expected a positive integer (or false for unlimited), got {value!r}")
    return value


def _positive_float(value: Any, where: str) -> float:
    f = _float(value, where)
    if f <= 0:
        raise ValueError(f"{where}: expected a number of seconds > 0 (or false for none), got {value!r}")
    return f


def _fraction(value: Any, where: str) -> float:
    f = _float(value, where)
    if not 0 < f <= 1:
        raise ValueError(f"{where}: expected a number in (0, 1], got {value!r}")
    return f


def _float(value: Any, where: str, minimum: float | None = None, maximum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{where}: expected a number, got {value!r}")
    f = float(value)
    if not math.isfinite(f):
        raise ValueError(f"{where}: expected a finite number, got {value!r}")
    if (minimum is not None and f < minimum) or (maximum is not None and f > maximum):
        raise ValueError(f"{where}: {value} is out of range [{minimum}, {maximum}]")
    return f
