"""The static tier on the outside benchmark: alone, fused with BM25, and as a third ranked list.

    .venv/bin/python bench/bench_static.py pypi:requests==2.32.3 pypi:click==8.1.7 npm:rxjs@7.8.1 \
        npm:date-fns@4.1.0 [--pca 256] [--sif 1e-4] [--json-out F]

Per corpus (prepared by ``../shared/bench/codesearch_bench.py prepare``), in one process and on the same
queries, scored by the benchmark's own ``score``:
  baseline        the benchmark's BM25 over 30-line windows (its ``BM25`` class)
  bm25            semcode's stemmed BM25 over its chunks
  static          the distilled static model alone (brute-force cosine over all chunks)
  static+bm25     RRF of the two
  model           the transformer alone
  model+bm25      the engine's hybrid (Searcher._fuse, exactly as the server ranks)
  model+static+bm25  RRF of three lists (static weight --static-weight)
The transformer index is built once per corpus in --index-root (incremental afterwards). The static
vectors are computed in memory for the same chunks (the engine's chunker, the same token counter), and
the time to do so is reported: chunking, tokenizing and pooling, for the whole corpus.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from quality_sweep import DEFAULT_BENCH, load_bench  # noqa: E402

from engine.chunking import chunk_file  # noqa: E402
from engine.config import EngineConfig  # noqa: E402
from engine.files import read_source, walk  # noqa: E402
from engine.indexer import HEADER_TOKEN_BUDGET  # noqa: E402
from engine.lexical import looks_like_identifier, query_terms  # noqa: E402
from engine.models.static import DEFAULT_MAX_TOKENS, StaticEmbedder, StaticSettings  # noqa: E402
from engine.records import Candidate  # noqa: E402
from engine.search import IDENTIFIER_WEIGHTS, SENTENCE_WEIGHTS, FusionWeights, SearchFilters  # noqa: E402
from engine.store import chunk_id  # noqa: E402
from engine.workspace import Workspace  # noqa: E402

POOL = 40


def rrf(lists: list[tuple[float, list[Candidate]]], k: float) -> list[Candidate]:
    """Weighted reciprocal rank fusion of ranked candidate lists (identified by ``id``)."""
    scores: dict[str, float] = {}
    rows: dict[str, Candidate] = {}
    for weight, ranked in lists:
        if weight == 0:
            continue
        for rank, row in enumerate(ranked):
            rows.setdefault(row.id, row)
            scores[row.id] = scores.get(row.id, 0.0) + weight / (k + rank + 1)
    return [rows[i] for i in sorted(scores, key=lambda i: -scores[i])]


def static_chunks(corpus: Path, config: EngineConfig, static: StaticEmbedder, max_tokens: int):
    """The engine's chunks of the corpus (same chunker and token counter as the index), their token ids."""
    t0 = time.perf_counter()
    chunks = []
    for file in walk(corpus, config):
        try:
            text = read_source(file, config.max_file_size)
        except Exception:  # noqa: BLE001 - the indexer skips these too
            continue
        chunks.extend(chunk_file(file.path, text, max_tokens=max_tokens, count_tokens=static.count_tokens))
    t1 = time.perf_counter()
    ids = static.token_ids([c.embed_text for c in chunks])
    t2 = time.perf_counter()
    return chunks, ids, {"chunk_s": t1 - t0, "tokenize_s": t2 - t1, "tokens": sum(len(a) for a in ids)}


def pooled(static: StaticEmbedder, ids) -> tuple[np.ndarray, float]:
    t0 = time.perf_counter()
    matrix = static.pool(ids)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    matrix /= norms
    return matrix, time.perf_counter() - t0


def run_corpus(bench, spec_text: str, args: argparse.Namespace, variants: dict[str, StaticEmbedder]):
    spec = bench.Spec(spec_text)
    prep = bench.prepare(spec, Path(args.cache), args.max_queries, args.seed, quiet=True)
    corpus = Path(prep.corpus_dir)
    queries = prep.queries
    config = EngineConfig(index_dir=str(Path(args.index_root) / spec.key), threads=args.threads)
    ws = Workspace(corpus, config)
    started = time.perf_counter()
    stats = ws.index()
    index_s = time.perf_counter() - started
    max_tokens = max(64, ws.embedder.info.context_length - HEADER_TOKEN_BUDGET)
    first = next(iter(variants.values()))
    chunks, chunk_ids, timing = static_chunks(corpus, config, first, max_tokens)
    # rows of the transformer index, keyed by chunk id: the static side must rank the same chunks
    store_rows, _ = ws.store.chunk_vectors("id != ''")
    by_id = {r["id"]: r for r in store_rows}
    keep = [i for i, c in enumerate(chunks) if chunk_id(c) in by_id]
    static_ids = [chunk_id(chunks[i]) for i in keep]
    searcher = ws.searcher
    filters = SearchFilters()
    baseline = bench.BM25(corpus, prep.files)
    ranked: dict[str, list[list[tuple[str, int, int]]]] = {}

    def emit(name: str, hits) -> None:
        ranked.setdefault(name, []).append([(h.path, h.start_line, h.end_line) for h in hits])

    def ordered(rows: list[Candidate], terms: list[str]):
        """Rows already in final order, through the engine's collapsing of overlaps and containers."""
        return searcher._fuse([replace(r) for r in rows], [], terms, 10, filters, FusionWeights(1.0, 0.0, 20.0))

    base_lists = []
    for q in queries:
        text = q["query"]
        terms = query_terms(text)
        weights = IDENTIFIER_WEIGHTS if looks_like_identifier(text) else SENTENCE_WEIGHTS
        dense = searcher._dense(ws.embedder.embed_query(text), POOL, filters)
        lexical = [Candidate.from_row(r) for r in ws.store.text_search(" ".join(terms), limit=POOL)] if terms else []
        base_lists.append((terms, weights, dense, lexical))
        ranked.setdefault("baseline", []).append([(r[0], r[1], r[2]) for r in baseline.search(text, 10)])
        emit("bm25", ordered(lexical, terms))
        emit("model", ordered(dense, terms))
        fused = searcher._fuse([replace(r) for r in dense], [replace(r) for r in lexical], terms, 10, filters, weights)
        emit("model+bm25", fused)
        emit("model+bm25 (rrf)", ordered(rrf([(weights.dense, dense), (weights.lexical, lexical)], weights.k), terms))
    pool_s: dict[str, float] = {}
    for label, static in variants.items():
        smatrix, seconds = pooled(static, chunk_ids)
        pool_s[label] = seconds
        smatrix = smatrix[keep]
        qstatic = static.embed_documents([q["query"] for q in queries])  # same normalised pooling
        for qi, (terms, weights, dense, lexical) in enumerate(base_lists):
            sims = smatrix @ qstatic[qi]
            top = np.argsort(-sims)[:POOL]
            srows = [Candidate.from_row(by_id[static_ids[i]], semantic=float(sims[i])) for i in top]
            emit(f"static[{label}]", ordered(srows, terms))
            emit(f"static[{label}]+bm25", ordered(rrf([(weights.dense, srows), (weights.lexical, lexical)], weights.k),
                                                   terms))  # fmt: skip
            for sw in args.static_weight:
                lists = [(weights.dense, dense), (weights.dense * sw, srows), (weights.lexical, lexical)]
                three = rrf(lists, weights.k)
                emit(f"model+static[{label}]+bm25 s={sw:g}", ordered(three, terms))
    first_pool = next(iter(pool_s.values()))
    embed_s = timing["tokenize_s"] + first_pool
    print(
        f"# {spec_text}: {stats.chunks_total} chunks ({len(chunks)} re-chunked, {len(keep)} matched), "
        f"{len(queries)} queries; transformer index {index_s:.0f}s ({stats.chunks_embedded} embedded); static: "
        f"chunk {timing['chunk_s']:.2f}s tokenize {timing['tokenize_s']:.3f}s pool {first_pool:.3f}s "
        f"({len(chunks) / max(1e-9, embed_s):,.0f} chunks/s, {timing['tokens'] / max(1e-9, embed_s):,.0f} "
        f"tokens/s embed); load {os.getloadavg()[0]:.2f}",
        file=sys.stderr,
    )
    scores = {name: bench.score(queries, lists) for name, lists in ranked.items()}
    return {
        "corpus": spec_text,
        "chunks": stats.chunks_total,
        "queries": len(queries),
        "transformer_index_s": index_s,
        "static_chunks_per_s": len(chunks) / max(1e-9, embed_s),
        "static_tokens_per_s": timing["tokens"] / max(1e-9, embed_s),
        "static_timing": {**timing, "pool_s": pool_s},
        "load": os.getloadavg()[0],
        "mrr10": {n: round(s["mrr10"], 4) for n, s in scores.items()},
        "r10": {n: round(s["recall10"], 4) for n, s in scores.items()},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("specs", nargs="+")
    parser.add_argument("--bench", default=str(DEFAULT_BENCH))
    parser.add_argument("--cache", default="/tmp/codesearch-bench-cache")
    parser.add_argument("--index-root", default="/tmp/semcode-tiers")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--max-queries", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--variants",
        nargs="+",
        default=["256:1e-4", "0:1e-4", "256:0", "128:1e-4", "256:1e-3"],
        help="static tables to compare, as PCA_DIMS:SIF (the first is cached for other benches)",
    )
    parser.add_argument("--max-tokens", type=int, default=DEFAULT_MAX_TOKENS)
    parser.add_argument("--static-weight", type=float, nargs="+", default=[0.5, 1.0])
    parser.add_argument("--json-out")
    args = parser.parse_args()
    bench = load_bench(Path(args.bench))
    from engine.models import inspect_gguf
    from engine.models.static import GGUFTokenizer, build_table, distill_raw, static_cache_path, usable_ids
    from engine.workspace import shared_embedder

    transformer = shared_embedder(EngineConfig(threads=args.threads))
    gguf = inspect_gguf(transformer.info.path)
    tokenizer = GGUFTokenizer(gguf.path)
    t0 = time.perf_counter()
    raw_cache = Path(args.index_root) / f"raw-{gguf.fingerprint[:24]}-n{args.max_tokens}.npz"
    if raw_cache.exists():  # the raw token outputs do not depend on the variant: distil once per model
        with np.load(raw_cache) as data:
            ids, raw = data["ids"], data["raw"]
    else:
        ids, raw = distill_raw(transformer, tokenizer, args.max_tokens)
        raw_cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(raw_cache, ids=ids, raw=raw)
    print(f"# {ids.size} tokens distilled in {time.perf_counter() - t0:.1f}s; load {os.getloadavg()[0]:.2f}",
          file=sys.stderr)  # fmt: skip
    usable = usable_ids(tokenizer)
    variants: dict[str, StaticEmbedder] = {}
    for item in args.variants:
        pca, sif = item.split(":")
        settings = StaticSettings(pca_dims=int(pca), sif=float(sif), max_tokens=args.max_tokens)
        table = build_table(ids, raw, usable, gguf.fingerprint, settings)
        if not variants:  # the first variant is the one the other benches load from the cache
            table.save(static_cache_path(gguf, settings))
        variants[item] = StaticEmbedder(table, tokenizer, gguf, context_length=transformer.info.context_length)
    rows = []
    for spec in args.specs:
        rows.append(run_corpus(bench, spec, args, variants))
        if args.json_out:  # one line per corpus as soon as it is scored
            with open(args.json_out, "a") as handle:
                handle.write(json.dumps(rows[-1]) + "\n")
    names = list(rows[0]["mrr10"])
    print(f"load average {os.getloadavg()[0]:.2f}; variants pca:sif {', '.join(variants)}")
    print(f"{'MRR@10':<26}" + "".join(f"{r['corpus'].split(':')[1][:14]:>16}" for r in rows) + f"{'mean':>8}")
    for name in names:
        values = [r["mrr10"][name] for r in rows]
        print(f"{name:<26}" + "".join(f"{v:>16.3f}" for v in values) + f"{sum(values) / len(values):>8.3f}")
    print(f"{'static chunks/s (embed)':<26}" + "".join(f"{r['static_chunks_per_s']:>16,.0f}" for r in rows))
    tokenizer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
