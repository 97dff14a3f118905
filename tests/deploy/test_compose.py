"""deploy/compose.yaml: valid against the Compose Specification, and wired as docs/deploy.md says.

``docker compose config`` needs the compose plugin, which is not installed here (and no engine
runs), so the file goes through what it does: variables interpolated the way Compose does, then
the JSON schema Compose itself validates with (compose-go's, vendored in schemas/), then the
references a schema cannot see (services, networks, volumes and files named elsewhere).
"""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.deploy.conftest import (
    COMPOSE,
    DEPLOY,
    ROOT,
    SCHEMAS,
    Dockerfile,
    assert_only_settings_named,
    check_settings,
    load_yaml_documents,
    module,
)

#: What an operator puts in deploy/.env (deploy/env.example).
OPERATOR_ENV = {
    "POSTGRES_PASSWORD": "5f0c1d2e3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d",
    "JWT_SECRET": "ab" * 32,
    "PUBLIC_HOST": "voice.example.com",
}
SERVICES = {"voxdialog", "postgres", "redis", "proxy"}

_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|(?P<plain>[A-Za-z_]\w*)|\{(?P<braced>[A-Za-z_]\w*)"
    r"(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\})"
)


class MissingVariable(ValueError):
    """A ``${VAR:?message}`` whose variable is unset or empty (Compose stops there)."""


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's interpolation of every string value: ``$$``, ``$V``, ``${V:-d}``, ``${V:?e}``..."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def one(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        name = match.group("plain") or match.group("braced")
        op, arg = match.group("op"), match.group("arg") or ""
        current = env.get(name)
        unset_or_empty = not current
        if op in (":-", "-"):
            use_default = unset_or_empty if op == ":-" else current is None
            return arg if use_default else str(current)
        if op in (":?", "?"):
            if unset_or_empty if op == ":?" else current is None:
                raise MissingVariable(f"{name}: {arg}")
            return str(current)
        if op in (":+", "+"):
            present = not unset_or_empty if op == ":+" else current is not None
            return arg if present else ""
        return current or ""

    return _VARIABLE.sub(one, value)


def compose(env: dict[str, str] | None = None) -> dict[str, Any]:
    [document] = load_yaml_documents(COMPOSE)
    return dict(interpolate(document, OPERATOR_ENV if env is None else env))


@pytest.fixture(scope="module")
def schema_validator() -> Any:
    jsonschema = module("jsonschema")
    schema = json.loads((SCHEMAS / "compose-spec.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_interpolation_follows_compose() -> None:
    env = {"SET": "x", "EMPTY": ""}
    assert (
        interpolate("$$SET ${SET} $SET ${NOPE:-d} ${EMPTY:-d} ${EMPTY-d}", env) == "$SET x x d d "
    )
    assert interpolate("${SET:+alt}${NOPE:+alt}", env) == "alt"
    with pytest.raises(MissingVariable):
        interpolate("${EMPTY:?needed}", env)


def test_secrets_have_no_defaults() -> None:
    """Without deploy/.env Compose stops instead of starting with a guessable password."""
    for name in ("POSTGRES_PASSWORD", "JWT_SECRET"):
        with pytest.raises(MissingVariable, match=name):
            compose({k: v for k, v in OPERATOR_ENV.items() if k != name})
    example = (DEPLOY / "env.example").read_text(encoding="utf-8")
    for name in OPERATOR_ENV:
        assert re.search(rf"^{name}=", example, re.M), f"deploy/env.example lacks {name}"


def test_valid_against_the_compose_spec(schema_validator: Any) -> None:
    errors = sorted(schema_validator.iter_errors(compose()), key=lambda e: e.json_path)
    assert not errors, "\n".join(f"{e.json_path}: {e.message}" for e in errors)


def test_the_schema_check_bites(schema_validator: Any) -> None:
    """Misspelt keys and a wrong condition are caught (so the test above can fail)."""
    broken = compose()
    broken["services"]["voxdialog"]["healthcheck"]["intervall"] = "15s"
    broken["services"]["proxy"]["depends_on"]["voxdialog"]["condition"] = "service_ready"
    broken["services"]["redis"]["ports"] = [{"target": 6379, "protocl": "tcp"}]
    paths = {e.json_path for e in schema_validator.iter_errors(broken)}
    for broken_path in (
        "$.services.voxdialog.healthcheck",
        "$.services.proxy.depends_on",  # a list or a mapping: the error is reported here
        "$.services.redis.ports",
    ):
        assert any(p.startswith(broken_path) for p in paths), (broken_path, paths)


_GO_DURATION = re.compile(r"(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+")


def seconds(duration: str) -> float:
    """A Go duration (what Compose accepts for intervals and grace periods), in seconds."""
    assert _GO_DURATION.fullmatch(duration), f"{duration!r} is not a duration"
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
    return sum(
        float(n) * units[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", duration)
    )


def test_services_healthchecks_and_start_order() -> None:
    services = compose()["services"]
    assert set(services) == SERVICES
    for name, service in services.items():
        check = service.get("healthcheck")
        assert check, f"{name} has a healthcheck"
        assert check.get("test"), f"{name}: the healthcheck runs a test"
        assert check["test"][0] in ("CMD", "CMD-SHELL"), f"{name}: healthcheck test form"
        for key in ("interval", "timeout", "start_period"):
            if key in check:
                seconds(check[key])
        for target, condition in service.get("depends_on", {}).items():
            assert target in services, f"{name} depends on unknown {target}"
            assert condition["condition"] == "service_healthy", f"{name} -> {target}"
    assert set(services["voxdialog"]["depends_on"]) == {"postgres", "redis"}
    assert set(services["proxy"]["depends_on"]) == {"voxdialog"}


def test_only_the_proxy_is_published() -> None:
    services = compose()["services"]
    for name, service in services.items():
        if name != "proxy":
            assert "ports" not in service, f"{name} must be reached through the proxy only"
    published = {str(p).split(":")[0] for p in services["proxy"]["ports"]}
    assert {"80", "443"} <= published


def test_references_resolve(dockerfile: Dockerfile) -> None:
    """What the schema cannot check: built files, mounted files, named volumes and networks."""
    document = compose()
    build = document["services"]["voxdialog"]["build"]
    context = (DEPLOY / build["context"]).resolve()
    assert context == ROOT, "built from the repository root"
    assert (context / build["dockerfile"]).is_file()
    volumes = set(document.get("volumes", {}))
    networks = set(document.get("networks", {}))
    for name, service in document["services"].items():
        for mount in service.get("volumes", []):
            source = str(mount).split(":")[0]
            if source.startswith((".", "/")):
                assert (DEPLOY / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in volumes, f"{name} uses undeclared volume {source}"
        used = service.get("networks", [])
        for network in used if isinstance(used, list) else used.keys():
            assert network in networks, f"{name} uses undeclared network {network}"


def _addresses(service: dict[str, Any]) -> dict[str, str]:
    nets = service.get("networks", {})
    if isinstance(nets, list):
        return {}
    return {n: c["ipv4_address"] for n, c in nets.items() if c and "ipv4_address" in c}


def test_the_data_services_are_private() -> None:
    document = compose()
    private = [n for n, c in document["networks"].items() if c and c.get("internal")]
    assert private, "an internal network for PostgreSQL and Redis"
    for name in ("postgres", "redis"):
        assert set(document["services"][name]["networks"]) <= set(private), name


def test_voxdialog_settings(monkeypatch: pytest.MonkeyPatch, dockerfile: Dockerfile) -> None:
    """The server accepts its environment, and it names the right services and the proxy."""
    document = compose()
    services = document["services"]
    service = services["voxdialog"]
    env = {**dockerfile.final.env(), **{k: str(v) for k, v in service["environment"].items()}}
    settings = check_settings(
        {k: v for k, v in env.items() if k.startswith("VOXDIALOG_")}, monkeypatch
    )
    assert_only_settings_named(COMPOSE)

    database = urlsplit(settings.effective_database_url)
    assert database.scheme == "postgresql+asyncpg"
    assert database.hostname == "postgres"
    postgres = services["postgres"]["environment"]
    assert database.username == postgres["POSTGRES_USER"]
    assert database.password == postgres["POSTGRES_PASSWORD"]
    assert database.path == f"/{postgres['POSTGRES_DB']}"
    assert settings.redis_url is not None
    assert urlsplit(settings.redis_url).hostname == "redis"
    assert settings.auth.jwt_secret is not None
    assert settings.auth.allowed_origins == [f"https://{OPERATOR_ENV['PUBLIC_HOST']}"]

    # X-Forwarded-* believed from the proxy's fixed address, and from nothing else.
    proxy = _addresses(services["proxy"])
    assert proxy, "the proxy has a fixed address, so VoxDialog can name it"
    assert settings.trusted_proxies == list(proxy.values())
    ours = _addresses(service)
    for network, address in proxy.items():
        subnets = [c["subnet"] for c in document["networks"][network]["ipam"]["config"]]
        assert any(ipaddress.ip_address(address) in ipaddress.ip_network(s) for s in subnets)
        assert network in ours, "VoxDialog is on the proxy's network"

    # `docker compose stop` waits longer than the drain, so replies in progress finish.
    assert seconds(service["stop_grace_period"]) > settings.shutdown_drain_s

    # Its healthcheck asks readiness on the port the server listens on.
    probe = " ".join(service["healthcheck"]["test"])
    assert f"http://127.0.0.1:{settings.port}/readyz" in probe
    assert service["healthcheck"]["test"][1] == "python", "no curl in the image"


def test_the_proxy_forwards_to_voxdialog(dockerfile: Dockerfile) -> None:
    services = compose()["services"]
    proxy = services["proxy"]
    upstream = proxy["environment"]["UPSTREAM"]
    host, _, port = upstream.partition(":")
    assert host == "voxdialog"
    assert port == dockerfile.final.env().get("VOXDIALOG_PORT", "8000")
    mounts = {str(m).split(":")[1]: str(m).split(":")[0] for m in proxy["volumes"]}
    assert mounts["/etc/caddy/Caddyfile"] == "./Caddyfile"
