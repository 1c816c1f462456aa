"""The writer process's own side (``python -m modelgrid.writer_main``, started by writer.py):
read the server's settings, build the journaled stores as the server does, and commit each
batch handed over, in order, until the server closes its input."""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
import signal
import sys
import traceback

from .allocator import Trimmer
from .audit.keys import AuditKeys
from .journals import build_journals
from .process_setup import set_up_process
from .settings import Settings
from .storage.database import Database
from .storage.journal import split_lines
from .writer import FRAME, read_frame

log = logging.getLogger("modelgrid.writer")


def reply(fd: int, payload: bytes) -> None:
    data = FRAME.pack(len(payload)) + payload
    while data:
        data = data[os.write(fd, data) :]


async def serve(input_fd: int, output_fd: int) -> None:
    loop = asyncio.get_running_loop()
    stream = asyncio.StreamReader()
    pipe = os.fdopen(input_fd, "rb", buffering=0)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stream), pipe)
    settings = pickle.loads(await read_frame(stream))
    if not isinstance(settings, Settings):
        raise TypeError(f"expected the server's Settings, got {type(settings).__name__}")
    # The batches' rows and statements come and go each second, as the requests' objects do
    # in the server: the same allocator settings hold its resident set down.
    set_up_process(settings)
    trimmer = Trimmer(settings.memory_trim_seconds)
    trimmer.start()
    db = Database(settings.resolved_database_url, pool_size=2)
    journals = build_journals(settings, db, AuditKeys.load_or_create(settings.data_dir))
    stores = journals.by_name()
    reply(output_fd, b"")
    try:
        while True:
            try:
                payload = await read_frame(stream)
            except asyncio.IncompleteReadError:
                return  # the server closed our input: nothing more is coming
            name, _, body = payload.partition(b"\n")
            try:
                await stores[name.decode()].commit_lines(split_lines(body))
            except Exception:
                # The server's journal logs it (once per outage) and retries.
                reply(output_fd, traceback.format_exc().encode())
            else:
                reply(output_fd, b"")
    finally:
        await trimmer.close()
        await db.close()


def main() -> None:
    # A Ctrl-C or a service manager's SIGTERM reaches the whole process group; the writer
    # must outlive its server's shutdown, which hands it the last batches and then closes
    # its input. Killed with the server (SIGKILL), its input ends all the same.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # The answers' channel is ours alone: anything else printed goes to stderr with the logs.
    output_fd = os.dup(sys.stdout.fileno())
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    asyncio.run(serve(sys.stdin.fileno(), output_fd))


if __name__ == "__main__":
    main()
