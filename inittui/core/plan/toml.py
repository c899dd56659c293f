"""Plan files: TOML text <-> :class:`~inittui.core.plan.model.Plan`, every key checked."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

from inittui.core.errors import InittuiError
from inittui.core.infiles import require_regular_file
from inittui.core.limits import seed_too_large
from inittui.core.plan.expr_context import validate_args
from inittui.core.plan.model import (
    CONTRACT_KEYS,
    EXTENSION_KEYS,
    PLAN_VERSION,
    Plan,
    Rule,
    check_extension,
    check_split_rule,
    rule_label,
)
from inittui.core.plan.select import compile_select
from inittui.core.prelude import DRAW_SCHEME
from inittui.core.schemes import SchemeError, get_scheme

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def rule_from_dict(index: int, raw: Mapping[str, object]) -> Rule:
    """Validate one ``[[rule]]`` table: keys, scheme name, scheme arguments."""
    if not isinstance(raw, Mapping):
        raise InittuiError(f"rule {index + 1} is not a table; write [[rule]] with select/scheme")
    label = rule_label(index, raw)
    for key in ("select", "scheme"):
        if key not in raw:
            raise InittuiError(f"{label}: missing key {key!r}; every rule needs select and scheme")
        if not isinstance(raw[key], str):
            raise InittuiError(f"{label}: {key} must be a string, got {raw[key]!r}")
    params = raw.get("params", "*")
    if not isinstance(params, str) or not params:
        raise InittuiError(f"{label}: params must be a non-empty glob string, got {params!r}")
    select = raw["select"]
    compile_select(select, label)
    scheme_name = raw["scheme"]
    extensions = {k: check_extension(label, k, v) for k, v in raw.items() if k in EXTENSION_KEYS}
    check_split_rule(label, extensions)
    scheme_args = {
        k: v for k, v in raw.items() if k not in CONTRACT_KEYS and k not in EXTENSION_KEYS
    }
    try:
        args = validate_args(get_scheme(scheme_name), scheme_args, label)
    except SchemeError as exc:
        raise InittuiError(f"{label}: {exc}") from None
    return Rule(select=select, scheme=scheme_name, params=params, args=args, **extensions)


def plan_from_dict(document: Mapping[str, object], source: str = "plan") -> Plan:
    if not isinstance(document, Mapping):
        raise InittuiError(f"{source}: a plan is a TOML table with version, seed and [[rule]]s")
    known = {"version", "seed", "draw_scheme", "rule"}
    unknown = [k for k in document if k not in known]
    if unknown:
        raise InittuiError(
            f"{source}: unknown top-level key(s) {', '.join(map(repr, unknown))}; "
            "a plan has version, seed, draw_scheme and [[rule]] tables"
        )
    version = document.get("version", PLAN_VERSION)
    if version != PLAN_VERSION:
        raise InittuiError(
            f"{source}: plan version {version!r} is not supported; this inittui reads version 1"
        )
    seed = document.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InittuiError(
            f"{source}: seed must be a non-negative integer, got {seed!r}; write e.g. seed = 0"
        )
    if seed_too_large(seed) is not None:
        raise InittuiError(f"{source}: seed {seed_too_large(seed)}; write e.g. seed = 0")
    draw_scheme = document.get("draw_scheme", DRAW_SCHEME)
    if type(draw_scheme) is not int or draw_scheme not in (1, 2):
        raise InittuiError(
            f"{source}: draw_scheme must be 1 or 2, got {draw_scheme!r}; leave it out for "
            "tile-by-tile draws (2), or write draw_scheme = 1 to reproduce an older export"
        )
    raw_rules = document.get("rule", [])
    if not isinstance(raw_rules, list):
        raise InittuiError(f"{source}: 'rule' must be an array of tables; write [[rule]]")
    rules = tuple(rule_from_dict(i, raw) for i, raw in enumerate(raw_rules))
    return Plan(rules=rules, seed=seed, draw_scheme=draw_scheme)


MAX_PLAN_BYTES = 10 * 10**6  # a plan of 100,000 rules is a few MB


def load_plan(path: str | Path) -> Plan:
    file = Path(path).expanduser()
    if not file.exists():
        raise InittuiError(f"plan file {str(path)!r} not found; check the path")
    if file.is_dir():
        raise InittuiError(f"plan {str(path)!r} is a folder; give a .toml file")
    try:
        size = require_regular_file(file, "plan", "give a .toml file").st_size
        if size > MAX_PLAN_BYTES:
            raise InittuiError(
                f"plan {file.name} is {size / 1e6:.1f} MB; plans are at most "
                f"{MAX_PLAN_BYTES // 10**6} MB of TOML (is this the right file?)"
            )
        data = file.read_bytes()
        if data.startswith(b"\xef\xbb\xbf"):
            raise InittuiError(
                f"plan {file.name} starts with a UTF-8 byte-order mark (BOM); "
                "save it as UTF-8 without BOM"
            )
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InittuiError(
            f"cannot read plan {file.name}: it is not UTF-8 text (byte 0x{exc.object[exc.start]:02x}"
            f" at offset {exc.start}); save it as UTF-8"
        ) from None
    except OSError as exc:
        raise InittuiError(
            f"cannot read plan {file.name}: {exc.strerror or exc}; check the path and permissions"
        ) from None
    return parse_plan(text, file.name)


def parse_plan(text: str, source: str = "plan") -> Plan:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else "parse error"
        raise InittuiError(f"{source} is not valid TOML: {detail}; fix the plan file") from None
    return plan_from_dict(document, source)


def plan_to_toml(plan: Plan) -> str:
    """The plan as TOML (version 1), readable and round-trippable."""
    import tomli_w

    document: dict[str, object] = {"version": plan.version, "seed": plan.seed}
    if plan.draw_scheme != DRAW_SCHEME:
        document["draw_scheme"] = plan.draw_scheme
    document["rule"] = [rule.to_toml_dict() for rule in plan.rules]
    return tomli_w.dumps(document)
