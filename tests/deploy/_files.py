"""Reading deploy/: YAML documents, compose services, Kubernetes objects, image references."""

from __future__ import annotations

import re
from io import StringIO
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"


def load_all(path: Path) -> list[Any]:
    """Every YAML document of ``path`` (anchors and merge keys resolved)."""
    return [doc for doc in YAML(typ="safe", pure=True).load_all(StringIO(path.read_text())) if doc]


def load(path: Path) -> Any:
    (doc,) = load_all(path)
    return doc


def compose() -> dict[str, Any]:
    return dict(load(DEPLOY / "compose.yaml"))


def k8s_objects() -> list[tuple[Path, dict[str, Any]]]:
    """(file, object) for every Kubernetes object in deploy/k8s (not the kustomization)."""
    return [
        (path, doc)
        for path in sorted(K8S.glob("*.yaml"))
        if path.name != "kustomization.yaml"
        for doc in load_all(path)
    ]


def pod_spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    if obj["kind"] in ("Deployment", "Job"):
        return dict(obj["spec"]["template"]["spec"])
    return None


def dockerfile_images() -> list[str]:
    text = (ROOT / "Dockerfile").read_text()
    return re.findall(r"^FROM\s+(\S+)", text, flags=re.MULTILINE)


def all_images() -> list[tuple[str, str]]:
    """(where, image) for every image compose, the manifests and the Dockerfile name."""
    found = [("Dockerfile", image) for image in dockerfile_images()]
    found += [
        (f"compose.yaml:{name}", service["image"])
        for name, service in compose()["services"].items()
    ]
    for path, obj in k8s_objects():
        spec = pod_spec(obj)
        for container in (spec or {}).get("containers", []) + (spec or {}).get(
            "initContainers", []
        ):
            found.append((f"k8s/{path.name}:{container['name']}", container["image"]))
    return found
