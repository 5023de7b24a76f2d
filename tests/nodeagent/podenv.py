"""A container's command line and environment, resolved as a kubelet resolves them."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from .objects import NotReadyYet, Objects

# What a container inherits from the agent: enough to run host programs, nothing else.
_INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR")
# The agent runs the project's Python whatever the image: see the package docstring.
_PYTHON = re.compile(r"python(3(\.\d+)?)?")
# $(VAR) references; $$(VAR) escapes one.
_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


_REPO = Path(__file__).resolve().parents[2]
# The project's own images: their ENTRYPOINT is read from their Dockerfiles, so a container that relies on it
# (the operator's Deployment) runs what the image would run. Any other image needs `command`.
_PROJECT_IMAGES = {
    "ghcr.io/finetune-operator/operator": _REPO / "operator" / "Dockerfile",
    "ghcr.io/finetune-operator/trainer": _REPO / "trainer-image" / "Dockerfile",
}


def image_entrypoint(image: str) -> list[str] | None:
    """The exec-form ENTRYPOINT of one of the project's images (the last one of its Dockerfile), else None."""
    repository = re.sub(r"(@sha256:[0-9a-f]+|:[^/:]+)$", "", image or "")
    dockerfile = _PROJECT_IMAGES.get(repository)
    if dockerfile is None or not dockerfile.exists():
        return None
    entrypoints = [line for line in dockerfile.read_text().splitlines() if line.startswith("ENTRYPOINT ")]
    return [str(word) for word in json.loads(entrypoints[-1].removeprefix("ENTRYPOINT "))] if entrypoints else None


class ConfigError(Exception):
    """The container cannot be started as specified (kubelet: CreateContainerConfigError)."""


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: unknown references stay as written."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))

    return _REFERENCE.sub(replace, text)


def field_value(pod: Any, path: str) -> str:
    """The downward API value of `path` (env and downwardAPI volumes)."""
    meta = pod.metadata
    simple = {
        "metadata.name": meta.name,
        "metadata.namespace": meta.namespace,
        "metadata.uid": meta.uid,
        "spec.nodeName": pod.spec.node_name,
        "spec.serviceAccountName": pod.spec.service_account_name,
        "status.podIP": "127.0.0.1",
        "status.hostIP": "127.0.0.1",
    }
    if path in simple:
        return str(simple[path] or "")
    keyed = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
    if keyed:
        values = (meta.labels if keyed.group(1) == "labels" else meta.annotations) or {}
        return str(values.get(keyed.group(2), ""))
    raise ConfigError(f"unsupported fieldRef {path!r}")


def environment(pod: Any, container: Any, objects: Objects, apiserver_port: int) -> dict[str, str]:
    namespace = pod.metadata.namespace
    env = {k: os.environ[k] for k in _INHERITED if k in os.environ}
    env.update(
        {
            "HOSTNAME": pod.metadata.name,
            # In-cluster config: the API server is on this host.
            "KUBERNETES_SERVICE_HOST": "127.0.0.1",
            "KUBERNETES_SERVICE_PORT": str(apiserver_port),
            "KUBERNETES_SERVICE_PORT_HTTPS": str(apiserver_port),
            "KUBERNETES_PORT": f"tcp://127.0.0.1:{apiserver_port}",
        }
    )
    for source in container.env_from or []:
        prefix = source.prefix or ""
        if source.config_map_ref is not None:
            ref = source.config_map_ref
            data = objects.config_map(namespace, ref.name, bool(ref.optional))
        else:
            ref = source.secret_ref
            data = objects.secret(namespace, ref.name, bool(ref.optional))
        env.update({prefix + k: v.decode() for k, v in data.items()})
    for var in container.env or []:
        env[var.name] = _value(pod, var, objects, env)
    return env


def _value(pod: Any, var: Any, objects: Objects, env: dict[str, str]) -> str:
    if var.value_from is None:
        return expand(var.value or "", env)
    source = var.value_from
    namespace = pod.metadata.namespace
    if source.field_ref is not None:
        return field_value(pod, source.field_ref.field_path)
    if source.config_map_key_ref is not None:
        ref = source.config_map_key_ref
        data = objects.config_map(namespace, ref.name, bool(ref.optional))
    elif source.secret_key_ref is not None:
        ref = source.secret_key_ref
        data = objects.secret(namespace, ref.name, bool(ref.optional))
    else:
        raise ConfigError(f"env {var.name}: only fieldRef, configMapKeyRef and secretKeyRef are supported")
    if ref.key in data:
        return data[ref.key].decode()
    if ref.optional:
        return ""
    raise NotReadyYet(f'couldn\'t find key {ref.key} in "{ref.name}"')


def command_line(container: Any, env: dict[str, str]) -> list[str]:
    command = container.command or image_entrypoint(container.image)
    if not command:
        raise ConfigError(
            f"container {container.name}: the node agent knows no entrypoint of image {container.image!r}; "
            "set `command`"
        )
    argv = [expand(a, env) for a in [*command, *(container.args or [])]]
    if _PYTHON.fullmatch(os.path.basename(argv[0])):
        argv[0] = sys.executable
    return argv
