"""`python -m finetune_dashboard`: serve the read-only dashboard, as the kubeconfig's user or the pod's identity.

    python -m finetune_dashboard [--kubeconfig PATH] [--context NAME] [--namespace NS ...] [--port 8080]

Without --namespace it shows every namespace the identity may list FineTuningJobs in cluster-wide, and
otherwise the context's namespace. It is ready once the first list of every resource arrived or was refused for
good (403, 404).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from aiohttp import web

from finetune_dashboard import cache as cache_module
from finetune_dashboard import kubeclient
from finetune_dashboard.server import application


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="finetune-dashboard", description=__doc__)
    parser.add_argument("--kubeconfig", default=None, help="default: $KUBECONFIG, ~/.kube/config, or in-cluster")
    parser.add_argument("--context", default=None)
    parser.add_argument("--namespace", action="append", default=[], help="show this namespace (repeatable)")
    parser.add_argument("--host", default="127.0.0.1", help="listen address (0.0.0.0 in a pod)")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    credentials = kubeclient.load(args.kubeconfig, args.context)
    async with kubeclient.Api.session_for(credentials) as session:
        api = kubeclient.Api(credentials, session)
        namespaces = await cache_module.scope(api, tuple(args.namespace))
        cache = cache_module.Cache(namespaces)
        watches = cache_module.start(cache, api)
        runner = web.AppRunner(application(cache, api), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, args.host, args.port)
        await site.start()
        scope = "all namespaces" if namespaces is None else ", ".join(namespaces)
        print(f"finetune dashboard on http://{args.host}:{args.port}/ ({scope}, as {credentials.server})", flush=True)
        try:
            await asyncio.gather(*watches)
        finally:
            await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
