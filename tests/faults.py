"""A small OpenAI-compatible server that fails on demand, for what real servers rarely do.

The first path segment picks the behaviour, so one server plays many deployments: a
deployment's ``base_url`` of ``http://127.0.0.1:PORT/status-500/v1`` always answers 500.

    ok            a chat or text completion (streamed when asked), usage included; embeddings
    nousage       the same without usage
    drip          streams slowly (``DRIP_SECONDS`` between chunks)
    status-NNN    answers HTTP NNN with an OpenAI error body
    flaky-N       answers 500 to the first N requests on this path, then behaves as ``ok``
    reset         reads the request, then resets the connection
    slow          waits ``SLOW_SECONDS`` before answering
    cut           streams two chunks, then closes without finishing
    badjson       answers 200 with a body that is not JSON
    guard         a guard model: "unsafe\nS9" when the last message mentions a weapon, else "safe"
    reverse       answers the last message (or the prompt) reversed, streamed three characters a
                  chunk: a prompt the review passes can make an answer it must catch
    trickle       the same, its chunks ``TRICKLE_SECONDS`` apart: each reaches the gateway
                  in a read of its own (chunks that arrive together go on as one piece)
    context       answers with its system messages (or the prompt): what it was told
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson

TEXT = ["Hello", " from", " the", " upstream", "."]
USAGE = {"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16}
EMBEDDING = [0.25, -0.5, 1.0]
SLOW_SECONDS = 3.0
DRIP_SECONDS = 0.2
TRICKLE_SECONDS = 0.01


class FaultServer:
    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        # Streams whose reader went away before their end, by behaviour.
        self.aborted: Counter[str] = Counter()
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.port = 0

    def url(self, behaviour: str) -> str:
        return f"http://127.0.0.1:{self.port}/{behaviour}/v1"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    break
                path, headers, body = request
                behaviour = path.strip("/").split("/")[0]
                self.hits[behaviour] += 1
                self.headers.append(headers)
                parsed = orjson.loads(body) if body else {}
                self.bodies.append(parsed)
                if not await self.respond(behaviour, parsed, path, writer):
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def respond(
        self, behaviour: str, body: dict[str, Any], path: str, writer: asyncio.StreamWriter
    ) -> bool:
        """Answer one request; False when the connection must not be reused."""
        chat = path.endswith("/chat/completions")
        if behaviour.startswith("status-"):
            status = int(behaviour.split("-")[1])
            error = {
                "error": {
                    "message": f"upstream says {status}",
                    "type": "x",
                    "param": "temperature",
                    "code": None,
                }
            }
            _send(writer, status, orjson.dumps(error))
            return True
        if behaviour.startswith("flaky-") and self.hits[behaviour] <= int(behaviour.split("-")[1]):
            _send(writer, 500, b'{"error": {"message": "flaky"}}')
            return True
        if behaviour == "reset":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return False
        if behaviour == "slow":
            await asyncio.sleep(SLOW_SECONDS)
        if behaviour == "badjson":
            _send(writer, 200, b"this is not json")
            return True
        if path.endswith("/embeddings"):
            inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
            data = [
                {"object": "embedding", "index": i, "embedding": EMBEDDING}
                for i in range(len(inputs))
            ]
            usage_e = {"prompt_tokens": 3 * len(inputs), "total_tokens": 3 * len(inputs)}
            _send(writer, 200, orjson.dumps({"object": "list", "data": data, "usage": usage_e}))
            return True
        usage = None if behaviour == "nousage" else USAGE
        pieces = TEXT
        if behaviour == "guard":
            asked = str(body["messages"][-1]["content"]) if chat else str(body["prompt"])
            pieces = ["unsafe\nS9" if "weapon" in asked.lower() else "safe"]
        if behaviour == "context":
            told = [m["content"] for m in body["messages"] if m["role"] == "system"] if chat else []
            pieces = ["\n\n".join(told) if chat else str(body["prompt"])]
        if behaviour in ("reverse", "trickle"):
            asked = body["messages"][-1]["content"] if chat else body["prompt"]
            answer = str(asked)[::-1]
            pieces = [answer[i : i + 3] for i in range(0, len(answer), 3)]
        if not body.get("stream"):
            _send(writer, 200, orjson.dumps(_completion(chat, usage, "".join(pieces))))
            return True
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"
        )
        for i, word in enumerate(pieces):
            if behaviour == "cut" and i == 2:
                return False
            writer.write(b"data: " + orjson.dumps(_chunk(chat, word, None)) + b"\n\n")
            try:
                await writer.drain()
            except ConnectionError:
                self.aborted[behaviour] += 1
                raise
            if behaviour == "drip":
                await asyncio.sleep(DRIP_SECONDS)
            if behaviour == "trickle":
                await asyncio.sleep(TRICKLE_SECONDS)
        writer.write(b"data: " + orjson.dumps(_chunk(chat, "", "stop")) + b"\n\n")
        if usage:
            writer.write(b"data: " + orjson.dumps({"choices": [], "usage": usage}) + b"\n\n")
        writer.write(b"data: [DONE]\n\n")
        await writer.drain()
        return False


def _completion(chat: bool, usage: dict[str, int] | None, text: str) -> dict[str, Any]:
    choice = (
        {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        if chat
        else {"index": 0, "text": text, "finish_reason": "stop"}
    )
    body: dict[str, Any] = {"id": "up-1", "object": "x", "choices": [choice]}
    if usage:
        body["usage"] = usage
    return body


def _chunk(chat: bool, text: str, finish: str | None) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": 0, "finish_reason": finish}
    choice.update({"delta": {"content": text}} if chat else {"text": text})
    return {"id": "up-1", "object": "chunk", "choices": [choice]}


def _send(writer: asyncio.StreamWriter, status: int, body: bytes) -> None:
    head = f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
    writer.write(head.encode() + body)


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, dict[str, str], bytes] | None:
    line = await reader.readline()
    if not line:
        return None
    path = line.decode().split(" ")[1]
    headers = {}
    while (header := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = header.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return path, headers, body


@contextmanager
def fault_server() -> Iterator[FaultServer]:
    """Serve on a free loopback port from a thread of its own."""
    server = FaultServer()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    stop: asyncio.Future[None] | None = None

    async def main() -> None:
        nonlocal stop
        listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
        server.port = listener.sockets[0].getsockname()[1]
        stop = loop.create_future()
        ready.set()
        async with listener:
            await stop
        others = asyncio.all_tasks() - {asyncio.current_task()}
        for task in others:  # connections still open (a slow or dripping answer)
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield server
    finally:
        assert stop is not None
        loop.call_soon_threadsafe(stop.set_result, None)
        thread.join(10)
        loop.close()
