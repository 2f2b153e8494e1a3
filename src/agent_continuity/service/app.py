"""The HTTP API of ``continuity serve`` (DESIGN.md §6), and the web app's files.

For the web app (``static/``), every route answers JSON (camelCase) and every
error is ``{"error": {"code", "message"}}`` with a 4xx status (503 when the
store is unavailable, 502 when a configured responder does not answer):

    GET  /                               static/index.html; other files under /static/
    GET  /login?token=TOKEN              sets the cookie (HttpOnly, SameSite=Strict, 30 days),
                                         303 to /; a wrong token: 401
    POST /logout                         forgets the cookie; 204
    GET  /api/me                         {"user", "browserLeaseTtl", "heartbeatSeconds",
                                         "responder"}
    POST /api/sessions                   {type?, task?, phase?} -> 201, the session record
    GET  /api/sessions[?status=S]        {"sessions": [...]} (the user's only)
    GET  /api/sessions/{id}              `show --json` + "conversation": [{seq, role, text, at}]
    POST /api/sessions/{id}/messages     {role, text} -> {"sessionId", "seq"}
    POST /api/sessions/{id}/reply        {} -> {"sessionId", "seq", "role": "assistant", "text",
                                         "responder"}: the assistant answers the conversation
                                         (post the user's message first, then ask for the reply)
    POST /api/sessions/{id}/update       {task?, phase?, step?, complete?, next?, blockers?,
                                         unblock?, decisions?, progress?, summary?, files?,
                                         preferences?, pending?, pendingDone?,
                                         tasks?: [{id, title?, status?}], notes?: [text]}
                                         -> {"sessionId", "seqs", "session"}
    POST /api/sessions/{id}/heartbeat    {claim?, lease?} -> {"sessionId", "status": "active",
                                         "lease"};
                                         409 `no-active-session` once the lease ran out (or
                                         the page left it more than browser-leave-grace ago);
                                         claim: true when a page opens the session (a fresh
                                         lease token, which the page's deferred end names);
                                         lease: the page's token, so that its own beat
                                         arriving after its deferred end is refused (409)
    POST /api/sessions/{id}/save         {trigger?} -> {"recoveryPointId"}
    POST /api/sessions/{id}/end          {deferred?, lease?} -> {"sessionId", "status",
                                         "endsAt"?}; any other body ends it now (sendBeacon).
                                         deferred: the page is unloading (a close or a
                                         reload): completed after browser-leave-grace unless
                                         a page heartbeats it first
    GET  /api/recovery                   the `recover --json` analysis, nothing changed; or 204
    POST /api/recovery                   {sessionId?, answer: true|false|null} -> `recover --json`
    GET  /api/recovery/log               {"entries": [...]}: the recovery log, the user's entries
    GET  /api/analytics                  `analytics --json` of the user's sessions
    GET  /api/search?q=WORDS[&limit=N]   `search --json` over the user's sessions only (limit
                                         1-1000, default 20); q missing, empty, wordless or over
                                         500 characters: 400

Authentication: ``Authorization: Bearer TOKEN``, or the cookie ``/login`` sets.
With the cookie, a POST must carry a same-origin ``Origin`` header (browsers send
one with fetch and sendBeacon) or, without ``Origin``, the header ``X-Continuity: 1``;
fetch calls should send that header anyway. The page sets no inline script:
the Content-Security-Policy allows scripts and styles from this origin only
(inline styles are allowed). Sizes: see :mod:`agent_continuity.service.inputs`.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from agent_continuity import ContinuityError, UserSessions
from agent_continuity.service import inputs
from agent_continuity.service.inputs import BadRequest
from agent_continuity.service.responder import ResponderUnavailable
from agent_continuity.service.state import Service

STATIC = Path(__file__).parent / "static"
COOKIE = "continuity_token"
COOKIE_DAYS = 30
CSRF_HEADER = "x-continuity"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")

#: The HTTP status of each library error code (the rest: 400).
STATUS = {
    "session-not-found": 404,
    "recovery-point-not-found": 404,
    "no-active-session": 409,
    "session-still-active": 409,
    "lease-held": 409,
    "corrupt-record": 409,
    "journal-missing": 409,
    "store-error": 503,
    "store-unavailable": 503,
    "store-not-found": 503,
    "incomplete-write": 503,
    "duplicate-record": 409,
}

_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "style-src 'self' 'unsafe-inline'; script-src 'self'; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
}


def error(status: int, code: str, message: str) -> JSONResponse:
    """The service's error reply: ``{"error": {"code", "message"}}``."""
    return JSONResponse({"error": {"code": code, "message": message}}, status, headers=_HEADERS)


def reply(data: Any, status: int = 200) -> Response:
    """A JSON reply (204 when there is nothing to say)."""
    if data is None:
        return Response(status_code=204, headers=_HEADERS)
    return JSONResponse(data, status, headers=_HEADERS)


Handler = Callable[[Request], Awaitable[Response]]
Scoped = Callable[[Request, UserSessions], Awaitable[Response]]


def _guarded(handler: Handler) -> Handler:
    """Turn every failure into the JSON error: 4xx for what the request did wrong."""

    async def run(request: Request) -> Response:
        try:
            return await handler(request)
        except BadRequest as exc:
            return error(exc.status, exc.code, exc.message)
        except ContinuityError as exc:
            return error(STATUS.get(exc.code, 400), exc.code, " ".join(str(exc).split()))
        except ResponderUnavailable as exc:
            return error(502, "responder-unavailable", str(exc))
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            return error(500, "internal-error", f"internal error: {type(exc).__name__}; a bug")

    return run


class Api:
    """The routes of one :class:`Service`."""

    def __init__(self, service: Service) -> None:
        self.service = service

    # -- authentication ---------------------------------------------------

    def _user(self, request: Request) -> str:
        header = request.headers.get("authorization")
        if header is not None:
            scheme, _, token = header.partition(" ")
            user = self.service.users.authenticate(token.strip())
            if scheme.lower() != "bearer" or user is None:
                raise BadRequest("the bearer token is not valid", "unauthorized", 401)
            return user
        cookie = request.cookies.get(COOKIE)
        found = self.service.users.authenticate(cookie) if cookie else None
        if found is None:
            raise BadRequest(
                "log in first: open the login URL `continuity serve` printed, or send "
                "Authorization: Bearer TOKEN (`continuity users add NAME` makes one)",
                "unauthorized",
                401,
            )
        if request.method not in SAFE_METHODS:
            _check_origin(request)
        return found

    def scoped(self, handler: Scoped) -> Handler:
        """A route that runs for the authenticated user, on that user's sessions only."""

        async def run(request: Request) -> Response:
            user = await run_in_threadpool(self._user, request)
            return await handler(request, self.service.sessions_of(user))

        return _guarded(run)

    # -- pages ------------------------------------------------------------

    async def index(self, request: Request) -> Response:
        """The web app."""
        page = STATIC / "index.html"
        if not page.is_file():
            return error(404, "not-found", "the web app's index.html is missing")
        return FileResponse(page, headers={**_HEADERS, "Cache-Control": "no-cache"})

    async def login(self, request: Request) -> Response:
        """Set the session cookie from ``?token=`` and go to the app."""
        token = inputs.query(request, "token") or ""
        user = await run_in_threadpool(self.service.users.authenticate, token)
        if user is None:
            return error(401, "unauthorized", "this login link is not valid; ask for a new one")
        response = RedirectResponse("/", 303, headers={**_HEADERS, "Cache-Control": "no-store"})
        response.set_cookie(
            COOKIE,
            token,
            max_age=COOKIE_DAYS * 86400,  # outlives a browser crash: the point of the app
            path="/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    async def logout(self, request: Request, mine: UserSessions) -> Response:
        """Forget the cookie."""
        response = Response(status_code=204, headers=_HEADERS)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return response

    async def me(self, request: Request, mine: UserSessions) -> Response:
        """Who is logged in, and how often the page must heartbeat."""
        ttl = self.service.config.browser_lease_ttl
        return reply(
            {
                "user": mine.user,
                "browserLeaseTtl": ttl,
                "heartbeatSeconds": round(max(ttl / 3, 0.05), 3),
                "responder": self.service.responder.name,
            }
        )

    # -- sessions ---------------------------------------------------------

    async def sessions(self, request: Request, mine: UserSessions) -> Response:
        """GET: the user's sessions; POST: start one."""
        if request.method == "GET":
            status = inputs.query(request, "status")
            return reply(await run_in_threadpool(mine.sessions, status or None))
        body = await inputs.read_body(request, required=False)
        inputs.only(body, {"type", "task", "phase"})
        kind = inputs.text(body, "type", limit=100) or "research"
        task, phase = inputs.text(body, "task"), inputs.text(body, "phase")
        record = await run_in_threadpool(lambda: mine.start(type=kind, task=task, phase=phase))
        return reply(record, 201)

    async def session(self, request: Request, mine: UserSessions) -> Response:
        """One session: ``show --json`` and its conversation."""
        return reply(await run_in_threadpool(mine.details, request.path_params["id"]))

    async def message(self, request: Request, mine: UserSessions) -> Response:
        """Record a message."""
        body = await inputs.read_body(request)
        inputs.only(body, {"role", "text"})
        role = inputs.text(body, "role", required=True, limit=20)
        text = inputs.text(body, "text", required=True, limit=inputs.MAX_TEXT)
        sid = request.path_params["id"]
        return reply(await run_in_threadpool(mine.message, sid, str(role), str(text)))

    async def assistant_reply(self, request: Request, mine: UserSessions) -> Response:
        """The assistant answers the conversation; its message is recorded."""
        body = await inputs.read_body(request, required=False)
        inputs.only(body, set())
        sid = request.path_params["id"]
        responder = self.service.responder
        answered = await run_in_threadpool(mine.reply, sid, responder.reply, inputs.MAX_TEXT)
        return reply({**answered, "responder": responder.name})

    async def update(self, request: Request, mine: UserSessions) -> Response:
        """Record progress as one group, plus tasks and notes."""
        body = await inputs.read_body(request)
        inputs.only(body, set(_UPDATE_LISTS) | set(_UPDATE_TEXTS) | _UPDATE_OTHER)
        changes: dict[str, Any] = {
            key: inputs.texts(body, name) for name, key in _UPDATE_LISTS.items() if name in body
        }
        for name, key in _UPDATE_TEXTS.items():
            limit = inputs.MAX_TEXT if name == "summary" else inputs.MAX_FIELD
            if name == "summary" and body.get(name) == "":
                changes[key] = ""  # the page's notes emptied: clearing them is a change too
            elif name in body:
                changes[key] = inputs.text(body, name, limit=limit)
        changes["progress"] = inputs.integer(body, "progress", 0, 100)
        changes["preferences"] = inputs.string_map(body, "preferences") or None
        tasks, notes = inputs.tasks(body), inputs.texts(body, "notes")
        sid = request.path_params["id"]
        return reply(
            await run_in_threadpool(lambda: mine.update(sid, tasks=tasks, notes=notes, **changes))
        )

    async def heartbeat(self, request: Request, mine: UserSessions) -> Response:
        """Renew the page's lease (``claim``: a page opening the session takes it afresh)."""
        body = await inputs.read_body(request, required=False)
        inputs.only(body, {"claim", "lease"})
        claim = bool(inputs.boolean_or_null(body, "claim"))
        lease = inputs.integer(body, "lease", 0, 2**62)
        sid = request.path_params["id"]
        return reply(await run_in_threadpool(lambda: mine.heartbeat(sid, claim=claim, lease=lease)))

    async def save(self, request: Request, mine: UserSessions) -> Response:
        """Make a recovery point now."""
        body = await inputs.read_body(request, required=False)
        inputs.only(body, {"trigger"})
        trigger = inputs.text(body, "trigger", limit=40) or "user-request"
        sid = request.path_params["id"]
        return reply(await run_in_threadpool(mine.save, sid, trigger))

    async def end(self, request: Request, mine: UserSessions) -> Response:
        """End the session: the page closed normally, now or after the grace (``deferred``).

        A body that is not a JSON object ends the session now, as before: a
        beacon sends what it likes. ``deferred`` and ``lease``, when given, are checked.
        """
        try:
            body = await inputs.read_body(request, required=False)
        except BadRequest as exc:
            if exc.code != "invalid-json":
                raise
            body = {}
        deferred = bool(inputs.boolean_or_null(body, "deferred"))
        lease = inputs.integer(body, "lease", 0, 2**62)
        sid = request.path_params["id"]
        return reply(await run_in_threadpool(lambda: mine.end(sid, deferred=deferred, lease=lease)))

    # -- recovery and analytics -------------------------------------------

    async def recovery(self, request: Request, mine: UserSessions) -> Response:
        """GET: the analysis of the user's interrupted session (or 204); POST: act on it."""
        if request.method == "GET":
            return reply(await run_in_threadpool(mine.recovery))
        body = await inputs.read_body(request, required=False)
        inputs.only(body, {"sessionId", "answer"})
        sid = inputs.text(body, "sessionId", limit=100)
        answer = inputs.boolean_or_null(body, "answer")
        return reply(await run_in_threadpool(mine.recover, sid, answer))

    async def recovery_log(self, request: Request, mine: UserSessions) -> Response:
        """The user's interruptions and recoveries (the sessions page shows them)."""
        return reply(await run_in_threadpool(mine.recovery_log))

    async def analytics(self, request: Request, mine: UserSessions) -> Response:
        """The user's analytics."""
        return reply(await run_in_threadpool(mine.analytics))

    async def search(self, request: Request, mine: UserSessions) -> Response:
        """Search the user's sessions: ``?q=WORDS[&limit=N]`` -> the ``search --json`` object."""
        query = inputs.query(request, "q")
        if query is None or not query.strip():
            raise BadRequest("give words to search for: /api/search?q=WORDS")
        given = inputs.query(request, "limit")
        limit = 20
        if given is not None:
            if not (given.isascii() and given.isdigit()) or len(given) > 4:
                raise BadRequest(f"'limit' must be a whole number from 1 to 1000, not {given!r}")
            limit = int(given)
        return reply(await run_in_threadpool(mine.search, query, limit))


_UPDATE_LISTS = {
    "complete": "complete",
    "next": "next_steps",
    "nextSteps": "next_steps",
    "blockers": "blockers",
    "unblock": "unblock",
    "decisions": "decisions",
    "files": "files",
    "pending": "pending",
    "pendingDone": "pending_done",
}
_UPDATE_TEXTS = {"task": "task", "phase": "phase", "step": "step", "summary": "summary"}
_UPDATE_OTHER = {"progress", "preferences", "tasks", "notes"}


def _check_origin(request: Request) -> None:
    """Refuse a cookie-authenticated write from another site (with SameSite=Strict: defence
    in depth against an old browser or a sibling subdomain)."""
    origin = request.headers.get("origin")
    own = f"{request.url.scheme}://{request.headers.get('host', '')}"
    if origin is not None:
        if origin != own:
            raise BadRequest(f"cross-site request refused (Origin {origin[:100]})", "csrf", 403)
    elif request.headers.get(CSRF_HEADER) is None:
        raise BadRequest(
            f"a write with the login cookie needs an Origin header or {CSRF_HEADER}: 1",
            "csrf",
            403,
        )


def build_app(service: Service, *, sweep: bool = True) -> Starlette:
    """The ASGI app of a service.

    Args:
        service: The service (store, users, responder).
        sweep: Run the lease sweeper while the app runs (off in tests that sweep by hand).
    """
    api = Api(service)
    sid = "/api/sessions/{id}"

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if sweep:
            service.start_sweeper()
        try:
            yield
        finally:
            service.close()

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 400
        code = {404: "not-found", 405: "method-not-allowed"}.get(status, "bad-request")
        detail = exc.detail if isinstance(exc, HTTPException) else "bad request"
        return error(status, code, f"{request.method} {request.url.path[:200]}: {detail}")

    routes = [
        Route("/", _guarded(api.index), methods=["GET"]),
        Route("/login", _guarded(api.login), methods=["GET"]),
        Route("/logout", api.scoped(api.logout), methods=["POST"]),
        Route("/api/me", api.scoped(api.me), methods=["GET"]),
        Route("/api/sessions", api.scoped(api.sessions), methods=["GET", "POST"]),
        Route(sid, api.scoped(api.session), methods=["GET"]),
        Route(sid + "/messages", api.scoped(api.message), methods=["POST"]),
        Route(sid + "/reply", api.scoped(api.assistant_reply), methods=["POST"]),
        Route(sid + "/update", api.scoped(api.update), methods=["POST"]),
        Route(sid + "/heartbeat", api.scoped(api.heartbeat), methods=["POST"]),
        Route(sid + "/save", api.scoped(api.save), methods=["POST"]),
        Route(sid + "/end", api.scoped(api.end), methods=["POST"]),
        Route("/api/recovery", api.scoped(api.recovery), methods=["GET", "POST"]),
        Route("/api/recovery/log", api.scoped(api.recovery_log), methods=["GET"]),
        Route("/api/analytics", api.scoped(api.analytics), methods=["GET"]),
        Route("/api/search", api.scoped(api.search), methods=["GET"]),
        Mount("/static", StaticFiles(directory=STATIC, check_dir=False), name="static"),
    ]
    return Starlette(
        routes=routes, lifespan=lifespan, exception_handlers={HTTPException: http_error}
    )
