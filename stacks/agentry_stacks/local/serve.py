"""``agentry local serve``: the embedded environment's HTTP API on 127.0.0.1, signed as on AWS.

One :class:`LocalEnvironment` stays open, so separate ``agentry agents --local`` commands
share its agents. Each request goes where API Gateway would send it:

1. an unknown route is ``404 {"message": "Not Found"}`` (API Gateway matches routes first);
2. the SigV4 signature is verified (:mod:`~agentry_stacks.local.signature`): a refusal is
   ``403 {"message": ...}``; the signing key names the caller;
3. the api function gets an HTTP API v2 event whose IAM authorizer context carries that
   caller, and its answer goes back as is;
4. then the environment runs until idle (stream, queues, state machines), so the agent
   progresses, and the answer is sent; a background tick runs it again for work that comes
   due later.

moto and the environment are not thread-safe: every use of the environment holds
:attr:`LocalApiServer.lock` (a test that reads the environment directly takes it too).
Answering only once the environment is idle means a caller's next request sees the agent
settled, and nothing of the environment runs while a caller in the same process (a test)
prints: the local functions redirect the process's stdout while they run, as Lambda keeps
their output in their logs.
"""

from __future__ import annotations

import json
import threading
import traceback
from collections.abc import Callable
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from rich.console import Console
from rich.markup import escape

from agentry_stacks.client.target import LOCAL_HOST
from agentry_stacks.local.environment import LocalEnvironment
from agentry_stacks.local.progress import ProgressPrinter
from agentry_stacks.local.signature import (
    KeyTable,
    ReceivedRequest,
    SignatureRefusedError,
    SignatureVerifier,
    SigningKey,
)

__all__ = ["MAX_BODY_BYTES", "LocalApiServer", "Response", "render_banner"]

#: API Gateway's HTTP API payload limit.
MAX_BODY_BYTES = 10 * 1024 * 1024

#: ``(status, JSON body or None)``.
Response = tuple[int, Any]


class LocalApiServer:
    """Serves ``env``'s HTTP API on 127.0.0.1:``port`` (0: any free port) to ``keys``.

    ``tick`` is the period in seconds of the background run (``None``: none; each request
    still runs the environment until idle). ``console`` shows requests and the environment's
    events; ``None`` keeps the server quiet.
    """

    def __init__(
        self,
        env: LocalEnvironment,
        keys: KeyTable,
        *,
        port: int = 0,
        tick: float | None = 1.0,
        console: Console | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.env = env
        self.keys = keys
        self.region = env.graph.region()
        self.verifier = (
            SignatureVerifier(keys, self.region, clock=clock)
            if clock is not None
            else SignatureVerifier(keys, self.region)
        )
        self.lock = threading.Lock()
        self.port = port
        self.tick = tick
        self.console = console
        self._httpd: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        if console is not None:
            env.subscribe(ProgressPrinter(console))

    @property
    def url(self) -> str:
        """The base URL clients call (``http://127.0.0.1:PORT``)."""
        return f"http://{LOCAL_HOST}:{self.port}"

    # --- lifecycle --------------------------------------------------------------------------

    def __enter__(self) -> LocalApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> LocalApiServer:
        """Listen (``OSError`` if the port is taken) and serve from background threads."""
        if self._httpd is not None:
            return self
        httpd = ThreadingHTTPServer((LOCAL_HOST, self.port), _handler_for(self))
        httpd.daemon_threads = True
        self._httpd = httpd
        self.port = int(httpd.server_address[1])
        self._stopping.clear()
        serving = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._threads = [serving]
        if self.tick is not None:
            self._threads.append(threading.Thread(target=self._tick_loop, daemon=True))
        for thread in self._threads:
            thread.start()
        return self

    def wait(self) -> None:
        """Block until :meth:`stop` (a KeyboardInterrupt reaches the caller: Ctrl-C)."""
        # A timed wait, so the main thread sees Ctrl-C on every platform.
        while not self._stopping.wait(0.5):
            pass

    def stop(self) -> None:
        """Stop listening, let the request in progress finish, release the port."""
        if self._httpd is None:
            return
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        for thread in self._threads:
            thread.join(timeout=30)
        # The handler threads are daemons: wait for the one holding the environment.
        with self.lock:
            self._httpd = None

    # --- requests ---------------------------------------------------------------------------

    def respond(self, request: ReceivedRequest) -> tuple[Response, SigningKey | None]:
        """The answer to ``request`` (call with :attr:`lock` held) and the key that signed it."""
        parts = urlsplit(request.target)
        path = parts.path
        if self.env.route_of(request.method, path) is None:
            return (404, {"message": "Not Found"}), None
        try:
            key = self.verifier.verify(request)
        except SignatureRefusedError as exc:
            return (403, {"message": str(exc)}), None
        try:
            text = request.body.decode("utf-8") if request.body else None
        except UnicodeDecodeError:
            return (400, {"message": "the body is not UTF-8 text"}), key
        status, answer = self.env.call(
            request.method,
            path,
            text,
            headers=_joined(request.headers, lower=True),
            query=_joined(parse_qsl(parts.query, keep_blank_values=True)),
            caller=key.principal,
        )
        if request.method == "POST" and path == "/agents" and status == 202:
            self.env.watch_agent(str(answer["agentId"]))
        return (status, answer), key

    def settle(self) -> None:
        """Run the environment until idle (call with :attr:`lock` held); errors are shown."""
        try:
            self.env.run_until_idle()
        except Exception as exc:  # the server keeps serving; the console says what broke
            self._say(f"[bold red]run failed:[/] {escape(repr(exc))}")

    def _tick_loop(self) -> None:
        assert self.tick is not None
        while not self._stopping.wait(self.tick):
            with self.lock:
                self.settle()

    def _say(self, markup: str) -> None:
        if self.console is not None:
            self.console.print(markup, highlight=False)

    def _log(self, request: ReceivedRequest, status: int, key: SigningKey | None) -> None:
        who = key.principal if key is not None else "-"
        style = "green" if status < 400 else "yellow" if status < 500 else "bold red"
        self._say(
            f"[{style}]{status}[/] {escape(request.method)} {escape(request.target)} "
            f"[dim]{escape(who)}[/]"
        )


def _joined(pairs: Any, *, lower: bool = False) -> dict[str, str]:
    """Header or query pairs as API Gateway hands them on: repeated names joined by commas."""
    joined: dict[str, str] = {}
    for name, value in pairs:
        name = name.lower() if lower else name
        joined[name] = f"{joined[name]},{value}" if name in joined else value
    return joined


def _handler_for(server: LocalApiServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "agentry-local-serve"

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def do_PUT(self) -> None:
            self._serve()

        def do_PATCH(self) -> None:
            self._serve()

        def do_DELETE(self) -> None:
            self._serve()

        def do_OPTIONS(self) -> None:
            self._serve()

        def log_message(self, format: str, *args: Any) -> None:
            # Requests are logged by the server, with the caller; not as stderr lines.
            return

        def _serve(self) -> None:
            body, problem = self._read_body()
            request = ReceivedRequest(self.command, self.path, list(self.headers.items()), body)
            if problem is not None:
                with server.lock:  # the console prints under the lock, like everything else
                    server._log(request, problem[0], None)
                self._write(problem)
                return
            with server.lock:
                try:
                    response, key = server.respond(request)
                except Exception:  # a crash of the environment: API Gateway's 500
                    server._say(f"[bold red]{escape(traceback.format_exc())}[/]")
                    response, key = (500, {"message": "Internal Server Error"}), None
                server._log(request, response[0], key)
                if key is not None:
                    server.settle()
            # Answered once the environment is idle and released: the caller's next request
            # sees the agent settled, and a slow reader never holds up the environment.
            self._write(response)

        def _read_body(self) -> tuple[bytes, Response | None]:
            if self.headers.get("Transfer-Encoding"):
                self.close_connection = True
                return b"", (411, {"message": "Length Required"})
            raw = self.headers.get("Content-Length", "0")
            if not raw.isascii() or not raw.isdigit():
                self.close_connection = True
                return b"", (400, {"message": "Bad Request"})
            length = int(raw)
            if length > MAX_BODY_BYTES:
                self.close_connection = True
                return b"", (413, {"message": "Request Entity Too Large"})
            return self.rfile.read(length), None

        def _write(self, response: Response) -> None:
            status, answer = response
            data = b"" if answer is None else json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()

    return Handler


def render_banner(
    server: LocalApiServer, developer: SigningKey, console: Console, *, stack: str
) -> None:
    """What ``agentry local serve`` prints at start-up: where, which keys, how to call it."""
    console.print(
        f"[bold]agentry local serve[/]: stack [bold]{escape(stack)}[/] at "
        f"[bold]{server.url}[/] (SigV4: execute-api, {server.region})",
        highlight=False,
        soft_wrap=True,
    )
    for key in server.keys:
        mark = " (developer)" if key is developer else ""
        line = f"  key {key.access_key_id} -> {escape(key.principal)}{mark}"
        console.print(line, highlight=False, soft_wrap=True)
    console.print("Sign as the developer from another shell:", highlight=False, soft_wrap=True)
    console.print(
        f"  export AWS_ACCESS_KEY_ID={developer.access_key_id} "
        f"AWS_SECRET_ACCESS_KEY={developer.secret_access_key} AWS_REGION={server.region}; "
        "unset AWS_SESSION_TOKEN",
        highlight=False,
        soft_wrap=True,
    )
    console.print(
        f"  agentry agents start --local --port {server.port} --goal '...'",
        highlight=False,
        soft_wrap=True,
    )
    console.print("Ctrl-C stops the server.", highlight=False, soft_wrap=True)
