"""The Kubernetes manifests in k8s/ validate offline against the Kubernetes JSON schemas.

The schemas come bundled with `kubernetes-validate`, so nothing is fetched; strict mode
refuses unknown fields. Beyond the schema, the checks pin what the deployment must be:
non-root, read-only root, no capabilities, native gRPC probes on the operations port,
Prometheus metrics on their own port announced for scraping, selectors that actually
match the pods, an API port that is mutual TLS only (certificate and key from a
read-only Secret, access file and client CAs from a read-only ConfigMap, never
`insecure`), and a Service that exposes the API port alone. Each of those checks is
also run on deliberately broken copies that the schema accepts, to show it can fail.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml
from eucgate.config import Settings, load_settings
from eucgate.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
# The oldest Kubernetes minor we support: native gRPC probes are GA from 1.27.
K8S_VERSION = "1.30"
OPS_PORT = 9090
METRICS_PORT = 9091
API_PORT = 50051
TLS_SECRET = "eucgate-tls"
ACCESS_CONFIG_MAP = "eucgate-access"

Manifest = dict[str, Any]
Manifests = dict[str, Manifest]


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


def _settings_from_config_map(data: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The settings a pod gets: the ConfigMap as its environment, plus the store Secret."""
    for name in list(os.environ):
        if name.upper().startswith("EUCGATE_"):
            monkeypatch.delenv(name)
    for name, value in data.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("EUCGATE_STORE", "postgresql://eucgate:secret@db:5432/eucgate")
    return load_settings()


def test_config_map_is_a_valid_secure_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server's own settings model accepts the ConfigMap, and not as `insecure`."""
    data: dict[str, str] = _get("ConfigMap", "eucgate-config")["data"]
    settings = _settings_from_config_map(data, monkeypatch)
    assert settings.insecure is False
    assert settings.tls_cert_path is not None
    assert settings.tls_key_path is not None
    assert settings.access_path is not None
    assert settings.ops_listen.endswith(f":{OPS_PORT}")
    assert settings.metrics_listen.endswith(f":{METRICS_PORT}")


@pytest.mark.parametrize(
    ("drop", "add"),
    [
        ("EUCGATE_ACCESS_PATH", {}),
        ("EUCGATE_TLS_KEY_PATH", {}),
        (None, {"EUCGATE_INSECURE": "true"}),
    ],
)
def test_config_map_without_mtls_is_refused_by_the_server(
    drop: str | None, add: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data: dict[str, str] = _get("ConfigMap", "eucgate-config")["data"]
    if drop is not None:
        del data[drop]
    data.update(add)
    with pytest.raises(ConfigError):
        _settings_from_config_map(data, monkeypatch)


def test_metrics_port_is_configured_and_announced_for_scraping() -> None:
    deployment = _get("Deployment")
    data = _get("ConfigMap", "eucgate-config")["data"]
    assert data["EUCGATE_METRICS_LISTEN"].endswith(f":{METRICS_PORT}")
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


# --- mutual TLS on the API port: what is mounted, from where, and never `insecure` ---


def _mounted_source(manifests: Manifests, kind: str, name: str) -> tuple[Manifest, Manifest]:
    """The one volume of the Deployment that holds Secret/ConfigMap `name`, and its mount."""
    pod = manifests["Deployment/eucgate"]["spec"]["template"]["spec"]
    field, ref = ("secret", "secretName") if kind == "Secret" else ("configMap", "name")
    volumes = [v for v in pod["volumes"] if v.get(field, {}).get(ref) == name]
    assert len(volumes) == 1, f"{kind} {name} must be one volume"
    [volume] = volumes
    container = _container(manifests["Deployment/eucgate"])
    mounts = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
    assert len(mounts) == 1, f"{kind} {name} must be mounted once"
    [mount] = mounts
    assert mount.get("readOnly") is True, f"{kind} {name} must be mounted read-only"
    # A subPath mount is one file frozen at start, and changes the paths below.
    assert "subPath" not in mount
    assert "subPathExpr" not in mount
    # A missing Secret or ConfigMap must stop the pod, not start it without TLS material.
    assert volume[field].get("optional") is not True, f"{kind} {name} must not be optional"
    return volume, mount


def _file_in(mount: Manifest, path: str) -> str:
    """The key a configured path reads from a mounted volume (its file name)."""
    configured = PurePosixPath(path)
    assert configured.parent == PurePosixPath(mount["mountPath"]), path
    return configured.name


def _check_tls_and_access_are_mounted(manifests: Manifests, kustomization: str) -> None:
    data: dict[str, str] = manifests["ConfigMap/eucgate-config"]["data"]
    volume, mount = _mounted_source(manifests, "Secret", TLS_SECRET)
    secret = volume["secret"]
    assert secret.get("defaultMode") == 0o400
    # A kubernetes.io/tls Secret holds tls.crt and tls.key; the paths must read those.
    projected = {i["path"]: i for i in secret.get("items", [])}
    for setting, key in (("EUCGATE_TLS_CERT_PATH", "tls.crt"), ("EUCGATE_TLS_KEY_PATH", "tls.key")):
        name = _file_in(mount, data[setting])
        if projected:
            assert name in projected, setting
            assert projected[name]["key"] == key, setting
            assert projected[name].get("mode", 0o400) == 0o400, setting
        else:
            assert name == key, setting
    assert f"kubectl create secret tls {TLS_SECRET} " in kustomization
    # The access file and the client CAs it names, relative to itself, in one directory.
    _, access_mount = _mounted_source(manifests, "ConfigMap", ACCESS_CONFIG_MAP)
    access_file = _file_in(access_mount, data["EUCGATE_ACCESS_PATH"])
    assert re.search(
        rf"kubectl create configmap {ACCESS_CONFIG_MAP} --from-file={re.escape(access_file)}=",
        kustomization,
    ), "the access ConfigMap's creation must give the file the configured name"


def _strings(node: Any) -> Iterator[str]:
    """Every key and string value in a manifest, however deeply nested."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)
    elif isinstance(node, str):
        yield node


def _check_never_insecure(manifests: Manifests) -> None:
    """No manifest sets `insecure` in any spelling: env (names are case-insensitive), flag,
    or a config file carried in a ConfigMap."""
    for key, doc in manifests.items():
        for text in _strings(doc):
            assert "insecure" not in text.lower(), f"{key}: {text!r}"


def _target_port(deployment: Manifest, target: int | str) -> int:
    ports = {p["name"]: p["containerPort"] for p in _container(deployment)["ports"]}
    return ports[target] if isinstance(target, str) else target


def _check_only_the_api_port_is_exposed(manifests: Manifests) -> None:
    """The Service forwards the API port alone; the pods have no other way in (host ports
    and the host network bypass NetworkPolicy)."""
    deployment = manifests["Deployment/eucgate"]
    pod = deployment["spec"]["template"]["spec"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert pod.get("hostNetwork") is not True
    assert all("hostPort" not in p for p in _container(deployment)["ports"])
    services = [
        doc
        for doc in manifests.values()
        if doc["kind"] == "Service" and doc["spec"]["selector"].items() <= pod_labels.items()
    ]
    assert services
    for service in services:
        assert service["spec"].get("type", "ClusterIP") == "ClusterIP"
        for port in service["spec"]["ports"]:
            target = _target_port(deployment, port.get("targetPort", port["port"]))
            assert (port["port"], target) == (API_PORT, API_PORT), port


def test_tls_secret_and_access_config_map_are_mounted_read_only() -> None:
    _check_tls_and_access_are_mounted(MANIFESTS, (K8S / "kustomization.yaml").read_text())


def test_no_manifest_makes_the_server_insecure() -> None:
    _check_never_insecure(MANIFESTS)


def test_service_exposes_the_api_port_alone() -> None:
    _check_only_the_api_port_is_exposed(MANIFESTS)


def _pod(m: Manifests) -> Manifest:
    spec: Manifest = m["Deployment/eucgate"]["spec"]["template"]["spec"]
    return spec


def _volume(m: Manifests, name: str) -> Manifest:
    volumes: list[Manifest] = [v for v in _pod(m)["volumes"] if v["name"] == name]
    [volume] = volumes
    return volume


def _mount(m: Manifests, name: str) -> Manifest:
    mounts: list[Manifest] = _pod(m)["containers"][0]["volumeMounts"]
    [mount] = [v for v in mounts if v["name"] == name]
    return mount


def _env(m: Manifests) -> list[Manifest]:
    env: list[Manifest] = _pod(m)["containers"][0]["env"]
    return env


def _config(m: Manifests) -> dict[str, str]:
    data: dict[str, str] = m["ConfigMap/eucgate-config"]["data"]
    return data


def _unmount(m: Manifests, name: str) -> None:
    _pod(m)["containers"][0]["volumeMounts"].remove(_mount(m, name))


# Each breakage leaves manifests the Kubernetes schema accepts; only our checks refuse them.
MOUNT_BREAKAGES: dict[str, Callable[[Manifests], object]] = {
    "tls not mounted": lambda m: _unmount(m, "tls"),
    "tls writable": lambda m: _mount(m, "tls").update(readOnly=False),
    "tls readable by all": lambda m: _volume(m, "tls")["secret"].update(defaultMode=0o444),
    "tls item readable by all": lambda m: _volume(m, "tls")["secret"]["items"][1].update(
        mode=0o644
    ),
    "tls optional": lambda m: _volume(m, "tls")["secret"].update(optional=True),
    "tls from another secret": lambda m: _volume(m, "tls")["secret"].update(
        secretName="eucgate-keys"
    ),
    "cert path outside the mount": lambda m: _config(m).update(
        EUCGATE_TLS_CERT_PATH="/etc/eucgate/keys/tls.crt"
    ),
    "key path names no projected key": lambda m: _config(m).update(
        EUCGATE_TLS_KEY_PATH="/etc/eucgate/tls/server.key"
    ),
    "cert and key swapped": lambda m: _config(m).update(
        EUCGATE_TLS_CERT_PATH="/etc/eucgate/tls/tls.key",
        EUCGATE_TLS_KEY_PATH="/etc/eucgate/tls/tls.crt",
    ),
    "access not mounted": lambda m: _unmount(m, "access"),
    "access writable": lambda m: _mount(m, "access").pop("readOnly"),
    "access by subPath": lambda m: _mount(m, "access").update(subPath="access.yaml"),
    "access path not the documented key": lambda m: _config(m).update(
        EUCGATE_ACCESS_PATH="/etc/eucgate/access/roles.yaml"
    ),
    "access path outside the mount": lambda m: _config(m).update(
        EUCGATE_ACCESS_PATH="/etc/eucgate/bundle/access.yaml"
    ),
}

INSECURE_BREAKAGES: dict[str, Callable[[Manifests], object]] = {
    "config map": lambda m: _config(m).update(EUCGATE_INSECURE="true"),
    "env, lower case": lambda m: _env(m).append({"name": "eucgate_insecure", "value": "1"}),
    "flag": lambda m: _pod(m)["containers"][0].update(args=["serve", "--insecure"]),
    "config file": lambda m: _config(m).update(EUCGATE_CONFIG="insecure: true\n"),
}


def _open_ops_port(m: Manifests) -> None:
    m["Service/eucgate"]["spec"]["ports"].append(
        {"name": "ops", "port": OPS_PORT, "targetPort": "ops", "protocol": "TCP"}
    )


SERVICE_BREAKAGES: dict[str, Callable[[Manifests], object]] = {
    "ops port on the service": _open_ops_port,
    "api port forwarded to metrics": lambda m: m["Service/eucgate"]["spec"]["ports"][0].update(
        targetPort=METRICS_PORT
    ),
    "node port": lambda m: m["Service/eucgate"]["spec"].update(type="NodePort"),
    "host port": lambda m: _pod(m)["containers"][0]["ports"][1].update(hostPort=OPS_PORT),
    "host network": lambda m: _pod(m).update(hostNetwork=True),
}


def _broken(breakage: Callable[[Manifests], object]) -> Manifests:
    manifests = copy.deepcopy(MANIFESTS)
    breakage(manifests)
    for doc in manifests.values():
        _validate(doc)  # the schema alone lets it through
    return manifests


@pytest.mark.parametrize("name", sorted(MOUNT_BREAKAGES))
def test_mount_check_refuses_a_broken_copy(name: str) -> None:
    broken = _broken(MOUNT_BREAKAGES[name])
    with pytest.raises(AssertionError):
        _check_tls_and_access_are_mounted(broken, (K8S / "kustomization.yaml").read_text())


def test_mount_check_refuses_undocumented_creation() -> None:
    kustomization = (K8S / "kustomization.yaml").read_text()
    for documented in (f"kubectl create secret tls {TLS_SECRET} ", f"{ACCESS_CONFIG_MAP} --from"):
        with pytest.raises(AssertionError):
            _check_tls_and_access_are_mounted(MANIFESTS, kustomization.replace(documented, ""))


@pytest.mark.parametrize("name", sorted(INSECURE_BREAKAGES))
def test_insecure_check_refuses_a_broken_copy(name: str) -> None:
    broken = _broken(INSECURE_BREAKAGES[name])
    with pytest.raises(AssertionError):
        _check_never_insecure(broken)


@pytest.mark.parametrize("name", sorted(SERVICE_BREAKAGES))
def test_service_check_refuses_a_broken_copy(name: str) -> None:
    broken = _broken(SERVICE_BREAKAGES[name])
    with pytest.raises(AssertionError):
        _check_only_the_api_port_is_exposed(broken)
