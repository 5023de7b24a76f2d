"""`python -m finetune_operator`: run the operator (flags mirror the FTO_* environment variables)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import sys
from dataclasses import replace
from typing import Any

import kopf
from prometheus_client import start_http_server

from finetune_operator import handlers, runtime, sweep  # noqa: F401  (importing handlers registers them with Kopf)
from finetune_operator.config import Settings, from_env
from finetune_operator.kube import Kube, load_config
from finetune_operator.reconciler import Reconciler

ANNOTATION_PREFIX = "finetune.dev"


def parse_args(argv: list[str], defaults: Settings) -> Settings:
    parser = argparse.ArgumentParser(prog="finetune-operator", description=__doc__)
    parser.add_argument("--namespace", action="append", default=None, help="watch this namespace (repeatable)")
    parser.add_argument("--trainer-image", default=defaults.trainer_image)
    parser.add_argument("--max-active-per-namespace", type=int, default=defaults.max_active_per_namespace)
    parser.add_argument("--metrics-port", type=int, default=defaults.metrics_port)
    parser.add_argument("--health-port", type=int, default=defaults.health_port)
    parser.add_argument("--log-level", default=defaults.log_level)
    parser.add_argument("--log-format", choices=["json", "plain"], default=defaults.log_format)
    parser.add_argument("--peering", default=defaults.peering)
    parser.add_argument(
        "--peering-mandatory", action=argparse.BooleanOptionalAction, default=defaults.peering_mandatory
    )
    args = parser.parse_args(argv)
    return replace(
        defaults,
        namespaces=tuple(args.namespace) if args.namespace else defaults.namespaces,
        trainer_image=args.trainer_image,
        max_active_per_namespace=args.max_active_per_namespace,
        metrics_port=args.metrics_port,
        health_port=args.health_port,
        log_level=args.log_level.upper(),
        log_format=args.log_format,
        peering=args.peering,
        peering_mandatory=args.peering_mandatory,
    )


def configure_kopf(operator_settings: Settings, priority: int) -> None:
    @kopf.on.startup()
    async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
        # Fixed on day one: renaming them later would make existing objects look unhandled.
        settings.persistence.finalizer = f"{ANNOTATION_PREFIX}/finalizer"
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=ANNOTATION_PREFIX)
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
            prefix=ANNOTATION_PREFIX, key="last-handled-configuration"
        )
        settings.posting.level = logging.WARNING
        settings.watching.server_timeout = 300
        settings.watching.client_timeout = 330
        settings.watching.inactivity_timeout = 600
        settings.networking.request_timeout = 60
        settings.execution.max_workers = 16
        # Replicas share one peering object; distinct random priorities elect exactly one active replica
        # (equal priorities would pause them all). Mandatory peering (production) starts each replica paused
        # until it won; otherwise, without the peering CRDs (a laptop, the tests), the operator runs standalone.
        settings.peering.name = operator_settings.peering
        settings.peering.lifetime = operator_settings.peering_lifetime_seconds
        settings.peering.clusterwide = not operator_settings.namespaces
        settings.peering.mandatory = operator_settings.peering_mandatory
        settings.peering.priority = priority
        active = runtime.current()
        active.queue.start()
        memo.sweeper = asyncio.create_task(sweep.sweep_forever(active))

    @kopf.on.cleanup()
    async def cleanup(memo: kopf.Memo, **_: Any) -> None:
        sweeper = memo.get("sweeper")
        if sweeper is not None:
            sweeper.cancel()
        await runtime.current().queue.stop()


def main(argv: list[str] | None = None) -> int:
    settings = parse_args(sys.argv[1:] if argv is None else argv, from_env())
    kopf.configure(
        verbose=settings.log_level == "DEBUG",
        log_format=kopf.LogFormat.JSON if settings.log_format == "json" else kopf.LogFormat.PLAIN,
    )
    logging.getLogger().setLevel(settings.log_level)
    if settings.log_level != "DEBUG":
        # Kopf logs every successful handler call at INFO: one line per watch event.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    priority = random.SystemRandom().randint(1, 2**31 - 1)
    runtime.install(runtime.Runtime(Reconciler(Kube(load_config()), settings), settings, priority))
    configure_kopf(settings, priority)
    if settings.metrics_port:
        start_http_server(settings.metrics_port)
    kopf.run(
        clusterwide=not settings.namespaces,
        namespaces=settings.namespaces,
        liveness_endpoint=f"http://0.0.0.0:{settings.health_port}/healthz" if settings.health_port else None,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
