"""The Kubernetes manifests in k8s/ validate offline against the Kubernetes JSON schemas.

The schemas come bundled with `kubernetes-validate`, so nothing is fetched; strict mode
refuses unknown fields. Beyond the schema, the checks pin what DESIGN.md section 7 asks
of the deployment: non-root, read-only root, no capabilities, native gRPC probes on the
operations port, Prometheus metrics on their own port announced for scraping, and
selectors that actually match the pods.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml
from eucgate.config import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
# The oldest Kubernetes minor we support: native gRPC probes are GA from 1.27.
K8S_VERSION = "1.30"
OPS_PORT = 9090
METRICS_PORT = 9091
API_PORT = 50051

Manifest = dict[str, Any]


def _manifests() -> dict[str, Manifest]:
    """Every resource in k8s/, keyed "Kind/name"."""
    found: dict[str, Manifest] = {}
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is None:
                continue
            key = f"{doc['kind']}/{doc['metadata']['name']}"
            assert key not in found, f"{key} defined twice"
            found[key] = doc
    return found


def _validate(doc: Manifest) -> None:
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


MANIFESTS = _manifests()


def _get(kind: str, name: str = "eucgate") -> Manifest:
    return copy.deepcopy(MANIFESTS[f"{kind}/{name}"])


def _container(deployment: Manifest) -> Manifest:
    containers: list[Manifest] = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def test_expected_resources_present() -> None:
    assert set(MANIFESTS) >= {
        "Deployment/eucgate",
        "Service/eucgate",
        "ConfigMap/eucgate-config",
        "PodDisruptionBudget/eucgate",
    }


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files


@pytest.mark.parametrize("key", sorted(MANIFESTS))
def test_manifest_matches_kubernetes_schema(key: str) -> None:
    _validate(MANIFESTS[key])


def _break_replicas(d: Manifest) -> None:
    d["spec"]["replicas"] = "two"


def _break_unknown_field(d: Manifest) -> None:
    d["spec"]["template"]["spec"]["containers"][0]["readOnlyRootFS"] = True


def _break_probe_port(d: Manifest) -> None:
    d["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["grpc"] = {"port": "ops"}


def _break_missing_selector(d: Manifest) -> None:
    del d["spec"]["selector"]


def _break_capabilities(d: Manifest) -> None:
    d["spec"]["template"]["spec"]["containers"][0]["securityContext"]["capabilities"] = "ALL"


@pytest.mark.parametrize(
    "breakage",
    [
        _break_replicas,
        _break_unknown_field,
        _break_probe_port,
        _break_missing_selector,
        _break_capabilities,
    ],
)
def test_broken_copy_is_refused(breakage: Any) -> None:
    """The validator really checks: a deliberately broken copy of the Deployment fails."""
    broken = _get("Deployment")
    breakage(broken)
    with pytest.raises(kubernetes_validate.ValidationError):
        _validate(broken)


def test_broken_service_is_refused() -> None:
    broken = _get("Service")
    broken["spec"]["ports"][0]["port"] = "grpc"
    with pytest.raises(kubernetes_validate.ValidationError):
        _validate(broken)


def test_deployment_is_hardened() -> None:
    deployment = _get("Deployment")
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["automountServiceAccountToken"] is False
    container = _container(deployment)
    ctx = container["securityContext"]
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"]["drop"] == ["ALL"]
    assert "add" not in ctx["capabilities"]
    for kind in ("requests", "limits"):
        assert set(container["resources"][kind]) == {"cpu", "memory"}
    assert not container["image"].endswith(":latest")


def test_probes_are_native_grpc_on_the_ops_port() -> None:
    container = _container(_get("Deployment"))
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["grpc"]["port"] == OPS_PORT
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"grpc": API_PORT, "ops": OPS_PORT, "metrics": METRICS_PORT}


def test_metrics_port_is_configured_and_announced_for_scraping() -> None:
    deployment = _get("Deployment")
    data = _get("ConfigMap", "eucgate-config")["data"]
    assert data["EUCGATE_METRICS_LISTEN"].endswith(f":{METRICS_PORT}")
    assert load_settings(metrics_listen=data["EUCGATE_METRICS_LISTEN"]).metrics_listen
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(METRICS_PORT)
    assert annotations["prometheus.io/path"] == "/metrics"
    # Only the metrics port is scraped, never the gRPC ones.
    assert METRICS_PORT not in (API_PORT, OPS_PORT)


def test_writable_paths_are_volumes() -> None:
    """With a read-only root, /tmp and the data dir must be volumes; keys come from a Secret."""
    deployment = _get("Deployment")
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    mounts = {m["mountPath"]: m for m in _container(deployment)["volumeMounts"]}
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]]
    assert mounts["/var/lib/eucgate"]["name"] in volumes
    secret_mounts = [m for m in mounts.values() if "secret" in volumes[m["name"]]]
    assert secret_mounts, "keys must come from a Secret"
    assert all(m.get("readOnly") is True for m in secret_mounts)


def test_config_map_feeds_the_container_and_names_mounted_paths() -> None:
    deployment = _get("Deployment")
    config = _get("ConfigMap", "eucgate-config")
    refs = [e["configMapRef"]["name"] for e in _container(deployment)["envFrom"]]
    assert refs == ["eucgate-config"]
    data: dict[str, str] = config["data"]
    fields = set(Settings.model_fields)
    for key in data:
        assert re.fullmatch(r"EUCGATE_[A-Z0-9_]+", key), key
        assert key.removeprefix("EUCGATE_").lower() in fields, f"{key}: no such setting"
    assert data["EUCGATE_OPS_LISTEN"].endswith(f":{OPS_PORT}")
    assert data["EUCGATE_LISTEN"].endswith(f":{API_PORT}")
    mount_paths = [m["mountPath"] for m in _container(deployment)["volumeMounts"]]
    for key in ("EUCGATE_BUNDLE_PATH", "EUCGATE_SERVICE_KEY_PATH"):
        assert any(data[key].startswith(p + "/") for p in mount_paths), key


def test_selectors_match_the_pods() -> None:
    deployment = _get("Deployment")
    pod_labels: dict[str, str] = deployment["spec"]["template"]["metadata"]["labels"]
    selectors = [
        deployment["spec"]["selector"]["matchLabels"],
        _get("Service")["spec"]["selector"],
        _get("PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
    ]
    for selector in selectors:
        assert selector.items() <= pod_labels.items()


def test_service_targets_the_api_port() -> None:
    service = _get("Service")
    assert service["spec"]["type"] == "ClusterIP"
    container_ports = {p["name"] for p in _container(_get("Deployment"))["ports"]}
    [port] = service["spec"]["ports"]
    assert port["port"] == API_PORT
    assert port["targetPort"] in container_ports


def test_disruption_budget_keeps_one_pod() -> None:
    pdb = _get("PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    assert _get("Deployment")["spec"]["replicas"] > pdb["spec"]["minAvailable"]


def test_replicas_share_a_postgresql_store_named_by_a_secret() -> None:
    """Several replicas need the shared store; its URL (with a password) is a Secret."""
    deployment = _get("Deployment")
    assert deployment["spec"]["replicas"] > 1
    env = {e["name"]: e for e in _container(deployment).get("env", [])}
    ref = env["EUCGATE_STORE"]["valueFrom"]["secretKeyRef"]
    assert (ref["name"], ref["key"]) == ("eucgate-store", "url")
    assert "EUCGATE_STORE" not in _get("ConfigMap", "eucgate-config")["data"]
