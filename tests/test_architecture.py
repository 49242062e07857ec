"""The package's rooms and their rules (docs/architecture.md): imports only go downward, no stage
imports a sibling stage, every default has one home, the commands stay thin."""
import ast
from collections import defaultdict
from pathlib import Path

import yaml

from conftest import ROOT

PKG = ROOT / "pipeline"
#: rank of each room: a module may import modules of its own rank or lower
RANK = {"core": 0, "contract": 1, "params": 1, "inputs": 2, "stats": 3, "stages": 4,
        "review": 5, "truth": 6, "cli": 7, "__main__": 8}


def _modules():
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG).with_suffix("")
        yield path, ".".join(rel.parts)


def _imported(path: Path, dotted: str) -> set[str]:
    """Every module of the package that ``path`` imports, at any depth (functions included)."""
    package = dotted.split(".")[:-1] if path.name != "__init__.py" else dotted.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)]
                target = base + (node.module.split(".") if node.module else [])
            elif node.module and node.module.split(".")[0] == "pipeline":
                target = node.module.split(".")[1:]
            else:
                continue
            if not node.module:                # from . import x: x is a module
                found.update(".".join(target + [a.name]) for a in node.names)
            else:
                found.add(".".join(target))
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".", 1)[1] for a in node.names
                         if a.name.startswith("pipeline."))
    return {f for f in found if f}


def _room(dotted: str) -> str:
    return dotted.split(".")[0]


def test_the_rooms_exist():
    for room in ("core", "inputs", "stages", "stats", "review", "truth", "cli"):
        assert (PKG / room / "__init__.py").exists(), room
    for module in ("params.py", "contract.py"):
        assert (PKG / module).exists()
    for stage in ("detect", "register", "track", "curate", "weights", "presence"):
        assert (PKG / "stages" / f"{stage}.py").exists(), stage
    assert not [p.name for p in PKG.glob("*.py")
                if p.name not in ("__init__.py", "__main__.py", "params.py", "contract.py")]


def test_imports_only_go_downward_and_no_stage_imports_a_sibling():
    wrong = []
    for path, dotted in _modules():
        here = _room(dotted)
        for target in _imported(path, dotted):
            there = _room(target)
            if RANK.get(there, 99) > RANK.get(here, 99):
                wrong.append(f"{dotted} imports {target} (a higher room)")
            if here == there == "stages" and target != dotted and not target.endswith("__init__"):
                wrong.append(f"{dotted} imports the sibling stage {target}")
    assert not wrong, "\n".join(wrong)


def test_the_import_check_sees_a_function_level_sibling_import(tmp_path):
    # the checker must see imports inside functions, as the old detect -> register one was
    src = tmp_path / "detect.py"
    src.write_text("def f():\n    from .register import bin_yx\n    return bin_yx\n")
    assert _imported(src, "stages.detect") == {"stages.register"}


def _numeric_tuples(tree):
    for node in ast.walk(tree):
        if isinstance(node, (ast.Tuple, ast.List)) and len(node.elts) >= 2 and all(
                isinstance(e, ast.Constant) and type(e.value) in (int, float) for e in node.elts):
            values = tuple(e.value for e in node.elts)
            # (0, 1), (1, 0, 0) and the like are axes and index pairs, not settings
            if any(v not in (0, 1) for v in values) and any(isinstance(v, float) for v in values):
                yield values, node.lineno


def test_no_setting_literal_or_module_constant_is_defined_twice():
    places, constants = defaultdict(list), defaultdict(list)
    for path, dotted in _modules():
        tree = ast.parse(path.read_text())
        for values, line in _numeric_tuples(tree):
            places[values].append(f"{dotted}:{line}")
        for node in tree.body:
            targets = (node.targets if isinstance(node, ast.Assign)
                       else [node.target] if isinstance(node, ast.AnnAssign) else [])
            for t in targets:
                if isinstance(t, ast.Name) and t.id.isupper() and t.id != "__all__":
                    constants[t.id].append(dotted)
    twice = {v: p for v, p in places.items() if len(p) > 1}
    assert not twice, f"literals written in more than one place: {twice}"
    again = {c: m for c, m in constants.items() if len(m) > 1}
    assert not again, f"module constants defined in more than one module: {again}"


#: keywords that share a config option's name but not its meaning
NOT_THE_OPTION = {("stages.weights", "null_positions", "seed")}   # where null places are drawn


def test_stage_functions_take_their_defaults_from_params():
    """A keyword named like a config option may not restate the option's default."""
    from pipeline.params import SECTIONS, defaults

    options = defaultdict(set)
    for cls in SECTIONS.values():
        for name, value in defaults(cls).items():
            options[name].add(repr(value) if not isinstance(value, list) else repr(tuple(value)))
    restated = []
    for path, dotted in _modules():
        if _room(dotted) not in ("core", "stages", "stats", "review"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            args = node.args
            pairs = list(zip(args.kwonlyargs, args.kw_defaults))
            pairs += list(zip(args.args[len(args.args) - len(args.defaults):], args.defaults))
            for arg, default in pairs:
                if ((dotted, node.name, arg.arg) in NOT_THE_OPTION or arg.arg not in options
                        or default is None):
                    continue
                try:
                    value = ast.literal_eval(default)
                except ValueError:
                    continue                          # a name: params' field or a constant
                if repr(value) in options[arg.arg]:
                    restated.append(f"{dotted}.{node.name}({arg.arg}={value!r})")
    assert not restated, restated


def test_schema_and_config_yaml_agree_with_params():
    from pipeline.params import SECTIONS, defaults

    schema = yaml.safe_load((PKG / "schemas" / "config.schema.yaml").read_text())["properties"]
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    for section, cls in SECTIONS.items():
        expected = defaults(cls)
        props = schema[section]["properties"]
        assert set(props) == set(expected), section
        assert {k: props[k].get("default") for k in props} == expected, section
        assert config[section] == expected, f"config.yaml section {section}"


def test_cli_commands_are_thin():
    tree = ast.parse((PKG / "cli" / "commands.py").read_text())
    long = {n.name: n.end_lineno - n.lineno + 1 for n in tree.body
            if isinstance(n, ast.FunctionDef) and n.name.startswith("cmd_")
            and n.end_lineno - n.lineno + 1 > 25}
    assert not long, f"commands longer than 25 lines: {long}"


def test_the_schemas_ship_with_the_package():
    text = (ROOT / "pyproject.toml").read_text()
    assert '"schemas/*.yaml"' in text
    from pipeline.inputs.sheet import SCHEMA_DIR

    assert SCHEMA_DIR == PKG / "schemas" and (SCHEMA_DIR / "sessions.schema.yaml").exists()
