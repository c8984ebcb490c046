"""Run configuration: stages, profiles, request mix and thresholds, parsed from flag text."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from loadgen.scenario import OPERATIONS


class ConfigError(ValueError):
    """A flag or environment value that cannot be used; exit code 2."""


@dataclass(frozen=True)
class Stage:
    """A constant arrival rate (requests/s) held for a duration (s); rate 0 is a pause."""

    rate: float
    duration: float


PROFILES: dict[str, str] = {
    "smoke": "5:15s",
    "ramp": "260:1m,940:2m,2100:4m",  # derived in the README ("The default ramp")
    "spike": "20:30s,400:1m,20:1m",
    "soak": "100:30m",
}

DEFAULT_MIX = "list=22,high=22,pending=22,stats=22,create=4,complete=4,delete=4"

# Local runs write under .run/ of the current directory (the repository root): git ignores it,
# so a run never leaves the working tree dirty. The in-cluster Job sets LOADGEN_REPORT itself.
RUN_DIR = ".run/loadgen"
DEFAULT_REPORT = f"{RUN_DIR}/report.json"
DEFAULT_MERGED = f"{RUN_DIR}/merged.json"

_DURATION = re.compile(r"^(?P<num>\d+(?:\.\d+)?)(?P<unit>ms|s|m|h)?$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(text: str) -> float:
    """'90', '90s', '1.5m', '2h', '250ms' -> seconds."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise ConfigError(f"bad duration {text!r} (use e.g. 30s, 2m, 1h)")
    return float(match["num"]) * _UNIT_SECONDS[match["unit"]]


def parse_stages(text: str) -> tuple[Stage, ...]:
    """'50:1m,100:30s' -> stages; each item is RATE:DURATION."""
    stages = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        rate_text, sep, duration_text = item.partition(":")
        if not sep:
            raise ConfigError(f"bad stage {item!r} (use RATE:DURATION, e.g. 100:30s)")
        rate = _non_negative(rate_text, f"stage {item!r}: rate")
        duration = parse_duration(duration_text)
        if duration <= 0:
            raise ConfigError(f"stage duration must be > 0 in {item!r}")
        stages.append(Stage(rate, duration))
    if not stages or all(stage.rate == 0 for stage in stages):
        raise ConfigError(f"stages {text!r} send nothing")
    return tuple(stages)


def parse_mix(text: str) -> dict[str, float]:
    """'list=3,create=1' -> weights per operation; unnamed operations get 0."""
    weights = {name: 0.0 for name in OPERATIONS}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        if not sep or name.strip() not in OPERATIONS:
            raise ConfigError(f"bad mix item {item!r} (operations: {', '.join(OPERATIONS)})")
        weights[name.strip()] = _non_negative(value, f"mix weight for {name.strip()}")
    if sum(weights.values()) <= 0:
        raise ConfigError(f"mix {text!r} has no positive weight")
    return weights


@dataclass(frozen=True)
class Limit:
    """A threshold limit with optional per-endpoint overrides."""

    default: float
    per_endpoint: Mapping[str, float] = field(default_factory=dict)

    def for_endpoint(self, name: str) -> float:
        return self.per_endpoint.get(name, self.default)

    def to_json(self) -> dict[str, Any]:
        return {"default": self.default, "per_endpoint": dict(self.per_endpoint)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Limit:
        return cls(float(data["default"]), {k: float(v) for k, v in data["per_endpoint"].items()})


def parse_limit(text: str, what: str) -> Limit:
    """'300' or '300,stats=200,create=500' -> a default limit and per-endpoint overrides."""
    default: float | None = None
    overrides: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.rpartition("=")
        number = _non_negative(value, what)
        if not sep:
            default = number
        elif name.strip() in OPERATIONS:
            overrides[name.strip()] = number
        else:
            raise ConfigError(f"{what}: unknown endpoint {name.strip()!r}")
    if default is None:
        raise ConfigError(f"{what}: {text!r} has no default value")
    return Limit(default, overrides)


def _non_negative(value: str, what: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{what}: {value!r} is not a number") from None
    if not math.isfinite(number) or number < 0:
        raise ConfigError(f"{what}: {value!r} must be >= 0")
    return number


@dataclass(frozen=True)
class Thresholds:
    """Pass/fail gates: p99 latency (ms) and error rate per endpoint, schedule-miss rate overall."""

    p99_ms: Limit
    error_rate: Limit
    miss_rate: float

    def to_json(self) -> dict[str, Any]:
        return {
            "p99_ms": self.p99_ms.to_json(),
            "error_rate": self.error_rate.to_json(),
            "miss_rate": self.miss_rate,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Thresholds:
        return cls(
            Limit.from_json(data["p99_ms"]),
            Limit.from_json(data["error_rate"]),
            float(data["miss_rate"]),
        )


@dataclass(frozen=True)
class RunConfig:
    """Everything `loadgen run` needs, validated."""

    tasks_url: str
    stats_url: str
    profile: str
    stages: tuple[Stage, ...]
    mix: Mapping[str, float]
    thresholds: Thresholds
    max_inflight: int = 1000
    lag_bound: float = 0.025
    timeout: float = 10.0
    client: str = "aiohttp"
    loop: str = "uvloop"
    seed: int | None = None
    max_own_tasks: int = 1000
    cleanup: bool = True
    report: str | None = DEFAULT_REPORT
    created_ids: str | None = None  # file that logs every acknowledged create's id
    print_json: bool = False
    metrics_port: int = 9100
    progress_interval: float = 5.0
    wait_ready: float = 0.0
    observe_after: float = 0.0
    namespace: str | None = None
    trace_fraction: float = 0.0  # share of requests sent with a sampled W3C traceparent

    def services_used(self) -> set[str]:
        return {OPERATIONS[name].service for name, weight in self.mix.items() if weight > 0}

    def base_url(self, service: str) -> str:
        return self.tasks_url if service == "tasks" else self.stats_url


def check_url(url: str, flag: str) -> str:
    """Base URLs must be absolute http(s) URLs; a trailing slash is dropped."""
    if not re.match(r"^https?://[^/\s]+", url):
        raise ConfigError(f"{flag}: {url!r} is not an http(s) base URL")
    return url.rstrip("/")
