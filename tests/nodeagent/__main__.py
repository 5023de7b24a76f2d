"""python -m nodeagent --kubeconfig K --state-dir D --tls-cert C --tls-key K --client-ca CA [--node-name N]

Test-only; see __init__. The TLS files serve the container-log endpoint (logserver.py)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path
from types import FrameType

from kubernetes import client, config

from .agent import Agent
from .logserver import LogServer
from .objects import PROVISIONER_PATH


def main() -> None:
    parser = argparse.ArgumentParser(prog="nodeagent", description=__doc__)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--state-dir", type=Path, required=True, help="pod folders and container logs")
    parser.add_argument("--node-name", default="local-runner")
    parser.add_argument("--tls-cert", type=Path, required=True, help="serving certificate of the log endpoint")
    parser.add_argument("--tls-key", type=Path, required=True)
    parser.add_argument("--client-ca", type=Path, required=True, help="CA of the clients let in (the API server)")
    parser.add_argument(
        "--hostpath-provisioner-dir",
        type=Path,
        default=PROVISIONER_PATH,
        help="where the host-path provisioner's /tmp/hostpath_pv really is",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(threadName)s %(message)s")

    args.state_dir.mkdir(parents=True, exist_ok=True)
    configuration = client.Configuration()
    config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=args.kubeconfig, client_configuration=configuration
    )
    api = client.ApiClient(configuration)
    state = args.state_dir.resolve()
    logs = LogServer(client.CoreV1Api(api), state / "logs", args.tls_cert, args.tls_key, args.client_ca)
    agent = Agent(api, args.node_name, state, args.hostpath_provisioner_dir, logs)

    def stop(signum: int, frame: FrameType | None) -> None:
        agent.shutdown()
        logging.shutdown()
        # The watch thread may sit in a blocking read; nothing is left to clean up.
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    agent.run(args.state_dir / "registered")
    sys.exit(0)


if __name__ == "__main__":
    main()
