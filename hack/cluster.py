#!/usr/bin/env python3
"""The local Kubernetes control plane for integration tests and the demo.

    hack/cluster.py up [--no-with-node-agent]   start (or reuse) the cluster; prints `export KUBECONFIG=...`
    hack/cluster.py down [--purge]              stop every component; --purge deletes the state too
    hack/cluster.py env                         print `export KUBECONFIG=...`
    hack/cluster.py status                      the PID of each component
    hack/cluster.py restart-apiserver           restart kube-apiserver only (etcd keeps the data)

State dir: $FTO_CLUSTER_DIR, default ~/.cache/finetune-operator/cluster. Run it with the project's
venv Python (it starts the node agent with the same interpreter). From Python, put hack/ on
sys.path (the tests have it through pytest's pythonpath) and `import localcluster` (up, down, status, ...).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import localcluster


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--state-dir", type=Path, default=None, help="default: $FTO_CLUSTER_DIR or ~/.cache/...")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up")
    up.add_argument("--with-node-agent", action=argparse.BooleanOptionalAction, default=True)
    down = sub.add_parser("down")
    down.add_argument("--purge", action="store_true")
    sub.add_parser("env")
    sub.add_parser("status")
    sub.add_parser("restart-apiserver")
    args = parser.parse_args(argv)
    state = args.state_dir or localcluster.state_dir_from_env()

    if args.command == "up":
        started = time.monotonic()
        info = localcluster.up(state, with_node_agent=args.with_node_agent)
        print(f"cluster ready in {time.monotonic() - started:.1f} s: {info.server}", file=sys.stderr)
        print(f"export KUBECONFIG={shlex.quote(str(info.kubeconfig))}")
    elif args.command == "down":
        localcluster.down(state, purge=args.purge)
    elif args.command == "env":
        print(f"export KUBECONFIG={shlex.quote(str(Path(state).resolve() / 'kubeconfig'))}")
    elif args.command == "status":
        pids = localcluster.status(state)
        for name, pid in pids.items():
            print(f"{name:25} {'running, pid ' + str(pid) if pid else 'stopped'}")
        return 0 if all(pid for name, pid in pids.items() if name not in localcluster.OPTIONAL_COMPONENTS) else 1
    else:
        started = time.monotonic()
        localcluster.restart_apiserver(state)
        print(f"kube-apiserver ready again in {time.monotonic() - started:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
