"""app.json is what Heroku reads to deploy the app (the Deploy button, review apps, Heroku CI):
it must follow Heroku's documented schema, run the processes the Procfile declares, and offer
exactly the settings the app reads, each explained, so a deploy asks for nothing unused and
misses nothing needed."""

from __future__ import annotations

import ast
import copy
import json
import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "tests" / "data" / "heroku-app-json" / "app-json.schema.json"
CODE = ("bot", "handlers", "storage")

# Read by code on another branch, not yet on this one. Once it is merged its names must leave
# this list: the test below fails while the app reads a name that is still here.
COMING_FROM_OTHER_BRANCHES: frozenset[str] = frozenset()

# Read by the app but not set through app.json, and why.
NOT_FOR_HEROKU = {
    "PORT": "Heroku gives each web dyno its port",
    "DATABASE_URL": "the heroku-postgresql add-on sets it",
    "SLACK_APP_TOKEN": "Socket Mode is for machines without a public URL; the web dyno takes HTTP",
    "MEDIA_DIR": "a dyno's disk is neither kept nor shared, so Cloudinary keeps the originals",
    # `python -m bot serve` makes its own for each start (bot/process_metrics.py).
    "PROMETHEUS_MULTIPROC_DIR": "the web process makes its own metrics directory",
}

App = dict[str, Any]


def app_json() -> App:
    return dict(json.loads((ROOT / "app.json").read_text()))


def procfile() -> dict[str, str]:
    """Process type -> command, read the way Heroku and honcho read a Procfile."""
    lines = (ROOT / "Procfile").read_text().splitlines()
    found = (re.fullmatch(r"([A-Za-z0-9_-]+):\s*(.+)", line.strip()) for line in lines)
    return {m.group(1): m.group(2) for m in found if m}


def _is_os(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id == "os"


def _is_environment(node: ast.expr) -> bool:
    """`os.environ`, or `env`: what bot/config.py calls the environment it reads (a WSGI
    `environ` is a request, not the process's environment)."""
    return (isinstance(node, ast.Name) and node.id == "env") or (
        isinstance(node, ast.Attribute) and node.attr == "environ" and _is_os(node.value)
    )


def _name(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value if re.fullmatch(r"[A-Z][A-Z0-9_]*", node.value) else None
    return None


def _variable_read_by(node: ast.AST) -> str | None:
    """The variable an expression reads: `env.get("X")`, `os.environ["X"]`, `os.getenv("X")`,
    or a helper handed the environment first (`_int(env, "X", ...)` in bot/config.py)."""
    if isinstance(node, ast.Subscript) and _is_environment(node.value):
        return _name(node.slice)
    if not isinstance(node, ast.Call) or not node.args:
        return None
    func = node.func
    if isinstance(func, ast.Attribute) and (
        (func.attr == "get" and _is_environment(func.value))
        or (func.attr == "getenv" and _is_os(func.value))
    ):
        return _name(node.args[0])
    if _is_environment(node.args[0]) and len(node.args) > 1:
        return _name(node.args[1])
    return None


def variables_the_app_reads() -> set[str]:
    """Every environment variable the application code reads, found in the code itself."""
    found = set()
    for package in CODE:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                name = _variable_read_by(node)
                if name:
                    found.add(name)
    return found


def problems(app: App) -> list[str]:
    """Everything wrong with `app` as this app's app.json: Heroku's schema, then our rules."""
    schema = json.loads(SCHEMA.read_text())
    found = [
        f"{'/'.join(map(str, e.absolute_path)) or 'app.json'}: {e.message}"
        for e in jsonschema.Draft7Validator(schema).iter_errors(app)
    ]
    if found:
        return found
    env = app.get("env", {})
    for name, spec in env.items():
        if not isinstance(spec, dict) or not spec.get("description", "").strip():
            found.append(f"{name} has no description")
        elif not isinstance(spec.get("required"), bool):
            found.append(f"{name} does not say whether it is required")
    processes = procfile()
    for process_type in app.get("formation", {}):
        if process_type not in processes:
            found.append(f"formation {process_type!r} is not a process type in the Procfile")
    wanted = (variables_the_app_reads() | COMING_FROM_OTHER_BRANCHES) - set(NOT_FOR_HEROKU)
    for name in sorted(wanted - set(env)):
        found.append(f"{name} is read by the app but missing from app.json")
    for name in sorted(set(env) - wanted):
        reason = NOT_FOR_HEROKU.get(name, "the app does not read it")
        found.append(f"{name} is in app.json but should not be: {reason}")
    return found


def test_app_json_follows_herokus_schema_and_describes_every_setting() -> None:
    assert problems(app_json()) == []


def test_app_json_deploys_web_and_worker_on_postgres_with_migrations_first() -> None:
    app = app_json()
    assert set(app["formation"]) == {"web", "worker"}
    assert all(process["quantity"] >= 1 for process in app["formation"].values())
    assert "heroku-postgresql" in [a if isinstance(a, str) else a["plan"] for a in app["addons"]]
    assert [b["url"] for b in app["buildpacks"]] == ["heroku/python"]
    commands = {kind: command.removeprefix("exec ") for kind, command in procfile().items()}
    assert commands == {
        "release": "python -m bot migrate",  # Heroku's release phase, before new dynos start
        "web": "python -m bot serve",
        "worker": "python -m bot worker",
    }


def test_secrets_every_dyno_must_share_are_generated_once_at_deploy() -> None:
    env = app_json()["env"]
    generated = {name for name, spec in env.items() if spec.get("generator") == "secret"}
    assert generated == {"SECRET_KEY", "MEDIA_SIGNING_KEY"}


def test_heroku_ci_runs_the_tests_ci_runs() -> None:
    script = app_json()["environments"]["test"]["scripts"]["test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert script.endswith("make test")
    assert re.search(r"^make test$", ci, re.MULTILINE)


def test_python_version_is_one_the_project_supports() -> None:
    pinned = (ROOT / ".python-version").read_text().strip()
    # The buildpack's recommended form: a major version, so security releases come with builds.
    assert re.fullmatch(r"3\.\d+", pinned), pinned
    floor = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    minimum = tuple(int(part) for part in floor.removeprefix(">=").split("."))
    assert tuple(int(part) for part in pinned.split(".")) >= minimum


def test_names_from_other_branches_leave_the_list_once_the_app_reads_them() -> None:
    assert COMING_FROM_OTHER_BRANCHES & variables_the_app_reads() == set()


def _without_description(app: App) -> None:
    del app["env"]["SLACK_SIGNING_SECRET"]["description"]


def _unsaid_requirement(app: App) -> None:
    del app["env"]["SMTP_URL"]["required"]


def _unknown_process(app: App) -> None:
    app["formation"]["clock"] = {"quantity": 1}


def _misspelt_key(app: App) -> None:
    app["addon"] = app.pop("addons")


def _unread_variable(app: App) -> None:
    app["env"]["SLACK_TOKEN"] = {"description": "a typo", "required": False}


def _platform_variable(app: App) -> None:
    app["env"]["PORT"] = {"description": "the port", "required": False}


def _forgotten_variable(app: App) -> None:
    del app["env"]["MAX_IMAGE_MB"]


def _not_a_string(app: App) -> None:
    app["env"]["WEB_CONCURRENCY"]["value"] = 1


@pytest.mark.parametrize(
    ("mutate", "said"),
    [
        (_without_description, "SLACK_SIGNING_SECRET has no description"),
        (_unsaid_requirement, "SMTP_URL does not say whether it is required"),
        (_unknown_process, "formation 'clock' is not a process type in the Procfile"),
        (_misspelt_key, "Additional properties are not allowed ('addon' was unexpected)"),
        (_unread_variable, "SLACK_TOKEN is in app.json but should not be"),
        (_platform_variable, "PORT is in app.json but should not be: Heroku gives"),
        (_forgotten_variable, "MAX_IMAGE_MB is read by the app but missing from app.json"),
        (_not_a_string, "env/WEB_CONCURRENCY"),
    ],
)
def test_a_broken_app_json_is_caught(mutate: Callable[[App], None], said: str) -> None:
    app = copy.deepcopy(app_json())
    mutate(app)
    assert any(said in problem for problem in problems(app)), problems(app)
