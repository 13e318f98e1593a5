"""Scaling and network isolation in k8s/: the autoscaler drives the Deployment, and the
network policy admits each port only from who needs it: the API port from pods labelled
as eucgate callers in namespaces labelled the same, the metrics port from the monitoring
namespace, the ops port from nobody (the kubelet's probes come from the node, which
NetworkPolicy always lets through)."""

from __future__ import annotations

import copy
from collections.abc import Callable

import kubernetes_validate  # type: ignore[import-untyped]
import pytest

from .test_k8s import API_PORT, MANIFESTS, METRICS_PORT, OPS_PORT, Manifest, Manifests, _validate

CLIENT_LABEL = {"eucgate.example/api-client": "true"}
MONITORING = {"kubernetes.io/metadata.name": "monitoring"}


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
    assert ingress_ports == {API_PORT, METRICS_PORT}
    assert ingress_ports <= container_ports
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


def _selects(selector: Manifest, labels: dict[str, str]) -> bool:
    """Whether a label selector picks `labels`: matchLabels, and (conservatively) any
    matchExpressions selector counts as picking them."""
    if selector.get("matchExpressions"):
        return True
    match: dict[str, str] = selector.get("matchLabels", {})
    return match.items() <= labels.items()


def _exact(selector: Manifest | None) -> dict[str, str]:
    """A selector's labels when it is matchLabels only; {} (matches all) otherwise."""
    if not selector or selector.get("matchExpressions"):
        return {}
    labels: dict[str, str] = selector.get("matchLabels", {})
    return labels


def _check_ingress_admits_each_port_only_from_who_needs_it(manifests: Manifests) -> None:
    """Every ingress rule on the eucgate pods (NetworkPolicies add up, so all that select
    them) names its ports and its peers; the API port admits only labelled callers, the
    metrics port only the monitoring namespace, the ops port nobody."""
    pod_labels = manifests["Deployment/eucgate"]["spec"]["template"]["metadata"]["labels"]
    policies = [
        doc
        for doc in manifests.values()
        if doc["kind"] == "NetworkPolicy" and _selects(doc["spec"]["podSelector"], pod_labels)
    ]
    assert policies, "no NetworkPolicy isolates the eucgate pods"
    admitted: dict[int, list[Manifest]] = {}
    for policy in policies:
        assert "Ingress" in policy["spec"].get("policyTypes", ["Ingress"])
        for rule in policy["spec"].get("ingress", []):
            assert rule.get("ports"), "a rule without ports admits every port"
            assert rule.get("from"), "a rule without peers admits everyone"
            for port in rule["ports"]:
                assert isinstance(port.get("port"), int), "name each port by number"
                assert "endPort" not in port, "no port ranges"
                admitted.setdefault(port["port"], []).extend(rule["from"])
    assert set(admitted) == {API_PORT, METRICS_PORT}, sorted(admitted)
    for peer in admitted[API_PORT]:
        assert "ipBlock" not in peer
        # Both: a labelled pod in a labelled namespace (no selector would mean "this
        # namespace" or "every namespace", an empty one "everything").
        assert _exact(peer.get("namespaceSelector")).items() >= CLIENT_LABEL.items(), peer
        assert _exact(peer.get("podSelector")).items() >= CLIENT_LABEL.items(), peer
    for peer in admitted[METRICS_PORT]:
        assert "ipBlock" not in peer
        assert _exact(peer.get("namespaceSelector")).items() >= MONITORING.items(), peer


def test_ingress_admits_each_port_only_from_who_needs_it() -> None:
    _check_ingress_admits_each_port_only_from_who_needs_it(MANIFESTS)


def _ingress(m: Manifests, index: int) -> Manifest:
    rule: Manifest = m["NetworkPolicy/eucgate"]["spec"]["ingress"][index]
    return rule


def _api_peer(m: Manifests) -> Manifest:
    peer: Manifest = _ingress(m, 0)["from"][0]
    return peer


def _allow_all_policy(m: Manifests) -> None:
    m["NetworkPolicy/eucgate-debug"] = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "eucgate-debug"},
        "spec": {"podSelector": {}, "ingress": [{}]},
    }


def _ops_rule(m: Manifests) -> None:
    m["NetworkPolicy/eucgate"]["spec"]["ingress"].append(
        {"from": [{"podSelector": {}}], "ports": [{"protocol": "TCP", "port": OPS_PORT}]}
    )


# Each breakage leaves manifests the Kubernetes schema accepts; only the check refuses them.
INGRESS_BREAKAGES: dict[str, Callable[[Manifests], object]] = {
    "api open to all": lambda m: _ingress(m, 0).pop("from"),
    "api on every port": lambda m: _ingress(m, 0).pop("ports"),
    "api from any namespace": lambda m: _api_peer(m).update(namespaceSelector={}),
    "api from any pod of a labelled namespace": lambda m: _api_peer(m).pop("podSelector"),
    "api from labelled pods of this namespace": lambda m: _api_peer(m).pop("namespaceSelector"),
    "api by expression": lambda m: _api_peer(m)["podSelector"].update(
        matchLabels={}, matchExpressions=[{"key": "app", "operator": "Exists"}]
    ),
    "api from the internet": lambda m: _ingress(m, 0)["from"].append(
        {"ipBlock": {"cidr": "0.0.0.0/0"}}
    ),
    "api range": lambda m: _ingress(m, 0)["ports"][0].update(port=9000, endPort=60000),
    "metrics from any namespace": lambda m: _ingress(m, 1)["from"][0].update(namespaceSelector={}),
    "metrics from this namespace": lambda m: _ingress(m, 1).update({"from": [{"podSelector": {}}]}),
    "metrics by port name": lambda m: _ingress(m, 1)["ports"][0].update(port="metrics"),
    "ops port admitted": _ops_rule,
    "another policy allows all": _allow_all_policy,
}


@pytest.mark.parametrize("name", sorted(INGRESS_BREAKAGES))
def test_ingress_check_refuses_a_broken_copy(name: str) -> None:
    manifests = copy.deepcopy(MANIFESTS)
    INGRESS_BREAKAGES[name](manifests)
    for doc in manifests.values():
        _validate(doc)  # the schema alone lets it through
    with pytest.raises(AssertionError):
        _check_ingress_admits_each_port_only_from_who_needs_it(manifests)
