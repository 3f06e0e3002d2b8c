"""A small kustomize for the suite: renders deploy/k8s/overlays/* offline (kubectl and kustomize
cannot be installed where the suite runs).

It implements the part of kustomize the manifests use: `resources` (files and directories with a
kustomization), `namespace`, `images` (newName, newTag, digest) and `patches` whose file is a
list of JSON 6902 operations with a `target` (kind and name). Anything else in a kustomization is
refused, so a manifest cannot start depending on a feature this renderer would silently skip.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

KNOWN_KEYS = frozenset({"apiVersion", "kind", "resources", "namespace", "images", "patches"})
CLUSTER_SCOPED = frozenset({"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"})


class KustomizeError(ValueError):
    """The kustomization uses something this renderer does not implement, or a patch does not apply."""


def render(directory: Path) -> list[dict[str, Any]]:
    """The objects `kustomize build directory` makes."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(kustomization) - KNOWN_KEYS
    if unknown:
        raise KustomizeError(f"{directory}: unsupported kustomization keys {sorted(unknown)}")
    objects: list[dict[str, Any]] = []
    for entry in kustomization.get("resources", []):
        path = (directory / entry).resolve()
        if path.is_dir():
            objects += render(path)
        else:
            objects += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    for patch in kustomization.get("patches", []):
        if set(patch) != {"path", "target"} or set(patch["target"]) != {"kind", "name"}:
            raise KustomizeError(f"{directory}: only patches with a path and a target (kind, name): {patch}")
        operations = yaml.safe_load((directory / patch["path"]).read_text())
        if not isinstance(operations, list):
            raise KustomizeError(f"{directory / patch['path']}: not a list of JSON 6902 operations")
        targets = [
            o
            for o in objects
            if o["kind"] == patch["target"]["kind"] and o["metadata"]["name"] == patch["target"]["name"]
        ]
        if len(targets) != 1:
            target = patch["target"]
            raise KustomizeError(f"{directory}: patch target {target} matches {len(targets)} objects")
        for operation in operations:
            apply_operation(targets[0], operation)
    namespace = kustomization.get("namespace")
    if namespace:
        for obj in objects:
            if obj["kind"] not in CLUSTER_SCOPED:
                obj["metadata"]["namespace"] = namespace
    for image in kustomization.get("images", []):
        for obj in objects:
            for container in containers(obj):
                retag(container, image)
    return objects


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    spec = obj.get("spec", {}).get("template", {}).get("spec", {})
    return [*spec.get("initContainers", []), *spec.get("containers", [])]


def retag(container: dict[str, Any], image: dict[str, str]) -> None:
    """kustomize's image transformer for one container."""
    reference = container["image"]
    name, digest = reference.split("@", 1) if "@" in reference else (reference, "")
    tag = ""
    if ":" in name.rsplit("/", 1)[-1]:
        name, tag = name.rsplit(":", 1)
    if name != image["name"]:
        return
    name = image.get("newName", name)
    if "digest" in image:
        container["image"] = f"{name}@{image['digest']}"
    else:
        tag = image.get("newTag", tag)
        container["image"] = name + (f":{tag}" if tag else "") + (f"@{digest}" if digest and not tag else "")


def _pointer(path: str) -> list[str]:
    if not path.startswith("/"):
        raise KustomizeError(f"JSON pointer {path!r} does not start with /")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def apply_operation(document: dict[str, Any], operation: dict[str, Any]) -> None:
    """One JSON 6902 operation (add, replace, remove, test), in place."""
    op, parts = operation["op"], _pointer(operation["path"])
    parent: Any = document
    for part in parts[:-1]:
        parent = parent[int(part)] if isinstance(parent, list) else parent[part]
    last = parts[-1]
    value = copy.deepcopy(operation.get("value"))
    try:
        if isinstance(parent, list):
            index = len(parent) if last == "-" else int(last)
            if op == "add":
                parent.insert(index, value)
            elif op == "replace":
                parent[index] = value
            elif op == "remove":
                del parent[index]
            elif op == "test" and parent[index] != value:
                raise KustomizeError(f"test failed at {operation['path']}")
        else:
            if op in ("replace", "remove", "test") and last not in parent:
                raise KustomizeError(f"{op} {operation['path']}: no such member")
            if op in ("add", "replace"):
                parent[last] = value
            elif op == "remove":
                del parent[last]
            elif op == "test" and parent[last] != value:
                raise KustomizeError(f"test failed at {operation['path']}")
        if op not in ("add", "replace", "remove", "test"):
            raise KustomizeError(f"unsupported operation {op!r}")
    except (IndexError, KeyError, ValueError) as exc:
        if isinstance(exc, KustomizeError):
            raise
        raise KustomizeError(f"{op} {operation['path']}: {exc}") from None
