"""The dashboard's HTTP server (aiohttp): pages from the cache, a live-update stream, the log tail.

Page views read the watch-backed cache only. The one API call a view can cause is the log tail
(`pods/<pod>/log`, the last lines of one pod of the job shown), fetched by the page every 5 s while open.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from importlib import resources

from aiohttp import web

from finetune_dashboard import lookups
from finetune_dashboard.cache import Cache
from finetune_dashboard.kubeclient import Api, ApiError
from finetune_dashboard.markup import Html
from finetune_dashboard.pages import job as job_page
from finetune_dashboard.pages import jobs as jobs_page
from finetune_dashboard.pages import registry as registry_page
from finetune_dashboard.pages.layout import fragment, page

CACHE = web.AppKey("cache", Cache)
API = web.AppKey("api", Api)
JOB_ROWS = web.AppKey("job rows", jobs_page.Rows)
LOG_LINES = 200
# At most one live update per second per client, however fast the cache changes.
UPDATE_MIN_INTERVAL = 1.0
HEARTBEAT_SECONDS = 15.0
SECURITY_HEADERS = {
    # Nothing inline, nothing from elsewhere: an injected <script> would not run even if escaping failed.
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self';"
    " connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
STATIC = {"dashboard.css": "text/css", "live.js": "text/javascript"}


def respond(request: web.Request, title: str, active: str, body: Html, started: float) -> web.Response:
    cache = request.app[CACHE]
    errors = sorted(cache.errors.values())
    if request.query.get("fragment"):
        text = fragment(body, errors=errors, version=cache.version)
    else:
        text = page(title, body, active=active, errors=errors, version=cache.version)
    headers = {**SECURITY_HEADERS, "Server-Timing": f"render;dur={(time.perf_counter() - started) * 1000:.1f}"}
    return web.Response(text=text, content_type="text/html", headers=headers)


async def jobs_view(request: web.Request) -> web.Response:
    started, cache = time.perf_counter(), request.app[CACHE]
    filters = jobs_page.Filters.from_query(request.query)
    body = jobs_page.render(cache["jobs"], cache["metrics"], filters, datetime.now(UTC), request.app[JOB_ROWS])
    return respond(request, "Jobs", "/", body, started)


async def job_view(request: web.Request) -> web.Response:
    started, cache = time.perf_counter(), request.app[CACHE]
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    job = cache["jobs"].get((namespace, name))
    if job is None:
        raise web.HTTPNotFound(text=f"no FineTuningJob {namespace}/{name} (or not visible to this identity)")
    body = job_page.render(
        job,
        recorded=lookups.history(cache["metrics"], namespace, name),
        events=lookups.events_of(cache["events"], job),
        pods=lookups.pods_of(cache["pods"], job),
        version=lookups.version_of(cache["modelversions"], job),
        log="",
        now=datetime.now(UTC),
    )
    return respond(request, name, "/", body, started)


async def log_view(request: web.Request) -> web.Response:
    """The last lines of one of the job's pods (only its own pods: the dashboard is no general log proxy)."""
    cache = request.app[CACHE]
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    job = cache["jobs"].get((namespace, name))
    pods = lookups.pods_of(cache["pods"], job) if job else []
    if not pods:
        return web.Response(text="no pods yet", headers=SECURITY_HEADERS)
    names = [p["metadata"]["name"] for p in pods]
    pod = request.query.get("pod") or names[-1]
    if pod not in names:
        raise web.HTTPNotFound(text=f"{pod} is not a pod of {namespace}/{name}")
    try:
        text = await request.app[API].text(
            f"/api/v1/namespaces/{namespace}/pods/{pod}/log", {"tailLines": str(LOG_LINES)}
        )
    except ApiError as error:
        text = f"log of {pod} unavailable: {error}"
    return web.Response(text=text or f"{pod}: no output yet", headers=SECURITY_HEADERS)


async def registry_view(request: web.Request) -> web.Response:
    started, cache = time.perf_counter(), request.app[CACHE]
    body = registry_page.render(cache["modelversions"], cache["jobs"], request.query, cache["registeredmodels"])
    return respond(request, "Model registry", "/registry", body, started)


async def updates(request: web.Request) -> web.StreamResponse:
    """Server-sent events: `change` whenever the cache moved past the version the page was rendered from."""
    cache = request.app[CACHE]
    try:
        version = int(request.query.get("since", "0"))
    except ValueError:
        version = 0
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    try:
        while True:
            try:
                version = await asyncio.wait_for(cache.changed_since(version), HEARTBEAT_SECONDS)
                await response.write(f"event: change\ndata: {version}\n\n".encode())
                await asyncio.sleep(UPDATE_MIN_INTERVAL)
            except TimeoutError:
                await response.write(b": keep-alive\n\n")
    except ConnectionResetError:  # the page went away
        return response


async def healthz(request: web.Request) -> web.Response:
    cache = request.app[CACHE]
    return web.Response(text="ok" if cache.ready else "syncing", status=200 if cache.ready else 503)


async def static(request: web.Request) -> web.Response:
    name = request.match_info["file"]
    if name not in STATIC:
        raise web.HTTPNotFound()
    body = resources.files("finetune_dashboard").joinpath("static", name).read_bytes()
    return web.Response(body=body, content_type=STATIC[name], headers={"Cache-Control": "max-age=300"})


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def application(cache: Cache, api: Api) -> web.Application:
    app = web.Application()
    app[CACHE], app[API], app[JOB_ROWS] = cache, api, jobs_page.Rows()
    routes: list[tuple[str, Handler]] = [
        ("/", jobs_view),
        ("/jobs/{namespace}/{name}", job_view),
        ("/jobs/{namespace}/{name}/log", log_view),
        ("/registry", registry_view),
        ("/updates", updates),
        ("/healthz", healthz),
        ("/static/{file}", static),
    ]
    app.add_routes([web.get(path, handler) for path, handler in routes])
    return app
