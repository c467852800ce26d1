"""``evidence-gate serve``: the local host for the function app, on waitress (WSGI).

It serves the function objects of ``function_app`` (its process-wide app, or an app built with
:func:`function_app.build_app` around services the caller made), through the azure-functions
request and event types, at the Functions host's own local URLs, so the same requests work
against ``func start``:

- HTTP functions: ``/api/<route>`` (``func.HttpRequest`` in, ``func.HttpResponse`` out);
- Event Grid functions: ``POST /runtime/webhooks/eventgrid?functionName=<name>`` with
  ``aeg-event-type: Notification`` (each element of the array decoded by the azure-functions
  Event Grid converter into ``func.EventGridEvent`` or ``func.CloudEvent``; a raised exception
  answers 503 for the whole delivery so Event Grid redelivers) or ``SubscriptionValidation``
  (answered ``{"validationResponse": code}``);
- timer functions on their schedule (6-field NCRONTAB with ``*``, ``*/N``, lists and ranges in
  the second/minute/hour fields, or an ``hh:mm:ss`` interval), in a background thread;
- the Teams notifier over the local store once a minute when ``TEAMS_WEBHOOK_URL`` is set;
- queue-trigger functions (the intake) polled like the Functions host when ``EVIDENCE_GATE_INTAKE``
  is configured (:mod:`shared.intake.poller`), also with ``--no-timer``.
"""

from __future__ import annotations

import http
import json
import logging
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl
from wsgiref.util import request_uri

import azure.functions as func
from azure.functions.timer import TimerRequest

from shared import settings
from shared.errors import BadInput

if TYPE_CHECKING:
    from shared.services import Services

log = logging.getLogger("evidence_gate.serve")

MAX_REQUEST_BYTES = 8 << 20  # the host's own cap, answered 413 (the functions enforce their 1 MiB limit themselves)
READ_LIMIT_BYTES = 64 << 20  # waitress reads bodies up to this much, so a body over the cap gets its 413, not a reset
EVENTGRID_PATH = "/runtime/webhooks/eventgrid"
NOTIFY_INTERVAL_SECONDS = 60


@dataclass(frozen=True)
class Function:
    name: str
    trigger: dict
    call: Callable  # the user function registered in the app
    arg_name: str

    def invoke(self, value):
        return self.call(**{self.arg_name: value})


def functions_of(functions: Iterable) -> dict[str, Function]:
    out = {}
    for fn in functions:
        meta = json.loads(fn.get_function_json())
        trigger = next(b for b in meta["bindings"] if b.get("direction") == "IN" and b["type"].endswith("Trigger"))
        out[fn.get_function_name()] = Function(fn.get_function_name(), trigger, fn.get_user_function(), trigger["name"])
    return out


def _json(status: int, body: dict) -> tuple[int, list[tuple[str, str]], bytes]:
    return status, [("Content-Type", "application/json")], json.dumps(body).encode()


class FunctionHost:
    """The WSGI application, serving these function objects."""

    def __init__(self, registered: Iterable[func.Function]):
        self.functions = functions_of(registered)
        self.http = {f.trigger.get("route", f.name).strip("/").lower(): f
                     for f in self.functions.values() if f.trigger["type"] == "httpTrigger"}
        self.eventgrid = {f.name: f for f in self.functions.values() if f.trigger["type"] == "eventGridTrigger"}
        self.timers = {f.name: f for f in self.functions.values() if f.trigger["type"] == "timerTrigger"}
        self.queues = {f.name: f for f in self.functions.values() if f.trigger["type"] == "queueTrigger"}

    # -- WSGI --------------------------------------------------------------------------------
    def __call__(self, environ, start_response):
        try:
            status, headers, body = self.dispatch(environ)
        except Exception:  # a host bug: never leak a traceback to the sender
            log.exception("serve: unhandled error")
            status, headers, body = _json(500, {"error": "internal_error"})
        headers = [*headers, ("Content-Length", str(len(body)))]
        start_response(f"{status} {http.HTTPStatus(status).phrase}", headers)
        return [body]

    def dispatch(self, environ) -> tuple[int, list[tuple[str, str]], bytes]:
        path = environ.get("PATH_INFO") or "/"
        method = environ.get("REQUEST_METHOD", "GET").upper()
        if path == "/":
            return _json(200, {"functions": sorted(self.functions)})
        length = environ.get("CONTENT_LENGTH") or ""
        if length.isdigit() and int(length) > MAX_REQUEST_BYTES:
            return _json(413, {"error": "too_large", "message": f"body is {length} bytes; the limit is {MAX_REQUEST_BYTES}"})
        if path.lower().startswith("/api/"):
            function = self.http.get(path[len("/api/"):].strip("/").lower())
            if function is None:
                return _json(404, {"error": "not_found", "message": f"no HTTP function at {path}"})
            methods = [m.upper() for m in function.trigger.get("methods") or ["GET", "POST"]]
            if method not in methods:
                return 405, [("Allow", ", ".join(methods)), ("Content-Type", "application/json")], json.dumps(
                    {"error": "method_not_allowed", "message": f"{path} accepts {', '.join(methods)}"}).encode()
            return self._http(function, environ, method)
        if path.rstrip("/").lower() == EVENTGRID_PATH:
            if method != "POST":
                return _json(405, {"error": "method_not_allowed", "message": "Event Grid deliveries are POSTs"})
            return self._eventgrid(environ)
        return _json(404, {"error": "not_found", "message": f"nothing at {path}"})

    @staticmethod
    def _body(environ) -> bytes:
        stream = environ["wsgi.input"]
        length = environ.get("CONTENT_LENGTH")
        if length and length.isdigit():
            return stream.read(int(length))
        return stream.read()

    @staticmethod
    def _headers(environ) -> dict[str, str]:
        headers = {}
        for key, value in environ.items():
            if key.startswith("HTTP_"):
                headers[key[5:].replace("_", "-").title()] = value
            elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
                headers[key.replace("_", "-").title()] = value
        return headers

    def _http(self, function: Function, environ, method: str):
        request = func.HttpRequest(
            method=method,
            url=request_uri(environ),
            headers=self._headers(environ),
            params=dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True)),
            route_params={},
            body=self._body(environ),
        )
        response: func.HttpResponse = function.invoke(request)
        headers = [(k, v) for k, v in response.headers.items() if k.lower() != "content-length"]
        if not any(k.lower() == "content-type" for k, _ in headers):
            mimetype = response.mimetype or "text/plain"
            headers.append(("Content-Type", f"{mimetype}; charset={response.charset}" if response.charset else mimetype))
        return response.status_code, headers, response.get_body() or b""

    def _eventgrid(self, environ):
        from azure.functions import meta
        from azure.functions.eventgrid import EventGridEventInConverter

        params = dict(parse_qsl(environ.get("QUERY_STRING", "")))
        name = params.get("functionName") or params.get("functionname")
        function = self.eventgrid.get(name or "")
        if function is None:
            return _json(404, {"error": "not_found", "message": f"no Event Grid function named {name!r}"})
        kind = (self._headers(environ).get("Aeg-Event-Type") or "").strip()
        try:
            payload = json.loads(self._body(environ).decode("utf-8-sig"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            return _json(400, {"error": "bad_input", "message": "body is not JSON"})
        events = payload if isinstance(payload, list) else [payload]
        if not events or not all(isinstance(e, dict) for e in events):
            return _json(400, {"error": "bad_input", "message": "body must be an event object or an array of events"})
        if kind == "SubscriptionValidation":
            for event in events:
                code = (event.get("data") or {}).get("validationCode") if isinstance(event.get("data"), dict) else None
                if code:
                    return _json(200, {"validationResponse": code})
            return _json(400, {"error": "bad_input", "message": "no data.validationCode in the validation event"})
        if kind != "Notification":
            return _json(400, {"error": "bad_input", "message": "aeg-event-type must be Notification or SubscriptionValidation"})
        for event in events:
            decoded = EventGridEventInConverter.decode(meta.Datum(json.dumps(event), "json"), trigger_metadata={})
            try:
                function.invoke(decoded)
            except Exception as exc:  # the runtime would fail the invocation: Event Grid redelivers
                log.warning("serve: %s raised %s: %s; answering 503 so Event Grid redelivers", name, type(exc).__name__, exc)
                return _json(503, {"error": "retry", "message": f"{type(exc).__name__}: {str(exc)[:300]}"})
        return 200, [], b""


# -- schedules ------------------------------------------------------------------------------------
_TIMESPAN = re.compile(r"^(\d{1,2}):(\d{2}):(\d{2})$")


def _field(spec: str, low: int, high: int) -> set[int]:
    values: set[int] = set()
    for part in spec.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            if not step_text.isdigit() or int(step_text) == 0:
                raise BadInput(f"bad step in '{spec}'")
            step = int(step_text)
        if part == "*":
            start, end = low, high
        elif "-" in part:
            a, b = part.split("-", 1)
            if not (a.isdigit() and b.isdigit()):
                raise BadInput(f"bad range in '{spec}'")
            start, end = int(a), int(b)
        elif part.isdigit():
            start = end = int(part)
            if "/" in spec:
                end = high
        else:
            raise BadInput(f"bad field '{spec}'")
        if start < low or end > high or start > end:
            raise BadInput(f"'{spec}' is out of range {low}-{high}")
        values.update(range(start, end + 1, step))
    return values


class Schedule:
    """A 6-field NCRONTAB (``sec min hour day month day-of-week``; day, month and day-of-week
    must be ``*``) or an ``hh:mm:ss`` interval."""

    def __init__(self, text: str):
        self.text = text.strip()
        match = _TIMESPAN.match(self.text)
        if match:
            h, m, s = (int(g) for g in match.groups())
            self.interval = h * 3600 + m * 60 + s
            if self.interval <= 0:
                raise BadInput(f"schedule '{text}' is an empty interval")
            return
        self.interval = None
        fields = self.text.split()
        if len(fields) != 6:
            raise BadInput(f"schedule '{text}' is not a 6-field NCRONTAB expression (sec min hour day month day-of-week)")
        if any(f != "*" for f in fields[3:]):
            raise BadInput(f"schedule '{text}': evidence-gate serve supports '*' only in the day, month and day-of-week fields")
        self.seconds, self.minutes, self.hours = _field(fields[0], 0, 59), _field(fields[1], 0, 59), _field(fields[2], 0, 23)

    def next_after(self, now: datetime) -> datetime:
        if self.interval is not None:
            return now + timedelta(seconds=self.interval)
        t = now.replace(microsecond=0) + timedelta(seconds=1)
        for _ in range(86_400 + 1):
            if t.second in self.seconds and t.minute in self.minutes and t.hour in self.hours:
                return t
            t += timedelta(seconds=1)
        raise BadInput(f"schedule '{self.text}' never fires")


def schedule_of(function: Function) -> Schedule:
    text = function.trigger.get("schedule", "")
    match = re.fullmatch(r"%([A-Za-z0-9_]+)%", text)
    if match:  # app setting reference, resolved like the Functions host does
        text = settings.get(match.group(1)) or ""
    return Schedule(text)


class Background:
    """Timer functions on their schedules and the local Teams notifier, in daemon threads."""

    def __init__(self, host: FunctionHost, services: Callable[[], Services],
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC), notify_interval: float = NOTIFY_INTERVAL_SECONDS):
        self.host = host
        self.services = services
        self.clock = clock
        self.notify_interval = notify_interval
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.schedules = {name: schedule_of(f) for name, f in host.timers.items()}

    def start(self) -> Background:
        for name, function in self.host.timers.items():
            self._spawn(f"timer-{name}", self._timer_loop, function, self.schedules[name])
        if settings.get("TEAMS_WEBHOOK_URL"):
            self._spawn("notify-teams", self._notify_loop)
        return self

    def _spawn(self, name, target, *args):
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def _timer_loop(self, function: Function, schedule: Schedule) -> None:
        while not self.stop.is_set():
            due = schedule.next_after(self.clock())
            if self.stop.wait(max(0.0, (due - self.clock()).total_seconds())):
                return
            try:
                function.invoke(TimerRequest(past_due=False))
            except Exception:
                log.exception("serve: timer function %s failed", function.name)

    def _notify_loop(self) -> None:
        from shared.sinks.teams import notifier_from_settings, notify_pending

        notifier = notifier_from_settings()
        while notifier is not None and not self.stop.wait(self.notify_interval):
            try:
                counts = notify_pending(self.services().store, notifier)
                if any(counts.values()):
                    log.info("serve: teams %s", counts)
            except Exception:
                log.exception("serve: teams notifier pass failed")

    def shutdown(self, timeout: float = 5) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout)


# -- the server -----------------------------------------------------------------------------------
class LocalHost:
    """waitress + :class:`FunctionHost` + :class:`Background`; ``run()`` blocks, ``close()`` stops.

    ``services``: what the functions check with (default: ``function_app``'s, built from the
    settings on the first event)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 7071, services: Callable[[], Services] | None = None,
                 background: bool = True, threads: int = 8, notify_interval: float = NOTIFY_INTERVAL_SECONDS):
        from waitress import create_server

        import function_app

        if services is None:
            services, registered = function_app.services, function_app.functions()
        else:
            registered = function_app.build_app(services).get_functions()
        self.wsgi = FunctionHost(registered)
        self.background = Background(self.wsgi, services, notify_interval=notify_interval) if background else None
        from shared.intake.poller import QueueHost

        self.queue_host = QueueHost(self.wsgi.queues.values(), Path(__file__).resolve().parents[1] / "host.json",
                                    services)
        self.server = create_server(self.wsgi, host=host, port=port, threads=threads,
                                    max_request_body_size=READ_LIMIT_BYTES, ident="evidence-gate")
        self.host = host
        self.port = self.server.effective_port

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def routes(self) -> Iterable[str]:
        for f in self.wsgi.http.values():
            yield f"  {f.name:<30} POST {self.base_url}/api/{f.trigger['route']}"
        for f in self.wsgi.eventgrid.values():
            yield f"  {f.name:<30} POST {self.base_url}{EVENTGRID_PATH}?functionName={f.name}"
        for name in self.wsgi.timers:
            schedule = self.background.schedules[name] if self.background else schedule_of(self.wsgi.timers[name])
            when = schedule.next_after(datetime.now(UTC)).isoformat(timespec="seconds").replace("+00:00", "Z")
            yield f"  {name:<30} timer '{schedule.text}' (next {when})" + ("" if self.background else " [off]")
        teams = f"every {self.background.notify_interval if self.background else NOTIFY_INTERVAL_SECONDS:g} s from the local store" if settings.get("TEAMS_WEBHOOK_URL") else "off (TEAMS_WEBHOOK_URL not set)"
        yield f"  {'teams notifier':<30} {teams}"
        yield from self.queue_host.routes()

    def start_background(self) -> LocalHost:
        if self.background:
            self.background.start()
        self.queue_host.start()
        return self

    def run(self) -> None:
        self.server.run()  # returns after KeyboardInterrupt/SystemExit (waitress shuts its workers down)

    def serve_in_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.server.run, name="evidence-gate-serve", daemon=True)
        thread.start()
        return thread

    def close(self) -> None:
        self.queue_host.shutdown()
        if self.background:
            self.background.shutdown()
        try:
            self.server.task_dispatcher.shutdown(timeout=5)
        finally:
            self.server.close()
