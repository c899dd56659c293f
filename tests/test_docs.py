"""The docs say what the code does: documented JSON keys are the emitted keys, the scheme
tables and the README key table are generated from the code, and every relative link in
README.md and docs/ points to a file that exists."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
from harness import HE_PLAN_FILE, MODELS, PLANS, ROOT, SAMPLES, run_cli

DOCS = ROOT / "docs"
JSON_DOC = DOCS / "json.md"
MLP = f"{SAMPLES}/mlp.py:MLP"
LSTM = f"{SAMPLES}/lstm_lm.py:LSTMLanguageModel"
EVERY_KEY_PLAN = PLANS / "every_key.toml"
SCHEME_ARGS_ROW = "*the scheme's arguments*"


def _load_generator():
    spec = importlib.util.spec_from_file_location("docs_generate", DOCS / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------- JSON keys


class Documented:
    """The key table of one JSON object: ``always`` keys, ``optional`` keys, and whether
    the object also carries its scheme's arguments (a rule)."""

    def __init__(self) -> None:
        self.always: set[str] = set()
        self.optional: set[str] = set()
        self.scheme_args = False

    @property
    def keys(self) -> set[str]:
        return self.always | self.optional


def documented_objects(text: str) -> dict[str, Documented]:
    """``<!-- keys: NAME -->`` followed by a table whose first column names the keys (in
    backticks) and whose third column says when each is present."""
    objects: dict[str, Documented] = {}
    lines = text.splitlines()
    for i, line in enumerate(lines):
        marker = re.fullmatch(r"<!-- keys: (\S+) -->", line.strip())
        if not marker:
            continue
        doc = objects.setdefault(marker.group(1), Documented())
        for row in lines[i + 3 :]:  # skip the header and the |---| line
            if not row.startswith("|"):
                break
            cells = [cell.strip() for cell in row.strip("|").split("|")]
            names, present = cells[0], cells[2]
            if names == SCHEME_ARGS_ROW:
                doc.scheme_args = True
                continue
            keys = re.findall(r"`([^`]+)`", names)
            assert keys, f"no key in row {row!r} of {marker.group(1)}"
            (doc.always if present == "always" else doc.optional).update(keys)
    return objects


def objects_at(document: object, path: str) -> list[dict]:
    """The objects at ``path`` (``parameters[].stats``) under ``document``."""
    found = [document]
    for part in filter(None, path.split(".")):
        step = []
        for item in found:
            value = item.get(part.removesuffix("[]"))
            if value is None:
                continue
            step.extend(value if part.endswith("[]") else [value])
        found = step
    return found


def run_json(*args: object) -> dict:
    result = run_cli(*args, "--json")
    assert result.code == 0, result.err
    return result.json()


@pytest.fixture(scope="module")
def emitted(tmp_path_factory) -> dict[str, list[dict]]:
    """Each command's documents on models and plans that between them print every key."""
    out = tmp_path_factory.mktemp("lsuv")
    preview_mlp = run_json("preview", MLP, "--plan", HE_PLAN_FILE, "--backward")
    return {
        "inspect": [
            run_json("inspect", LSTM),
            run_json("inspect", f"{SAMPLES}/convnet.py:ConvNet"),
            run_json("inspect", f"{MODELS}/zoo.py:Convs"),  # fans other than torch's
            run_json("inspect", f"{MODELS}/provenance_models.py:Tied"),  # a partial write
        ],
        "plan": [
            run_json("plan", LSTM, "--plan", EVERY_KEY_PLAN),
            run_json("plan", f"{MODELS}/zoo.py:Convs", "--plan", PLANS / "fans.toml"),
            run_json(
                "plan",
                f"{MODELS}/zoo.py:NeedsArgs",
                "--arg",
                "hidden=4",
                "--arg",
                "depth=2",
                "--plan",
                PLANS / "expressions.toml",
            ),  # expressions
            run_json("plan", f"{MODELS}/split_models.py:Fused", "--plan", PLANS / "split.toml"),
        ],
        "preview": [
            preview_mlp,
            run_json("preview", LSTM),  # a tuple output (main_output), a vanishing flag
            run_json("preview", f"{SAMPLES}/tiny_gpt.py:TinyGPT", "--backward"),  # residuals
            run_json("preview", f"{SAMPLES}/tiny_gpt.py:TinyGPT", "--blocks", "1", "--backward"),
        ],
        "preview-current": [preview_mlp["current"]],
        "lsuv": [
            run_json("lsuv", LSTM, "--plan", EVERY_KEY_PLAN, "--plan-out", out / "l.toml"),
            run_json(
                "lsuv",
                f"{MODELS}/blocks_models.py:ResidualMLP",
                "--blocks",
                "1",
                "--plan-out",
                out / "b.toml",
            ),  # fmt: skip
        ],
        "diff": [
            run_json(
                "diff", f"{SAMPLES}/tiny_gpt.py:TinyGPT", "current", HE_PLAN_FILE, "--preview"
            ),
        ],
        "presets": [run_json("presets")],
    }


def test_json_doc_covers_every_command():
    objects = documented_objects(JSON_DOC.read_text(encoding="utf-8"))
    commands = {"inspect", "plan", "preview", "lsuv", "diff", "presets"}
    assert {name.split(".")[0] for name in objects} == commands
    assert len(objects) >= 15, sorted(objects)


def test_documented_json_keys_are_the_emitted_keys(emitted):
    """Every documented object: its "always" keys in each emitted object, no undocumented
    key anywhere, and every documented key emitted by at least one of the documents."""
    from inittui.core.schemes import SCHEMES

    problems = []
    for name, doc in documented_objects(JSON_DOC.read_text(encoding="utf-8")).items():
        command, _, path = name.partition(".")
        objects = [obj for document in emitted[command] for obj in objects_at(document, path)]
        if not objects:
            problems.append(f"{name}: no emitted object to compare with")
            continue
        seen: set[str] = set()
        for obj in objects:
            keys = set(obj)
            if doc.scheme_args and obj.get("scheme") in SCHEMES:
                keys -= set(SCHEMES[obj["scheme"]].arg_names)
            seen |= keys
            if doc.always - keys:
                problems.append(f"{name}: documented as always present, missing: "
                                f"{sorted(doc.always - keys)} in {sorted(obj)}")  # fmt: skip
            if keys - doc.keys:
                problems.append(f"{name}: emitted but not documented: {sorted(keys - doc.keys)}")
        if doc.keys - seen:
            problems.append(f"{name}: documented but never emitted: {sorted(doc.keys - seen)}")
    assert not problems, "docs/json.md and the --json output differ:\n" + "\n".join(
        dict.fromkeys(problems)
    )


def test_preview_current_has_the_preview_keys_without_the_plan_keys(emitted):
    doc = documented_objects(JSON_DOC.read_text(encoding="utf-8"))["preview"]
    for current in emitted["preview-current"]:
        assert set(current) == doc.always


def test_the_key_check_catches_a_drift(emitted):
    """The comparison above fails on an undocumented key and on a missing one."""
    text = JSON_DOC.read_text(encoding="utf-8")
    objects = documented_objects(text.replace("| `abs_max` |", "| `abs_maximum` |"))
    layers = objects["preview.layers[]"]
    emitted_keys = set(emitted["preview"][0]["layers"][0])
    assert "abs_max" in emitted_keys - layers.keys
    assert "abs_maximum" in layers.always - emitted_keys


# --------------------------------------------------------------------------- generated parts


def test_generated_blocks_are_up_to_date():
    generator = _load_generator()
    stale = [
        str(path.relative_to(ROOT))
        for path, text in generator.generated_files().items()
        if path.read_text(encoding="utf-8") != text
    ]
    assert not stale, f"{', '.join(stale)} out of date: run `python docs/generate.py`"


def test_documented_schemes_and_arguments_are_the_scheme_table():
    """The scheme table in docs/plan-format.md names every scheme of SCHEMES with its
    arguments, and the argument table gives each argument's default."""
    from inittui.core.schemes import SCHEMES

    generator = _load_generator()
    text = (DOCS / "plan-format.md").read_text(encoding="utf-8")
    schemes = {}
    for row in generator.read_block(text, "schemes").splitlines()[2:]:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        schemes[cells[0].strip("`")] = re.findall(r"`([^`]+)`", cells[1])
    assert schemes == {name: list(s.arg_names) for name, s in SCHEMES.items()}
    defaults = {}
    for row in generator.read_block(text, "scheme-args").splitlines()[2:]:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        defaults[(cells[0].strip("`"), cells[1].strip("`"))] = cells[2]
    expected = {
        (name, arg.name): "required" if arg.required else generator._value(arg.default)
        for name, scheme in SCHEMES.items()
        for arg in scheme.args
    }
    assert defaults == expected


def test_readme_key_table_is_generated_from_the_bindings():
    from inittui.tui.keys import MAIN_KEYS, markdown_table, readme_with_table

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme_with_table(readme) == readme, (
        "the README key table differs from inittui/tui/keys.py: run `python docs/generate.py`"
    )
    table = markdown_table()
    assert table in readme
    for key in MAIN_KEYS:
        assert f"| {key.help} |" in table


def test_help_sections_come_from_the_main_bindings():
    from inittui.tui.keys import MAIN_KEYS, help_sections, main_bindings

    main = dict(help_sections())["Main"]
    assert [help for _, help in main[: len(MAIN_KEYS)]] == [key.help for key in MAIN_KEYS]
    assert [b.id for b in main_bindings()] == [key.id for key in MAIN_KEYS]
    assert all(b.description for b in main_bindings())


# --------------------------------------------------------------------------- links


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]


def test_no_file_cites_the_design_notes_that_are_not_in_the_repository():
    for folder in ("inittui", "tests", "docs", "benchmarks", "sample_models"):
        for path in (ROOT / folder).rglob("*.py"):
            if path == Path(__file__).resolve():
                continue
            assert "DESIGN.md" not in path.read_text(encoding="utf-8"), path
    for path in markdown_files():
        assert "DESIGN.md" not in path.read_text(encoding="utf-8"), path


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: p.name)
def test_relative_links_point_to_files_that_exist(path):
    text = path.read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    broken = []
    for link in links:
        if re.match(r"[a-z]+:", link) or link.startswith("#"):
            continue
        target = link.split("#", 1)[0]
        if not (path.parent / target).exists():
            broken.append(link)
    assert not broken, f"{path.name} links to files that do not exist: {broken}"
