"""The API objects a pod refers to (ConfigMaps, Secrets, PVCs, tokens), read as a kubelet reads them."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

# The controller-manager's host-path provisioner writes PVs at /tmp/hostpath_pv/<uuid>; the
# local cluster redirects that folder into its state dir (see hack/localcluster/cluster.py).
PROVISIONER_PATH = Path("/tmp/hostpath_pv")


class NotReadyYet(Exception):
    """A referenced object is missing or not usable yet; the pod stays in ContainerCreating."""


@dataclass
class Objects:
    core: client.CoreV1Api
    provisioner_dir: Path
    """Where PROVISIONER_PATH really is on this host."""

    def _read(self, kind: str, namespace: str, name: str) -> Any:
        read = getattr(self.core, f"read_namespaced_{kind}")
        try:
            return read(name, namespace)
        except ApiException as e:
            if e.status == 404:
                return None
            raise

    def config_map(self, namespace: str, name: str, optional: bool = False) -> dict[str, bytes]:
        cm = self._read("config_map", namespace, name)
        if cm is None:
            if optional:
                return {}
            raise NotReadyYet(f'configmap "{name}" not found')
        data = {k: v.encode() for k, v in (cm.data or {}).items()}
        data.update({k: base64.b64decode(v) for k, v in (cm.binary_data or {}).items()})
        return data

    def secret(self, namespace: str, name: str, optional: bool = False) -> dict[str, bytes]:
        secret = self._read("secret", namespace, name)
        if secret is None:
            if optional:
                return {}
            raise NotReadyYet(f'secret "{name}" not found')
        return {k: base64.b64decode(v) for k, v in (secret.data or {}).items()}

    def claim_path(self, namespace: str, claim: str) -> Path:
        """The host folder behind a bound PVC (hostPath or local PVs only)."""
        pvc = self._read("persistent_volume_claim", namespace, claim)
        if pvc is None:
            raise NotReadyYet(f'persistentvolumeclaim "{claim}" not found')
        if pvc.status.phase != "Bound" or not pvc.spec.volume_name:
            raise NotReadyYet(f'persistentvolumeclaim "{claim}" is not bound yet')
        pv: Any = self.core.read_persistent_volume(pvc.spec.volume_name)
        source = pv.spec.host_path or pv.spec.local
        if source is None:
            raise NotReadyYet(f'volume "{pv.metadata.name}" is neither hostPath nor local')
        path = Path(source.path)
        if path.is_relative_to(PROVISIONER_PATH):
            path = self.provisioner_dir / path.relative_to(PROVISIONER_PATH)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def service_account_token(self, namespace: str, account: str, pod: Any, audience: str | None, seconds: int) -> str:
        """A real token from the TokenRequest API, bound to the pod as a kubelet binds it."""
        request = client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(
                audiences=[audience] if audience else [],
                expiration_seconds=seconds,
                bound_object_ref=client.V1BoundObjectReference(
                    api_version="v1", kind="Pod", name=pod.metadata.name, uid=pod.metadata.uid
                ),
            )
        )
        try:
            response: Any = self.core.create_namespaced_service_account_token(account, namespace, request)
        except ApiException as e:
            if e.status == 404:
                raise NotReadyYet(f'serviceaccount "{account}" not found') from e
            raise
        token: str = response.status.token
        return token
