"""deploy/k8s: every manifest valid against the Kubernetes schemas, and wired together.

The schemas come with kubernetes-validate (offline), used in strict mode, so a misspelt field is
an error as it is for ``kubectl apply --validate=strict``; each manifest is checked against the
oldest Kubernetes release these files support and the newest one the package knows.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.conftest import (
    K8S,
    METRICS_SOURCE,
    ROOT,
    Dockerfile,
    assert_only_settings_named,
    check_settings,
    load_yaml_documents,
    module,
)
from voxdialog.settings import Settings

#: The oldest Kubernetes release the manifests are checked against (every field they use is
#: older; an exec preStop rather than the newer ``sleep`` action keeps it so).
OLDEST = "1.30.0"
MANIFESTS = sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
HEALTH_ROUTES = ROOT / "src" / "voxdialog" / "api" / "routes" / "health.py"


@cache
def documents() -> dict[str, dict[str, Any]]:
    """Every manifest by ``Kind/name``."""
    found: dict[str, dict[str, Any]] = {}
    for path in MANIFESTS:
        for document in load_yaml_documents(path):
            key = f"{document['kind']}/{document['metadata']['name']}"
            assert key not in found, f"{key} is declared twice"
            found[key] = document
    return found


def one(kind: str) -> dict[str, Any]:
    [document] = [d for k, d in documents().items() if k.startswith(f"{kind}/")]
    return document


def pod_spec() -> dict[str, Any]:
    spec: dict[str, Any] = one("Deployment")["spec"]["template"]["spec"]
    return spec


def container() -> dict[str, Any]:
    [server] = [c for c in pod_spec()["containers"] if c["name"] == "voxdialog"]
    return server


def kubernetes_versions() -> list[str]:
    validate = module("kubernetes_validate.utils")
    return [OLDEST, str(validate.latest_version())]


def validate(document: dict[str, Any], version: str) -> None:
    """Raise kubernetes_validate's ValidationError when the document breaks the schema."""
    utils = module("kubernetes_validate.utils")
    utils.validate(document, version, strict=True)


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_valid_against_the_kubernetes_schemas(path: Path) -> None:
    utils = module("kubernetes_validate.utils")
    problems = []
    for version in kubernetes_versions():
        for document in load_yaml_documents(path):
            try:
                validate(document, version)
            except utils.ValidationError as e:
                where = ".".join(str(p) for p in e.path)
                problems.append(f"{path.name} (Kubernetes {version}): {where}: {e.message}")
    assert not problems, "\n".join(problems)


def test_the_schema_check_bites() -> None:
    """A misspelt field and a wrong type are caught (so the test above can fail)."""
    utils = module("kubernetes_validate.utils")
    deployment = one("Deployment")
    misspelt = {**container(), "readinesProbe": container()["readinessProbe"]}
    broken = {
        **deployment,
        "spec": {
            **deployment["spec"],
            "template": {
                **deployment["spec"]["template"],
                "spec": {**pod_spec(), "containers": [misspelt]},
            },
        },
    }
    with pytest.raises(utils.ValidationError, match="readinesProbe"):
        validate(broken, OLDEST)
    with pytest.raises(utils.ValidationError):
        validate({**deployment, "spec": {**deployment["spec"], "replicas": "two"}}, OLDEST)


def test_kustomization_applies_every_manifest_but_the_examples() -> None:
    [kustomization] = load_yaml_documents(K8S / "kustomization.yaml")
    listed = set(kustomization["resources"])
    for name in listed:
        assert (K8S / name).is_file(), f"kustomization.yaml lists missing {name}"
    expected = {p.name for p in MANIFESTS if ".example." not in p.name}
    assert listed == expected, "examples (Secret, Ingress) are applied by hand, the rest by -k"
    assert kustomization["namespace"] == one("Namespace")["metadata"]["name"]
    assert {i["name"] for i in kustomization["images"]} == {container()["image"]}


def _health_paths() -> set[str]:
    return set(re.findall(r'@router\.get\("(/[a-z]+z)"', HEALTH_ROUTES.read_text("utf-8")))


def _settings(monkeypatch: pytest.MonkeyPatch, dockerfile: Dockerfile) -> Settings:
    """The server's settings in the pod: the image's ENV, then the ConfigMap and the Secret."""
    env = {k: v for k, v in dockerfile.final.env().items() if k.startswith("VOXDIALOG_")}
    env.update(one("ConfigMap")["data"])
    env.update(one("Secret")["stringData"])
    return check_settings(env, monkeypatch)


def test_configmap_and_secret_hold_only_settings(
    monkeypatch: pytest.MonkeyPatch, dockerfile: Dockerfile
) -> None:
    settings = _settings(monkeypatch, dockerfile)
    assert settings.database_url is not None
    assert settings.database_url.startswith("postgresql+asyncpg://"), "shared by the replicas"
    assert settings.redis_url is not None, "rate limits and tickets shared by the replicas"
    assert settings.auth.jwt_secret is not None, "one signing key for every replica"
    assert settings.trusted_proxies, "the ingress is trusted for X-Forwarded-*"
    assert settings.metrics_token is not None, "Prometheus can scrape /metrics"
    for path in [*MANIFESTS, K8S / "kustomization.yaml"]:
        assert_only_settings_named(path)
    refs = {
        kind: ref["name"]
        for source in container()["envFrom"]
        for kind, ref in source.items()
        if kind in ("configMapRef", "secretRef")
    }
    assert refs == {
        "configMapRef": one("ConfigMap")["metadata"]["name"],
        "secretRef": one("Secret")["metadata"]["name"],
    }


def test_probes(dockerfile: Dockerfile) -> None:
    server = container()
    [port] = server["ports"]
    assert str(port["containerPort"]) == dockerfile.final.env()["VOXDIALOG_PORT"]
    routes = _health_paths()
    assert {"/healthz", "/readyz"} <= routes, routes
    probes = {
        name: server[name]["httpGet"]
        for name in ("readinessProbe", "livenessProbe", "startupProbe")
        if name in server
    }
    assert probes["readinessProbe"]["path"] == "/readyz", "out of the endpoints while not ready"
    # A database outage makes /readyz fail: restarting every pod would not help.
    assert probes["livenessProbe"]["path"] == "/healthz"
    for name, probe in probes.items():
        assert probe["path"] in routes, f"{name}: {probe['path']} is no route of the server"
        assert probe["port"] == port["name"], f"{name} asks the server's port"


def test_shutdown_drains_before_the_kill(
    monkeypatch: pytest.MonkeyPatch, dockerfile: Dockerfile
) -> None:
    """preStop pause, then SIGTERM and the drain, all inside the grace period."""
    settings = _settings(monkeypatch, dockerfile)
    pre_stop = container()["lifecycle"]["preStop"]
    if "sleep" in pre_stop:
        pause = float(pre_stop["sleep"]["seconds"])
    else:
        command = pre_stop["exec"]["command"]
        assert command[0] == "sleep", command
        pause = float(command[1])
    assert pause > 0
    grace = pod_spec()["terminationGracePeriodSeconds"]
    assert grace > pause + settings.shutdown_drain_s, (grace, pause, settings.shutdown_drain_s)
    assert dockerfile.final.all("ENTRYPOINT")[-1].exec_form() == ["voxdialog"]
    assert container()["args"] == ["serve"]
    assert "command" not in container(), "the image's entrypoint (PID 1 gets the SIGTERM)"


def test_runs_as_the_images_non_root_user(dockerfile: Dockerfile) -> None:
    uid, _, gid = dockerfile.final.all("USER")[-1].args.partition(":")
    assert uid.isdigit(), "the image's USER is numeric"
    assert gid.isdigit(), "the image's USER names a numeric group"
    pod = pod_spec()["securityContext"]
    assert pod["runAsNonRoot"] is True
    assert pod["runAsUser"] == int(uid)
    assert pod["runAsGroup"] == int(gid)
    assert pod["seccompProfile"]["type"] == "RuntimeDefault"
    server = container()["securityContext"]
    assert server["allowPrivilegeEscalation"] is False
    assert server["capabilities"]["drop"] == ["ALL"]
    assert server["readOnlyRootFilesystem"] is True
    mounts = {m["mountPath"] for m in container()["volumeMounts"]}
    # The only places written to: the data dir and the upload spool.
    assert {dockerfile.final.env()["VOXDIALOG_DATA_DIR"], "/tmp"} <= mounts
    names = {v["name"] for v in pod_spec()["volumes"]}
    assert {m["name"] for m in container()["volumeMounts"]} <= names
    assert one("Namespace")["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] in (
        "restricted",
        "baseline",
    )
    assert pod_spec()["automountServiceAccountToken"] is False


def _quantity(value: str | int) -> float:
    text = str(value)
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
    for suffix, factor in units.items():
        if text.endswith(suffix):
            return float(text.removesuffix(suffix)) * factor
    return float(text)


def test_resources() -> None:
    resources = container()["resources"]
    for kind in ("cpu", "memory"):
        request = _quantity(resources["requests"][kind])
        limit = _quantity(resources["limits"][kind])
        assert 0 < request <= limit, kind


def test_service_keeps_a_client_on_one_pod() -> None:
    service = one("Service")
    labels = one("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["sessionAffinity"] == "ClientIP"
    timeout = service["spec"]["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"]
    assert timeout >= Settings.model_fields["limits"].default.max_session_s
    [port] = service["spec"]["ports"]
    assert port["targetPort"] == container()["ports"][0]["name"]
    ingress = one("Ingress")
    [rule] = ingress["spec"]["rules"]
    [path] = rule["http"]["paths"]
    backend = path["backend"]["service"]
    assert backend["name"] == service["metadata"]["name"]
    assert backend["port"]["name"] == port["name"]
    assert ingress["spec"]["tls"], "TLS ends at the ingress"


def test_disruption_budget_covers_the_pods() -> None:
    pdb = one("PodDisruptionBudget")
    labels = one("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert ("maxUnavailable" in pdb["spec"]) != ("minAvailable" in pdb["spec"])
    # A voluntary disruption is possible (a node can drain) while one pod still serves.
    assert pdb["spec"].get("maxUnavailable", 1) == 1
    assert one("HorizontalPodAutoscaler")["spec"]["minReplicas"] >= 2


def active_sessions_gauge() -> str:
    """The name ``ACTIVE_SESSIONS = Gauge("...")`` exports, read from the server's source."""
    tree = ast.parse(METRICS_SOURCE.read_text(encoding="utf-8"))
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and [getattr(t, "id", None) for t in node.targets] == ["ACTIVE_SESSIONS"]
            and isinstance(node.value, ast.Call)
            and getattr(node.value.func, "id", None) == "Gauge"
        ):
            name = node.value.args[0]
            assert isinstance(name, ast.Constant)
            return str(name.value)
    raise AssertionError("observability/metrics.py no longer defines the ACTIVE_SESSIONS gauge")


def test_autoscaler_scales_on_the_open_sessions_gauge() -> None:
    hpa = one("HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    deployment = one("Deployment")
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    pods = [m["pods"] for m in hpa["spec"]["metrics"] if m["type"] == "Pods"]
    assert [p["metric"]["name"] for p in pods] == [active_sessions_gauge()]
    assert pods[0]["target"]["type"] == "AverageValue"
    assert hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]
    # The gauge is kept up to date by the server, not just declared.
    users = [
        p
        for p in (ROOT / "src" / "voxdialog").rglob("*.py")
        if re.search(r"\bACTIVE_SESSIONS\.(inc|dec|set)\(", p.read_text(encoding="utf-8"))
    ]
    assert users, "nothing updates the ACTIVE_SESSIONS gauge"
