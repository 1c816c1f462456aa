"""A LoRA adapter for the bundled SmolLM2 file, written with the ``gguf`` package: random
low-rank updates to every attention output, large enough to change what the model says."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np


def write_lora(path: Path, base: Path, seed: int = 0, rank: int = 4, scale: float = 0.05) -> Path:
    reader = gguf.GGUFReader(str(base))
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_string("general.type", "adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", float(rank))
    rng = np.random.default_rng(seed)
    for tensor in reader.tensors:
        if not tensor.name.endswith("attn_output.weight"):
            continue
        n_in, n_out = (int(x) for x in tensor.shape)  # GGML order: ne[0] is the input size
        # numpy order is GGML's reversed: A is (rank, n_in), B is (n_out, rank).
        a = (rng.standard_normal((rank, n_in)) * scale).astype(np.float32)
        b = (rng.standard_normal((n_out, rank)) * scale).astype(np.float32)
        writer.add_tensor(tensor.name + ".lora_a", a)
        writer.add_tensor(tensor.name + ".lora_b", b)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
