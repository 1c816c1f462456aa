"""LoRA adapters (GGUF) on the embedded engine: each slot's model loads an adapter the first
time a request needs it and keeps at most ``limit`` loaded, the least recently used freed
first; a request runs with its adapter set on the slot's context (or none), and the context's
cached prompt is dropped whenever that changes, since it was computed with other weights.

Everything here runs in the slot's own worker thread, one request at a time."""

from __future__ import annotations

import ctypes
from collections import OrderedDict
from pathlib import Path
from typing import Any

from llama_cpp import Llama, llama_cpp

from ..errors import InvalidRequest


class Adapters:
    def __init__(self, model: Llama, limit: int) -> None:
        self._model = model
        self._limit = limit
        self._loaded: OrderedDict[str, Any] = OrderedDict()  # path -> llama_adapter_lora_p
        self._active = ""

    def use(self, path: str) -> None:
        """Generate with the adapter at ``path`` from now on ('' for none)."""
        if path == self._active:
            if path:
                self._loaded.move_to_end(path)
            return
        ctx = self._model._ctx.ctx
        if self._active:
            llama_cpp.llama_set_adapters_lora(ctx, None, 0, None)
            self._active = ""
        if path:
            adapter = self._load(path)
            adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(adapter)
            scales = (ctypes.c_float * 1)(1.0)
            if llama_cpp.llama_set_adapters_lora(ctx, adapters, 1, scales):
                raise InvalidRequest(f"The adapter {Path(path).name!r} does not fit this model.")
        self._active = path
        self._model.reset()  # type: ignore[no-untyped-call]

    def _load(self, path: str) -> Any:
        if path in self._loaded:
            self._loaded.move_to_end(path)
            return self._loaded[path]
        if not Path(path).is_file():
            raise InvalidRequest(f"The adapter {Path(path).name!r} is not on this server.")
        adapter = llama_cpp.llama_adapter_lora_init(self._model._model.model, path.encode())
        if not adapter:
            raise InvalidRequest(f"The adapter {Path(path).name!r} is not a LoRA for this model.")
        while len(self._loaded) >= self._limit:  # none is set on the context now
            _, freed = self._loaded.popitem(last=False)
            llama_cpp.llama_adapter_lora_free(freed)
        self._loaded[path] = adapter
        return adapter

    @property
    def loaded(self) -> list[str]:
        return list(self._loaded)

    def close(self) -> None:
        if self._active:
            llama_cpp.llama_set_adapters_lora(self._model._ctx.ctx, None, 0, None)
        for adapter in self._loaded.values():
            llama_cpp.llama_adapter_lora_free(adapter)
        self._loaded.clear()
        self._active = ""
