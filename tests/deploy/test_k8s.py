"""deploy/k8s: every overlay renders (tests/support/kustomize.py), every object validates against
the Kubernetes schema, the PrometheusRule is what ops/vexil-alerts.yml says, and the rendered
objects agree with vexil's own settings: ports, probes, shutdown grace, security."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from scripts import prometheusrule
from tests.support.kustomize import render
from vexil import config

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("dev", "prod")
KUBERNETES_VERSIONS = ("1.29.0", "1.37.0")
"""The oldest version these manifests promise to apply to (an EKS release in extended support
when written), and the newest schema kubernetes-validate ships."""
CUSTOM_KINDS = {"PrometheusRule", "ServiceMonitor"}
"""Not in the Kubernetes schema (the Prometheus Operator's CRDs): checked by the tests below."""


def objects(overlay: str) -> dict[tuple[str, str], dict[str, Any]]:
    rendered = render(K8S / "overlays" / overlay)
    by_key = {(o["kind"], o["metadata"]["name"]): o for o in rendered}
    assert len(by_key) == len(rendered), "two objects with one kind and name"
    return by_key


def only(overlay: str, kind: str) -> dict[str, Any]:
    found = [o for (k, _), o in objects(overlay).items() if k == kind]
    assert len(found) == 1, f"{overlay}: {len(found)} {kind} objects"
    return found[0]


def container(overlay: str) -> dict[str, Any]:
    spec = only(overlay, "Deployment")["spec"]["template"]["spec"]
    assert len(spec["containers"]) == 1
    return spec["containers"][0]


def image_environment() -> dict[str, str]:
    """VEXIL_* variables the Containerfile's ENV sets (the image's defaults)."""
    text = (ROOT / "Containerfile").read_text().replace("\\\n", " ")
    found: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            found.update(re.findall(r"(VEXIL_[A-Z_]+)=(\S+)", line))
    return found


def settings(overlay: str) -> config.Settings:
    """The settings a pod of this overlay runs with: vexil's defaults, the image's ENV, the
    ConfigMap and the container's env, read by vexil's own loader (TLS and JWT files exist only
    in the pod, so their existence is not checked here)."""
    environ = dict(image_environment())
    c = container(overlay)
    for source in c.get("envFrom", []):
        environ.update(objects(overlay)[("ConfigMap", source["configMapRef"]["name"])]["data"])
    environ.update({e["name"]: e["value"] for e in c.get("env", []) if "value" in e})
    unknown = [v for v in environ if v.startswith("VEXIL_") and v[6:].lower() not in config.FIELDS]
    assert not unknown, f"{overlay}: variables vexil does not read (a typo?): {unknown}"
    values = {name[6:].lower(): value for name, value in environ.items() if name.startswith("VEXIL_")}
    fields = {name: field for name, field in config.FIELDS.items() if name in values}
    coerced = {name: config._coerce(name, values[name], f"VEXIL_{name.upper()}") for name in fields}
    return config.Settings(**coerced, sources={n: f"VEXIL_{n.upper()}" for n in coerced})


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_validates(overlay: str, version: str) -> None:
    rendered = render(K8S / "overlays" / overlay)
    kinds = {o["kind"] for o in rendered}
    assert {
        "Deployment",
        "Service",
        "ConfigMap",
        "ServiceAccount",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "NetworkPolicy",
        "PrometheusRule",
        "ServiceMonitor",
    } <= kinds
    for obj in rendered:
        if obj["kind"] in CUSTOM_KINDS:
            continue
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{overlay} {obj['kind']}/{obj['metadata']['name']} (Kubernetes {version}): {exc}")


def test_a_typo_fails_validation() -> None:
    """The validator is strict: an unknown field (what a typo makes) is an error, not ignored."""
    deployment = only("prod", "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    pod["containers"][0]["securityContext"]["readOnlyRootFileSystem"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[-1], strict=True)


def test_the_prometheus_rule_is_generated_from_the_alert_rules() -> None:
    checked_in = (K8S / "base" / "prometheusrule.yaml").read_text()
    assert checked_in == prometheusrule.render(), "stale: run python scripts/prometheusrule.py"
    rule = yaml.safe_load(checked_in)
    source = yaml.safe_load((ROOT / "ops" / "vexil-alerts.yml").read_text())
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["kind"] == "PrometheusRule"
    assert rule["spec"]["groups"] == source["groups"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_scrape_job_is_the_one_the_rules_select(overlay: str) -> None:
    """The rules' `up{job="vexil"}` (VexilDown) only fires if the scrape job has that name."""
    rules = (ROOT / "ops" / "vexil-alerts.yml").read_text()
    jobs = set(re.findall(r'job="([^"]+)"', rules))
    assert jobs == {"vexil"}, jobs
    monitor = only(overlay, "ServiceMonitor")["spec"]
    selected = [
        o
        for (k, _), o in objects(overlay).items()
        if k == "Service" and monitor["selector"]["matchLabels"].items() <= o["metadata"]["labels"].items()
    ]
    scraped = [svc for svc in selected if any(p["name"] == "http" for p in svc["spec"]["ports"])]
    assert [svc["metadata"]["name"] for svc in scraped] == ["vexil-http"]
    assert scraped[0]["metadata"]["labels"][monitor["jobLabel"]] == "vexil"
    (endpoint,) = monitor["endpoints"]
    s = settings(overlay)
    assert (endpoint["port"], endpoint["path"]) == ("http", "/metrics")
    assert endpoint["scheme"] == ("https" if s.tls_cert else "http")
    # The bearer key goes to verified pods only.
    assert "insecureSkipVerify" not in endpoint.get("tlsConfig", {})


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_overlay_renders_its_namespace_and_image(overlay: str) -> None:
    expected_namespace = {"dev": "vexil-dev", "prod": "vexil"}[overlay]
    for obj in objects(overlay).values():
        assert obj["metadata"].get("namespace") == expected_namespace, obj["metadata"]
    assert container(overlay)["image"] == "registry.example.com/vexil:0.1.0"
    assert only(overlay, "ConfigMap")["data"]["VEXIL_ENV"] == overlay


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ports_match_the_settings(overlay: str) -> None:
    s = settings(overlay)
    assert not config.is_loopback(s.host), f"pods must listen beyond loopback, not {s.host}"
    ports = {p["name"]: p["containerPort"] for p in container(overlay)["ports"]}
    assert ports == {"grpc": s.port, "http": s.http_port}
    services = {o["metadata"]["name"]: o for (k, _), o in objects(overlay).items() if k == "Service"}
    assert {
        name: [(p["port"], p["targetPort"], p.get("appProtocol")) for p in svc["spec"]["ports"]]
        for name, svc in services.items()
    } == {"vexil-grpc": [(50051, "grpc", "grpc")], "vexil-http": [(3001, "http", "https")]}
    policy = only(overlay, "NetworkPolicy")["spec"]
    assert {p["port"] for rule in policy["ingress"] for p in rule["ports"]} == {"grpc", "http"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_follow_readiness_and_tls(overlay: str) -> None:
    s = settings(overlay)
    c = container(overlay)
    scheme = "HTTPS" if s.tls_cert else "HTTP"
    probes = {name: c[name]["httpGet"] for name in ("startupProbe", "readinessProbe", "livenessProbe")}
    assert {name: (p["path"], p["port"], p["scheme"]) for name, p in probes.items()} == {
        "startupProbe": ("/readyz", "http", scheme),
        "readinessProbe": ("/readyz", "http", scheme),
        "livenessProbe": ("/healthz", "http", scheme),
    }
    # Readiness must notice a drain well inside it, or endpoints still route to a stopping pod.
    readiness = c["readinessProbe"]
    assert readiness["periodSeconds"] * readiness["failureThreshold"] < s.drain_seconds


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_termination_grace_outlasts_drain_and_grace(overlay: str) -> None:
    s = settings(overlay)
    pod = only(overlay, "Deployment")["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] > s.drain_seconds + s.shutdown_grace
    assert (s.drain_seconds, s.shutdown_grace) == (5.0, 10.0)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_pod_serves_securely_and_non_root(overlay: str) -> None:
    s = settings(overlay)
    config.require_secure(s)  # vexil's own start-up rule: TLS and authentication outside local
    assert s.store == "dynamodb"
    pod = only(overlay, "Deployment")["spec"]["template"]["spec"]
    c = container(overlay)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
    # Every file a setting names lies on a read-only mount of a Secret that the pod references.
    secrets = {v["name"]: v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    for name in ("tls_cert", "tls_key", "jwt_public_key", "replica_secret_file", "replica_ca_cert"):
        path = Path(getattr(s, name))
        mount = mounts.get(str(path.parent))
        assert mount is not None, f"{name} {path}: no volume mounted at {path.parent}"
        assert mount["readOnly"] is True and mount["name"] in secrets
    assert set(secrets.values()) == {"vexil-tls", "vexil-jwt", "vexil-replica"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_availability_objects_select_the_pods(overlay: str) -> None:
    deployment = only(overlay, "Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    selected = deployment["spec"]["selector"]["matchLabels"]
    assert selected.items() <= labels.items()
    for kind in ("PodDisruptionBudget", "NetworkPolicy"):
        selector = only(overlay, kind)["spec"].get("selector") or only(overlay, kind)["spec"]["podSelector"]
        assert selector["matchLabels"] == selected, kind
    for svc in (o for (k, _), o in objects(overlay).items() if k == "Service"):
        assert svc["spec"]["selector"] == selected
    hpa = only(overlay, "HorizontalPodAutoscaler")["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "vexil"}
    assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
    # A voluntary disruption (node drain) never takes more than one pod, and production keeps a
    # pod in each of three zones at least.
    assert only(overlay, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    assert hpa["minReplicas"] >= {"dev": 1, "prod": 3}[overlay]
    spread = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert {t["topologyKey"] for t in spread} == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
    for constraint in spread:
        assert constraint["labelSelector"]["matchLabels"] == selected


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_service_account_carries_an_iam_role(overlay: str) -> None:
    account = only(overlay, "ServiceAccount")
    role = account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
    assert re.fullmatch(r"arn:aws:iam::\d{12}:role/vexil-" + overlay, role), role
    assert only(overlay, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "vexil"
