"""deploy/k8s against the Kubernetes JSON schemas of a pinned version, and its wiring."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from wa_bridge.settings import secret_field_names

from ._files import K8S, k8s_objects, load, pod_spec

# The oldest Kubernetes release still widely run by managed services; the schemas ship in
# the kubernetes-validate package (dev extra), so no network is needed.
KUBERNETES_VERSION = "1.31.0"


def objects(kind: str) -> dict[str, dict[str, Any]]:
    return {obj["metadata"]["name"]: obj for _, obj in k8s_objects() if obj["kind"] == kind}


@pytest.mark.parametrize(
    ("path", "obj"),
    k8s_objects(),
    ids=[f"{p.name}:{o['kind']}" for p, o in k8s_objects()],
)
def test_manifest_validates_strictly(path: Path, obj: dict[str, Any]) -> None:
    kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_kustomization_lists_every_manifest() -> None:
    listed = load(K8S / "kustomization.yaml")["resources"]
    files = sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(listed) == files


def test_the_expected_objects_exist() -> None:
    assert set(objects("Deployment")) == {"wa-bridge-receiver", "wa-bridge-worker"}
    assert set(objects("Service")) == {"wa-bridge-receiver"}
    assert set(objects("PodDisruptionBudget")) == {"wa-bridge-receiver", "wa-bridge-worker"}
    assert set(objects("HorizontalPodAutoscaler")) == {"wa-bridge-worker"}
    assert set(objects("Job")) == {"wa-bridge-migrate"}
    assert "Secret" not in {obj["kind"] for _, obj in k8s_objects()}


def pod_labels(deployment: str) -> dict[str, str]:
    return dict(objects("Deployment")[deployment]["spec"]["template"]["metadata"]["labels"])


def test_selectors_match_the_pods() -> None:
    for name, deployment in objects("Deployment").items():
        assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels(name).items()
    service = objects("Service")["wa-bridge-receiver"]
    assert service["spec"]["selector"].items() <= pod_labels("wa-bridge-receiver").items()
    for name, pdb in objects("PodDisruptionBudget").items():
        assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels(name).items()


def test_receiver_probes_use_the_health_routes() -> None:
    (container,) = pod_spec(objects("Deployment")["wa-bridge-receiver"])["containers"]  # type: ignore[index]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["args"][:2] == ["wa-bridge", "receiver"]


def test_worker_autoscaling_stops_at_the_partition_count() -> None:
    hpa = objects("HorizontalPodAutoscaler")["wa-bridge-worker"]
    partitions = int(objects("ConfigMap")["wa-bridge"]["data"]["WA_BRIDGE_KAFKA_PARTITIONS"])
    assert hpa["spec"]["scaleTargetRef"]["name"] == "wa-bridge-worker"
    assert (
        hpa["spec"]["minReplicas"]
        <= objects("Deployment")["wa-bridge-worker"]["spec"]["replicas"]
        <= hpa["spec"]["maxReplicas"]
        <= partitions
    )


def test_worker_grace_outlasts_its_drain() -> None:
    spec = pod_spec(objects("Deployment")["wa-bridge-worker"])
    assert spec is not None and spec["terminationGracePeriodSeconds"] > 20  # shutdown_grace_s


def test_migrations_are_a_job_of_their_own() -> None:
    (container,) = pod_spec(objects("Job")["wa-bridge-migrate"])["containers"]  # type: ignore[index]
    assert container["args"] == ["wa-bridge", "db", "upgrade"]
    for name in ("wa-bridge-receiver", "wa-bridge-worker"):
        (pod,) = pod_spec(objects("Deployment")[name])["containers"]  # type: ignore[index]
        assert "upgrade" not in pod["args"]


def test_pods_run_as_non_root_with_secrets_as_mounted_references() -> None:
    config = objects("ConfigMap")["wa-bridge"]["data"]
    secret_vars = {f"WA_BRIDGE_{name.upper()}" for name in secret_field_names()}
    assert not secret_vars & set(config), "a secret sits in the ConfigMap"
    for _, obj in k8s_objects():
        spec = pod_spec(obj)
        if spec is None:
            continue
        assert spec["securityContext"]["runAsNonRoot"] is True
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert volumes["secrets"]["secret"]["secretName"] == "wa-bridge-secrets"
        for container in spec["containers"]:
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
            assert mounts["secrets"] == config["WA_BRIDGE_SECRETS_DIR"]
            assert not any("value" in env for env in container.get("env", []))
