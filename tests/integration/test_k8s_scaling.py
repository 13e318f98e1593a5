"""Scaling and network isolation in k8s/: the autoscaler drives the Deployment and the
network policy lets in only the API and operations traffic DESIGN.md section 7 names."""

from __future__ import annotations

import copy

import kubernetes_validate  # type: ignore[import-untyped]
import pytest

from .test_k8s import MANIFESTS, Manifest, _validate

API_PORT = 50051
OPS_PORT = 9090


def _get(kind: str) -> Manifest:
    return copy.deepcopy(MANIFESTS[f"{kind}/eucgate"])


def test_autoscaler_targets_the_deployment_and_never_goes_below_two() -> None:
    hpa = _get("HorizontalPodAutoscaler")
    deployment = _get("Deployment")
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert hpa["spec"]["minReplicas"] >= 2
    assert hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]
    # CPU utilisation needs a CPU request to be measured against.
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["requests"]["cpu"]


def test_network_policy_selects_the_pods_and_allows_only_known_ports() -> None:
    policy = _get("NetworkPolicy")
    pod_labels = _get("Deployment")["spec"]["template"]["metadata"]["labels"]
    selector = policy["spec"]["podSelector"]["matchLabels"]
    assert selector.items() <= pod_labels.items()
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    ingress_ports = {p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]}
    container_ports = {
        p["containerPort"]
        for p in _get("Deployment")["spec"]["template"]["spec"]["containers"][0]["ports"]
    }
    assert {API_PORT, OPS_PORT} <= ingress_ports <= container_ports
    egress_ports = {p["port"] for rule in policy["spec"]["egress"] for p in rule["ports"]}
    assert egress_ports == {53, 5432}


@pytest.mark.parametrize(
    ("kind", "path", "value"),
    [
        ("HorizontalPodAutoscaler", ("spec", "minReplicas"), "two"),
        ("NetworkPolicy", ("spec", "podSelector"), "everything"),
    ],
)
def test_broken_copies_are_refused(kind: str, path: tuple[str, ...], value: object) -> None:
    doc = _get(kind)
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(kubernetes_validate.ValidationError):
        _validate(doc)
