"""A local stand-in for the Anthropic Messages API that the real Claude Code CLI can talk to.

Replies are scripted by a directive in the conversation's latest typed user text::

    SCRIPT: bash, bash, agent, text

The n-th reply after that text plays the n-th step (a step past the end plays ``text``):
``bash`` answers with a Bash tool call, ``agent`` with an Agent tool call whose prompt is
``SCRIPT: bash`` (a subagent that runs one command), ``text`` ends the turn. Variants of ``agent``:
``fgagent`` asks for a foreground subagent (``run_in_background: false``, Claude Code >= 2.1.198 runs
subagents in the background by default), ``fork`` for a fork subagent (``subagent_type: "fork"``,
2.1.232+), ``longagent`` for a subagent that runs six commands (``longfgagent`` in the foreground,
``longfork`` a fork), ``cutagent`` a foreground subagent whose second request is ``cutbash``; ``bgbash`` is a Bash call with
``run_in_background: true``; ``slowbash`` one that takes a minute. ``fail`` answers
HTTP 500 (``api_error``) and ``reject`` HTTP 400 (``invalid_request_error``), with no usage and
``x-should-retry: false`` so the CLI gives up at once and ends the turn with ``StopFailure``.
``cut`` sends the response's ``message_start`` (with its usage) and then drops the connection, as a
network cut mid-stream does; the CLI retries the same request, which this time plays ``text``
(``cutbash``: ``bash``). The cut attempt is kept in ``sent`` with what its ``message_start`` said
(the input counts, 1 output token): that is what the API charged for it.

Every reply carries made-up but deterministic usage (with ``FakeAPI(stable_usage=True)`` the
same step of the same script gets the same usage in every session), and the server keeps a
record of each one it sent, so tests can compare what Claude Code reports and what the hook
counted with what was really spent.

A reply names the model the request asked for; ``FakeAPI(model="claude-haiku-4-5")`` answers as
that model whatever was asked. ``FakeAPI(usage=fn)`` reshapes each reply's usage: ``fn(n, usage)``
gets the reply's number and the made-up usage and returns the usage to send, which may also carry
what the four counts do not: ``cache_creation`` (the 5-minute / 1-hour split of the cache writes;
by default all 5-minute), ``server_tool_use`` (``web_search_requests``), ``speed`` (``"fast"``),
``service_tier``, ``inference_geo``.

Run it by hand with ``python tests/fakeapi.py [PORT]``.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

MODEL = "claude-sonnet-4-5-20250929"
_SCRIPT = re.compile(r"SCRIPT:\s*([a-z ,]+)")
_ERRORS = {"fail": (500, "api_error"), "reject": (400, "invalid_request_error")}
_CUTS = {"cut": "text", "cutbash": "bash"}  # cut once after message_start, then the retry plays this
_AGENTS = {
    "agent": ("general-purpose", "bash, text", None),
    "fgagent": ("general-purpose", "bash, text", False),
    "fork": ("fork", "bash, text", None),
    "longagent": ("general-purpose", "bash, bash, bash, bash, bash, bash, text", None),
    "longfgagent": ("general-purpose", "bash, bash, bash, bash, bash, bash, text", False),
    "cutagent": ("general-purpose", "bash, cutbash, text", False),
    "longfork": ("fork", "bash, bash, bash, bash, bash, bash, text", None),
}


@dataclass
class Sent:
    """One response the server sent."""

    message_id: str
    request_id: str
    model: str
    usage: dict[str, Any]  # the four counts, and whatever else ``FakeAPI.usage`` added
    step: str
    subagent: bool
    cut: bool = False  # the stream was dropped after message_start (see ``cut``)


@dataclass
class FakeAPI:
    host: str = "127.0.0.1"
    port: int = 0
    sent: list[Sent] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)
    #: give the same usage to the same point of the same script in every session
    #: (by default usage also depends on the request's bytes and arrival order)
    stable_usage: bool = False
    #: answer as this model (None: as the model the request asked for)
    model: str | None = None
    #: ``(reply number, made-up usage) -> usage to send`` (None: send the made-up usage)
    usage: Callable[[int, dict[str, int]], dict[str, Any]] | None = None
    #: extra headers on every Messages answer, e.g. a subscription's rate-limit windows (see rate_limits)
    headers: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _counter: int = 0
    _cut: set[str] = field(default_factory=set)  # requests already cut once (their retry plays on)

    def start(self) -> FakeAPI:
        api = self

        class Handler(_Handler):
            server_api = api

        self._httpd = ThreadingHTTPServer((self.host, self.port), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def next_ids(self) -> tuple[int, str, str]:
        with self._lock:
            self._counter += 1
            n = self._counter
        return n, f"msg_fake{n:06d}", f"req_fake{n:06d}"

    def record(self, sent: Sent) -> None:
        with self._lock:
            self.sent.append(sent)

    @property
    def requests(self) -> int:
        """How many Messages requests arrived (answered or failed; ``count_tokens`` excluded)."""
        with self._lock:
            return self._counter

    def totals(self) -> dict[str, int]:
        """Sum of every usage field over every response sent."""
        out = {"input": 0, "output": 0, "cache_creation": 0, "cache_read": 0}
        with self._lock:
            for s in self.sent:
                out["input"] += s.usage["input_tokens"]
                out["output"] += s.usage["output_tokens"]
                out["cache_creation"] += s.usage["cache_creation_input_tokens"]
                out["cache_read"] += s.usage["cache_read_input_tokens"]
        return out

    def rate_limits(
        self,
        five_hour: float,
        seven_day: float,
        *,
        five_hour_reset: int,
        seven_day_reset: int,
        status: str = "allowed",
    ) -> None:
        """Answer from now on as the API does a subscription login: the unified rate-limit headers
        (utilization 0–1, resets in epoch seconds), which Claude Code started with
        ``CLAUDE_CODE_OAUTH_TOKEN`` reads and passes to the statusLine as ``rate_limits``."""
        prefix = "anthropic-ratelimit-unified"
        with self._lock:
            self.headers = {
                f"{prefix}-status": status,
                f"{prefix}-5h-utilization": f"{five_hour:g}",
                f"{prefix}-5h-reset": str(five_hour_reset),
                f"{prefix}-5h-status": status,
                f"{prefix}-7d-utilization": f"{seven_day:g}",
                f"{prefix}-7d-reset": str(seven_day_reset),
                f"{prefix}-7d-status": "allowed",
                f"{prefix}-representative-claim": "five_hour",
                f"{prefix}-reset": str(five_hour_reset),
            }

    def reset(self) -> None:
        with self._lock:
            self.sent.clear()
            self.errors.clear()


def _texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    out = []
    if isinstance(content, list):
        for block in content:
            if isinstance(block, dict) and block.get("type") == "text":
                out.append(str(block.get("text", "")))
    return out


def plan(body: dict[str, Any]) -> tuple[str, bool]:
    """Which step to play for this request, and whether it looks like a subagent's."""
    messages = body.get("messages") or []
    last_typed = -1
    for i, m in enumerate(messages):
        if m.get("role") != "user":
            continue
        content = m.get("content")
        blocks = content if isinstance(content, list) else [{"type": "text", "text": content}]
        has_result = any(isinstance(b, dict) and b.get("type") == "tool_result" for b in blocks)
        texts = _texts(content)
        # A fork subagent's directive arrives next to the tool_result of the call that spawned it.
        typed = not has_result or any("SUBAGENT" in t for t in texts)
        if typed and any(_SCRIPT.search(t) for t in texts):
            last_typed = i
    if last_typed < 0:
        return "text", False
    script = ""
    for t in _texts(messages[last_typed].get("content")):
        m = _SCRIPT.search(t)
        if m:
            script = m.group(1)
    steps = [s.strip() for s in script.split(",") if s.strip()]
    done = sum(1 for m in messages[last_typed + 1 :] if m.get("role") == "assistant")
    step = steps[done] if done < len(steps) else "text"
    subagent = "SUBAGENT" in "".join(_texts(messages[last_typed].get("content")))
    return step, subagent


def usage_for(n: int, body_bytes: bytes) -> dict[str, int]:
    h = hashlib.sha256(body_bytes + str(n).encode()).digest()
    return {
        "input_tokens": 3 + h[0] % 50,
        "cache_creation_input_tokens": 1000 + int.from_bytes(h[1:3], "big") % 4000,
        "cache_read_input_tokens": 2000 + int.from_bytes(h[3:5], "big") % 9000,
        "output_tokens": 20 + int.from_bytes(h[5:7], "big") % 700,
    }


class _Handler(BaseHTTPRequestHandler):
    server_api: FakeAPI
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _read_body(self) -> bytes:
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""

    def _json(self, status: int, obj: Any) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_HEAD(self) -> None:
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        if self.path == "/_fake/stats":
            api = self.server_api
            self._json(200, {"requests": len(api.sent), "totals": api.totals()})
            return
        self._json(404, {"type": "error", "error": {"type": "not_found_error", "message": "no"}})

    def do_POST(self) -> None:
        raw = self._read_body()
        path = self.path.split("?", 1)[0]
        if path.endswith("/count_tokens"):
            self._json(200, {"input_tokens": 100})
            return
        if not path.endswith("/v1/messages"):
            self._json(404, {"type": "error", "error": {"type": "not_found_error", "message": path}})
            return
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._json(400, {"type": "error", "error": {"type": "invalid_request_error", "message": "json"}})
            return
        api = self.server_api
        n, msg_id, req_id = api.next_ids()
        step, subagent = plan(body)
        if step in _ERRORS:
            status, kind = _ERRORS[step]
            with api._lock:
                api.errors.append((status, req_id))
            self.send_response(status)
            data = json.dumps({"type": "error", "error": {"type": kind, "message": f"fake {step}"}}).encode()
            self.send_header("content-type", "application/json")
            self.send_header("request-id", req_id)
            self.send_header("x-should-retry", "false")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        cut = False
        if step in _CUTS:
            key = hashlib.sha256(json.dumps(body.get("messages"), sort_keys=True).encode()).hexdigest()
            with api._lock:
                cut = key not in api._cut
                api._cut.add(key)
            step = "text" if cut else _CUTS[step]
        tools = {t.get("name") for t in body.get("tools") or [] if isinstance(t, dict)}
        if step in _AGENTS and not ({"Agent", "Task"} & tools):
            step = "text"
        if step in ("bash", "bgbash", "slowbash") and "Bash" not in tools:
            step = "text"
        if api.stable_usage:
            usage = usage_for(0, f"{subagent}|{len(body.get('messages') or [])}|{step}".encode())
        else:
            usage = usage_for(n, raw)
        sent_usage: dict[str, Any] = dict(usage)
        if api.usage is not None:
            sent_usage = dict(api.usage(n, dict(usage)))
        model = api.model or str(body.get("model") or MODEL)
        if cut:  # what the API charges for a stream dropped after message_start: its input, 1 output token
            sent_usage["output_tokens"] = 1
        api.record(Sent(msg_id, req_id, model, sent_usage, step, subagent, cut))
        self._stream(body, msg_id, req_id, model, step, sent_usage, n, tools, cut)  # positional: see e2e_harness

    def _stream(
        self,
        body: dict[str, Any],
        msg_id: str,
        req_id: str,
        model: str,
        step: str,
        usage: dict[str, Any],
        n: int,
        tools: set[str],
        cut: bool = False,
    ) -> None:
        events: list[tuple[str, dict[str, Any]]] = []
        start_usage = dict(usage, output_tokens=1)
        start_usage.setdefault(
            "cache_creation",
            {"ephemeral_5m_input_tokens": usage["cache_creation_input_tokens"], "ephemeral_1h_input_tokens": 0},
        )
        # As the real API does: message_delta carries the final output count and the server tools used.
        delta_usage: dict[str, Any] = {"output_tokens": usage["output_tokens"]}
        if "server_tool_use" in usage:
            delta_usage["server_tool_use"] = usage["server_tool_use"]
        events.append(
            (
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        "id": msg_id,
                        "type": "message",
                        "role": "assistant",
                        "model": model,
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": start_usage,
                    },
                },
            )
        )
        blocks: list[dict[str, Any]] = [{"type": "text", "text": f"Step {n}: {step}."}]
        if step in ("bash", "bgbash", "slowbash"):
            command: dict[str, Any] = {"command": f"echo fake-step-{n}", "description": "Echo a marker"}
            if step == "slowbash":
                # Not `sleep 60`: Claude Code 2.1.3xx refuses a command that starts with a long sleep.
                wait = "python3 -c 'import time; time.sleep(60)'"
                command = {"command": f"{wait}; echo fake-step-{n}", "description": "Take a while"}
            if step == "bgbash":
                command = {
                    "command": f"sleep 1; echo fake-step-{n}",
                    "description": "Echo later",
                    "run_in_background": True,
                }
            blocks.append({"type": "tool_use", "id": f"toolu_fake{n:06d}", "name": "Bash", "input": command})
        elif step in _AGENTS:
            kind, script, background = _AGENTS[step]
            agent: dict[str, Any] = {
                "description": "Run a helper",
                "prompt": f"SUBAGENT. SCRIPT: {script}",
                "subagent_type": kind,
            }
            if background is not None:
                agent["run_in_background"] = background
            name = "Agent" if "Agent" in tools else "Task"
            blocks.append({"type": "tool_use", "id": f"toolu_fake{n:06d}", "name": name, "input": agent})
        for i, block in enumerate(blocks):
            if block["type"] == "text":
                events.append(
                    (
                        "content_block_start",
                        {"type": "content_block_start", "index": i, "content_block": {"type": "text", "text": ""}},
                    )
                )
                events.append(
                    (
                        "content_block_delta",
                        {
                            "type": "content_block_delta",
                            "index": i,
                            "delta": {"type": "text_delta", "text": block["text"]},
                        },
                    )
                )
            else:
                events.append(
                    (
                        "content_block_start",
                        {
                            "type": "content_block_start",
                            "index": i,
                            "content_block": {
                                "type": "tool_use",
                                "id": block["id"],
                                "name": block["name"],
                                "input": {},
                            },
                        },
                    )
                )
                events.append(
                    (
                        "content_block_delta",
                        {
                            "type": "content_block_delta",
                            "index": i,
                            "delta": {"type": "input_json_delta", "partial_json": json.dumps(block["input"])},
                        },
                    )
                )
            events.append(("content_block_stop", {"type": "content_block_stop", "index": i}))
        stop_reason = "tool_use" if len(blocks) > 1 else "end_turn"
        events.append(
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                    "usage": delta_usage,
                },
            )
        )
        events.append(("message_stop", {"type": "message_stop"}))
        payload = "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events).encode()
        if cut:  # the whole length announced, message_start sent, then the connection dropped
            first = events[0]
            part = f"event: {first[0]}\ndata: {json.dumps(first[1])}\n\n".encode()
            self.close_connection = True
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("request-id", req_id)
        with self.server_api._lock:
            extra = dict(self.server_api.headers)
        for name, value in extra.items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        if cut:
            self.wfile.write(part)
            self.wfile.flush()
            time.sleep(0.05)
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(payload)
        self.wfile.flush()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    api = FakeAPI(port=int(args[0]) if args else 0).start()
    print(api.url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        api.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
