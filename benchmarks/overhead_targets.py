"""The mock upstream and the targets that ``overhead.py`` measures in front of it.

A target is started twice per run of ``overhead.py``: against the mock's ``/v1`` for load,
against its ``/stream/v1`` for streamed time to first byte. To add one, subclass ``Target``
(``start`` returns the base URL clients use, up to and including ``/v1``; whatever it launches
goes through ``self.procs`` so that ``stop`` ends it) and list it in ``TARGETS``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
LITELLM_VENV = HERE / ".venv-litellm"
ANSWER = "Hello! How can I help you today?"
PIECES = ["Hello", "!", " How", " can", " I", " help", " you", " today", "?"]
USAGE = {"prompt_tokens": 9, "completion_tokens": len(PIECES), "total_tokens": 9 + len(PIECES)}


# The server's settings after its host, data directory and database: everything metered, on a
# billed plan whose every limit is set too high to refuse, so the whole pipeline runs. The
# plan's table comes last: models' tables follow it.
METERED_PLAN = (
    'log_level = "info"\nmetering = true\nstarting_credits = 1000000000.0\n'
    "[plans.free]\nrequests_per_minute = 1000000000\nmax_concurrency = 1000000\n"
    "tokens_per_minute = 1000000000000\ndaily_tokens = 1000000000000\n"
    "monthly_tokens = 1000000000000\nbilled = true\n"
)


def upstream_model(name: str, base_url: str) -> str:
    """A model served by the mock at ``base_url``, at DeepSeek's list prices."""
    return (
        f'[models.{name}]\nengine = "openai"\nbase_url = {json.dumps(base_url)}\n'
        "prices = { input = 0.27, output = 1.1 }\n"
    )


def compact(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


def request_body(model: str, stream: bool = False) -> str:
    body: dict[str, object] = {
        "model": model,
        "messages": [{"role": "user", "content": "Hello"}],
        "max_tokens": 16,
    }
    return compact(body | {"stream": True} if stream else body)


def completion_body() -> str:
    message = {"role": "assistant", "content": ANSWER}
    return compact(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": 1700000000,
            "model": "m",
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": USAGE,
        }
    )


def sse_body(pieces: list[str] = PIECES) -> str:
    head = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1700000000}
    head |= {"model": "m"}

    def chunk(delta: dict[str, str], finish: str | None) -> dict[str, object]:
        return head | {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    usage = {"prompt_tokens": 9, "completion_tokens": len(pieces)}
    usage["total_tokens"] = 9 + len(pieces)
    events: list[dict[str, object]] = [chunk({"role": "assistant", "content": ""}, None)]
    events += [chunk({"content": piece}, None) for piece in pieces]
    events += [chunk({}, "stop"), head | {"choices": [], "usage": usage}]
    return "".join(f"data: {compact(e)}\n\n" for e in events) + "data: [DONE]\n\n"


LONG_STREAM = "/long/v1"
_WORDS = [" The", " quick", " brown", " fox", " jumps", " over", " the", " lazy", " dog", "."]


def long_stream(workdir: Path, tokens: int, pace: float = 0) -> str:
    """An nginx location answering ``LONG_STREAM``'s chat completions with a streamed answer of
    ``tokens`` pieces (about 4.6 characters each), for ``start_mock``'s ``locations_extra``;
    with ``pace``, sent at about that many pieces a second, as a model generates them.

    ``return`` takes at most 4 KB, so the answer is a file, and nginx serves a file to GET
    only: the POST's 405 is turned into the file's 200 (``error_page``). Its workers run as
    another user, so the file's directory is made readable to them. The pace is nginx's
    ``limit_rate`` (bytes a second, each response on its own) with the file read into a
    buffer of one event's average size: the client receives about one event a write, split
    where the sizes differ, as a real upstream's events arrive."""
    folder = workdir / "long"
    folder.mkdir(exist_ok=True)
    body = sse_body([_WORDS[i % len(_WORDS)] for i in range(tokens)])
    (folder / "answer.sse").write_text(body)
    for path, mode in [(workdir, 0o711), (folder, 0o755), (folder / "answer.sse", 0o644)]:
        path.chmod(mode)
    paced = ""
    if pace:
        event = round(len(body.encode()) / (tokens + 3))  # the content, finish, usage, [DONE]
        paced = (
            f"            sendfile off;\n            output_buffers 1 {event};\n"
            f"            limit_rate {round(pace * event)};\n"
        )
    return (
        f"        location = {LONG_STREAM}/chat/completions {{\n"
        "            error_page 405 =200 /answer.sse;\n            return 405;\n        }\n"
        "        location = /answer.sse {\n            internal;\n"
        f"            default_type text/event-stream;\n            root {folder};\n{paced}"
        "        }\n"
    )


def nginx_string(text: str) -> str:
    # nginx would expand $name inside the string as a variable.
    assert "$" not in text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"


def python_of(executable: str) -> str:
    """Which Python ``executable`` is: its version and the interpreter a virtualenv's points
    at (a distribution's build, made with PGO and LTO, or a local one without: its build
    changes a Python gateway's speed, docs/benchmarks.md)."""
    code = "import os, platform, sys; print(platform.python_version(), os.path.realpath(sys._base_executable))"
    found = subprocess.run([executable, "-c", code], capture_output=True, text=True)
    release, _, path = found.stdout.strip().partition(" ")
    return f"Python {release} ({path})"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class StartError(RuntimeError):
    pass


def session_processes(sessions: set[int]) -> Iterator[tuple[Path, list[str]]]:
    """Each live process of these sessions: its /proc directory and its stat fields after the
    command name (the session id is ``fields[3]``). Every child here leads a session of its
    own, so a session's processes are that child and whatever it started."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        if int(fields[3]) in sessions:
            yield stat.parent, fields


class Processes:
    """Children started in their own session, so that stopping one ends whatever it forked."""

    def __init__(self) -> None:
        self.children: list[tuple[subprocess.Popen[bytes], Path]] = []

    def spawn(self, cmd: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        with log.open("wb") as out:
            proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        self.children.append((proc, log))

    def wait_port(self, port: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for proc, log in self.children:
                if proc.poll() is not None:
                    tail = log.read_text(errors="replace")[-2000:]
                    raise StartError(f"{log.stem} exited with {proc.returncode}:\n{tail}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise StartError(f"nothing listened on port {port} within {timeout:.0f} s")

    def cpu_seconds(self) -> float | None:
        """CPU time (user and system) the live children and whatever they started (a
        server's writer process, its workers) have used so far, from /proc; None where /proc
        is not there to read."""
        if not Path("/proc/self/stat").exists():
            return None
        ticks = 0
        for _, fields in session_processes({proc.pid for proc, _ in self.children}):
            ticks += int(fields[11]) + int(fields[12])  # utime, stime: the 14th and 15th
        return ticks / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        for proc, _ in reversed(self.children):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        self.children.clear()


NGINX_CONF = """\
daemon off;
# One worker, so the mock takes at most one of the two cores.
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    # nginx closes a connection after 1000 requests by default: a reconnect per 1000 requests
    # would be charged to whichever client happens to hit it.
    keepalive_requests 100000000;
    keepalive_timeout 300s;
{http_extra}
    server {{
        listen 127.0.0.1:{port};
        location = /v1/chat/completions {{
            default_type application/json;
            return 200 {completion};
        }}
        location = /stream/v1/chat/completions {{
            default_type text/event-stream;
            return 200 {sse};
        }}
{locations_extra}
        location / {{ return 404; }}
    }}
}}
"""


def start_mock(
    nginx: str, workdir: Path, procs: Processes, http_extra: str = "", locations_extra: str = ""
) -> str:
    """Start nginx as the upstream; returns its origin (``http://127.0.0.1:PORT``).

    ``http_extra`` goes into the ``http`` block and ``locations_extra`` into the server, ahead
    of the catch-all 404, for mocks that need more than the two fixed answers."""
    port = free_port()
    conf = workdir / "nginx.conf"
    completion, sse = nginx_string(completion_body()), nginx_string(sse_body())
    text = NGINX_CONF.format(
        dir=workdir,
        port=port,
        completion=completion,
        sse=sse,
        http_extra=http_extra,
        locations_extra=locations_extra,
    )
    conf.write_text(text)
    cmd = [nginx, "-p", str(workdir), "-e", str(workdir / "error.log"), "-c", str(conf)]
    procs.spawn(cmd, workdir / "nginx.log")
    procs.wait_port(port, 10)
    return f"http://127.0.0.1:{port}"


@dataclass
class Target:
    """A thing to measure: ``start`` launches it in front of ``upstream`` (a base URL up to and
    including ``/v1``) and returns its own base URL; ``stop`` ends what ``start`` launched."""

    name: str
    model: str = "m"
    key: str = "sk-bench-0123456789"
    procs: Processes = field(default_factory=Processes)

    def start(self, upstream: str, workdir: Path) -> str:
        raise NotImplementedError

    def stop(self) -> None:
        self.procs.stop()

    def version(self) -> str:
        return ""


class Direct(Target):
    def start(self, upstream: str, workdir: Path) -> str:
        return upstream


@dataclass
class BareProxy(Target):
    client: str = ""

    def start(self, upstream: str, workdir: Path) -> str:
        port = free_port()
        script = HERE / f"bare_proxy_{self.client}.py"
        self.procs.spawn(
            [sys.executable, str(script), str(port), upstream], workdir / f"{self.name}.log"
        )
        self.procs.wait_port(port, 30)
        return f"http://127.0.0.1:{port}/v1"

    def version(self) -> str:
        return f"{self.client} {version(self.client)}, uvicorn {version('uvicorn')}"


def start_modelgrid(
    procs: Processes, config: Path, key: str, log: Path, env: dict[str, str] | None = None
) -> str:
    """Serve ``config`` with ``key`` as the admin key (and ``env`` added to the environment);
    returns the base URL, up to ``/v1``."""
    port = free_port()
    env = os.environ | (env or {}) | {"MODELGRID_ADMIN_KEY": key}
    cmd = [sys.executable, "-m", "modelgrid", "serve", "--config", str(config)]
    procs.spawn([*cmd, "--port", str(port)], log, env)
    procs.wait_port(port, 60)
    return f"http://127.0.0.1:{port}/v1"


@dataclass
class ModelGrid(Target):
    admin_key: str = "mg-bench-admin-0123456789"
    # Every step that exists runs: the access log (info), a plan's request, token and
    # concurrency limits, daily and monthly token quotas and billing against credits at the
    # model's prices (all set too high to refuse), and the ledger. Unmetered: the same without
    # quotas, credits and ledger. Inline: the journals' batches committed in the server's
    # process rather than by its writer process (``writer_process = false``).
    metered: bool = True
    writer: bool = True

    def start(self, upstream: str, workdir: Path) -> str:
        config = workdir / "modelgrid.toml"
        metering = (
            "daily_tokens = 1000000000000\nmonthly_tokens = 1000000000000\nbilled = true\n"
            if self.metered
            else ""
        )
        # A JSON string is a TOML basic string. The load uses a key of an organisation on the
        # plan (the operator's admin key is exempt from every limit).
        config.write_text(
            f'host = "127.0.0.1"\ndata_dir = {json.dumps(str(workdir / "data"))}\n'
            f'log_level = "info"\nmetering = {"true" if self.metered else "false"}\n'
            f"writer_process = {'true' if self.writer else 'false'}\n"
            f"starting_credits = 1000000000.0\n"
            f"[plans.free]\nrequests_per_minute = 1000000000\n"
            f"max_concurrency = 1000000\ntokens_per_minute = 1000000000000\n{metering}"
            f"[models.{json.dumps(self.model)}]\n"
            f'engine = "openai"\nbase_url = {json.dumps(upstream)}\n'
            f"prices = {{ input = 0.27, output = 1.1 }}\n"
        )
        base = start_modelgrid(self.procs, config, self.admin_key, workdir / f"{self.name}.log")
        create = [sys.executable, "-m", "modelgrid", "keys", "create", "--config", str(config)]
        created = subprocess.run(
            [*create, "--org", "bench"],
            capture_output=True,
            text=True,
            check=True,
        )
        self.key = created.stdout.strip()
        return base

    def version(self) -> str:
        return f"modelgrid {version('modelgrid')}"


@dataclass
class LiteLLM(Target):
    # Made with the same Python as the one running the benchmark, so that both gateways run on
    # the same interpreter (its build changes a Python gateway's speed: docs/benchmarks.md).
    venv: Path = LITELLM_VENV

    def start(self, upstream: str, workdir: Path) -> str:
        exe = self.venv / "bin" / "litellm"
        if not exe.exists():
            raise StartError(
                f"no {exe}: {sys.executable} -m venv {self.venv} && "
                f"{self.venv}/bin/pip install 'litellm[proxy]'"
            )
        port = free_port()
        params = {"model": f"openai/{self.model}", "api_base": upstream, "api_key": "x"}
        config = {
            "model_list": [{"model_name": self.model, "litellm_params": params}],
            "general_settings": {"master_key": self.key},
        }
        path = workdir / "litellm.yaml"
        path.write_text(json.dumps(config))  # JSON is YAML
        # Without this litellm downloads its model price list at start.
        env = os.environ | {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR"}
        args = ["--config", str(path), "--host", "127.0.0.1", "--port", str(port)]
        self.procs.spawn([str(exe), *args, "--num_workers", "1"], workdir / f"{self.name}.log", env)
        self.procs.wait_port(port, 180)
        return f"http://127.0.0.1:{port}/v1"

    def version(self) -> str:
        python = str(self.venv / "bin" / "python")
        code = "import importlib.metadata as m; print(m.version('litellm'))"
        found = subprocess.run([python, "-c", code], capture_output=True, text=True)
        return f"litellm {found.stdout.strip()} on {python_of(python)}"


TARGETS: dict[str, Target] = {
    t.name: t
    for t in [
        Direct("direct"),
        BareProxy("bare-aiohttp", client="aiohttp"),
        BareProxy("bare-httpx", client="httpx"),
        BareProxy("bare-pyreqwest", client="pyreqwest"),
        ModelGrid("modelgrid", model="mock"),
        ModelGrid("modelgrid-unmetered", model="mock", metered=False),
        ModelGrid("modelgrid-inline", model="mock", writer=False),
        LiteLLM("litellm"),
    ]
}


def check(target: Target, base: str, stream: bool = False) -> None:
    """One request through the target, so a broken setup fails loudly rather than as fast 404s."""
    headers = {"Authorization": f"Bearer {target.key}", "Content-Type": "application/json"}
    body = request_body(target.model, stream)
    r = httpx.post(f"{base}/chat/completions", content=body, headers=headers, timeout=30)
    if stream:
        if r.status_code != 200 or not r.text.rstrip().endswith("data: [DONE]"):
            raise StartError(f"streamed check request got {r.status_code}: {r.text[:500]}")
        return
    try:
        content = r.json()["choices"][0]["message"]["content"]
    except (ValueError, LookupError, TypeError):
        content = None
    # ModelGrid appends its plan's explicit AI-content label to the answer.
    if r.status_code != 200 or not isinstance(content, str) or not content.startswith(ANSWER):
        raise StartError(f"check request got {r.status_code}: {r.text[:500]}")
