"""The "Memory per pending request" and "Many pending requests" sections of
``docs/benchmarks.md``, from ``var/bench/pending-*/result.json`` (``bench_pending.py``)."""

# ruff: noqa: E501  (Markdown table rows are long by nature)

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

VAR = Path(__file__).resolve().parent.parent / "var" / "bench"
MIB = 1024 * 1024
# oidc-provider 9.13.3, Map adapter, RESULTS.md of the harness (runs A and B, six reps).
RESULTS_MD_FIGURE = (
    "4,693–5,147 B of RSS (median ≈4,825 B) and ≈1,545 B of V8 heap per pending request"
)


def render_pending_sections(var: Path = VAR) -> str:
    parts = [_memory(_load(var / "pending-mem" / "result.json"))]
    many = [_load(var / f"pending-many-{b}" / "result.json") for b in ("sqlite", "postgres")]
    parts.append(_many([m for m in many if m is not None]))
    return "\n".join(parts)


def _load(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.exists() else None


def _when(result: dict[str, Any]) -> str:
    stamp = dt.datetime.fromtimestamp(result["started"], dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"measured {stamp} at commit `{result['commit']}`"


# --------------------------------------------------------------------------- item 5


def _memory(result: dict[str, Any] | None) -> str:
    head = "## Memory per pending request\n\n"
    command = (
        "`bench/run_bench.py --only pending-mem` (also part of `make bench`). It starts Backchannel "
        "(SQLite, one worker, automated approval hook on but never called) on port 8089 and runs "
        "the harness's `driver/pending_mem.py --count 10000 --concurrency 16` against it twice on "
        "the same process (round 1 from a freshly started server, round 2 right after), then the "
        "same against oidc-provider (`AUTO_APPROVE=0 OIDC_ADAPTER=map`, port 3001, forced GC "
        "before each reading). `pending_mem.py` reads VmRSS before and after creating the "
        "requests and polls every 100th auth_req_id afterwards (all must still answer "
        "`authorization_pending`). The 10,000 login hints `pending-user-<i>` are seeded users "
        "without devices, so the anti push-bombing cap (`devices.max_pending_per_user`, users "
        "with an enrolled device only) does not apply — every request was accepted.\n"
    )
    if result is None:
        return head + command + "\nnot measured yet.\n"
    rows = [
        "| server | round | created | create time (s) | RSS before → after (MiB) | RSS Δ / pending | V8 heap Δ / pending | sampled ids still pending |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, key in (("Backchannel", "backchannel"), ("oidc-provider (Map)", "oidc_provider")):
        for number, r in enumerate(result[key], 1):
            rows.append(_memory_row(name, number, r))
    return (
        head
        + command
        + f"\n{_when(result)}.\n\n"
        + "\n".join(rows)
        + "\n\n"
        + MEMORY_READING
        + f"\nFor comparison, the harness's RESULTS.md reports for oidc-provider: {RESULTS_MD_FIGURE}.\n"
    )


def _memory_row(name: str, number: int, r: dict[str, Any]) -> str:
    before, after = r["before"]["rss"] / MIB, r["after"]["rss"] / MIB
    heap = r.get("heap_bytes_per_pending")
    states = ", ".join(f"{k}: {v}" for k, v in r["sample_states"].items())
    return (
        f"| {name} | {number} | {r['created']:,} | {r['create_seconds']} | {before:.1f} → {after:.1f} "
        f"| {r.get('rss_bytes_per_pending', 0):,.0f} B | {f'{heap:,.0f} B' if heap else '—'} | {states} |"
    )


MEMORY_READING = """\
How to read it: Backchannel keeps no pending state in the process — a pending request is a
row in `auth_requests` (plus its `created` timeline event and consent row), read again on
every poll. What grows is SQLite's page cache: the loop connection keeps up to
`database.sqlite_cache_mib` (32 MiB) of database pages, and 10,000 new requests with their
events and consents add about 12 MiB of pages, all of them recently used; past 32 MiB the
cache stops growing, whatever the number of requests (with the 2 MiB SQLite default, round 2
grew by 9 B per request, and the many-pending poll p99 suffered from reads of the file).
Round 1 adds the warm-up of a fresh process (first use of code paths, SQLAlchemy's
compiled-statement cache, allocator arenas). In-process structures that could grow were
checked in the code: the
verifier cache of client JWK sets is an LRU bounded at 1,024 entries; the SQLite stores'
kept reads (clients, hinted users, a user's devices and pause) hold at most 1,024 entries
each and never a hint or client id that matched nothing; the event bus's
per-topic entries are removed when their last waiter leaves (bounded by open long polls);
the jwks_uri fetcher's cache and lock maps are keyed by URL (bounded by registered
clients, never pruned); no structure is keyed by request.
"""


# --------------------------------------------------------------------------- item 6


def _many(results: list[dict[str, Any]]) -> str:
    head = "## Many pending requests\n\n" + MANY_HOW
    if not results:
        return head + "\nnot measured yet.\n"
    rows = [
        "| backend | database | flows/s (median) | token call p50 | token call p99 | × empty | flow p99 | × empty | bc-authorize p99 | errors | goal (token p99 ≤ 1.2× empty) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    sweeps = [
        "| backend | rows made overdue | expired | passes with work | rows per pass | pass ms min / median / max | idle pass ms (pending not due / after) | sweep time total |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    plans: list[str] = []
    notes: list[str] = []
    for result in results:
        rows.extend(_latency_rows(result))
        sweeps.append(_sweep_row(result))
        plans.append(_plans(result))
        notes.append(
            f"- {result['backend']}: {_when(result)}; 100,000 rows inserted in {result['insert']['seconds']} s."
        )
    return (
        head
        + "\n"
        + "\n".join(notes)
        + "\n\n"
        + "\n".join(rows)
        + "\n\n"
        + SWEEP_HOW
        + "\n"
        + "\n".join(sweeps)
        + "\n\n"
        + "\n".join(plans)
    )


MANY_HOW = """\
`bench/run_bench.py --only pending-many-sqlite,pending-many-postgres` (also part of
`make bench`). For each backend two Backchannel servers of the same configuration (one
worker, automated approval hook) run side by side on ports 8089 and 8090: one on an empty
database, one on a database holding 100,000 pending poll requests of the bench client,
spread over the 64 bench users and expiring an hour later (inserted in bulk by
`seed_bench.py add-pending`, SQLAlchemy Core, no HTTP). One `compare.sh` run measures both
with the normal poll flow (targets interleaved, order rotated per repetition):
`./compare.sh <empty> <100k> --concurrency 16 --flows 3000 --reps 3 --warmup 100 --http aiohttp`.
Latencies in ms, median over the 3 repetitions of each repetition's percentile; × = ratio
to the empty database in the same run. The other engineers' test suites may share the
machine during a run, so absolute figures vary; the ratio is what counts.
"""

SWEEP_HOW = """\
Expiry sweep: after the load run the 100k server is stopped, every pending row's
`expires_at` is set in the past (one UPDATE) and `seed_bench.py sweep` runs the server's own
`ExpirySweeper.run_once()` (push requests one by one, poll/ping in bulk via
`storage.requests.expire_overdue`, 1,000 rows per pass; the server runs a pass every 2 s)
until a pass expires nothing. Idle pass = a pass with nothing overdue.
"""


def _latency_rows(result: dict[str, Any]) -> list[str]:
    runs = result["runs"]
    names = sorted(runs, key=lambda n: 0 if n.endswith("empty") else 1)
    base = runs[names[0]]["median"] if names else {}
    rows = []
    for name in names:
        m = runs[name]["median"]
        errors = sum(r["errors"] for r in runs[name]["reps"])
        token_ratio = m["token_p99"] / base["token_p99"] if base.get("token_p99") else None
        flow_ratio = m["flow_p99"] / base["flow_p99"] if base.get("flow_p99") else None
        is_empty = name == names[0]
        verdict = (
            "—" if is_empty else ("**pass**" if token_ratio and token_ratio <= 1.2 else "**FAIL**")
        )
        database = "empty" if is_empty else "100,000 pending"
        rows.append(
            f"| {result['backend']} | {database} | {m['flows_per_s']:.1f} | {m['token_p50']:.2f} | {m['token_p99']:.2f} "
            f"| {_x(token_ratio)} | {m['flow_p99']:.2f} | {_x(flow_ratio)} | {m['bc_p99']:.2f} | {errors} | {verdict} |"
        )
    return rows


def _sweep_row(result: dict[str, Any]) -> str:
    s = result["sweep"]
    ms = s["pass_ms"]
    spread = f"{ms.get('min', 0)} / {ms.get('median', 0)} / {ms.get('max', 0)}" if ms else "—"
    return (
        f"| {result['backend']} | {s['made_overdue']:,} | {s['expired_total']:,} | {s['passes_with_work']} "
        f"| {s['rows_per_pass']:,} | {spread} | {s['idle_pass_ms_before']} / {s['idle_pass_ms_after']} "
        f"| {s['sweep_seconds_total']} s |"
    )


def _plans(result: dict[str, Any]) -> str:
    lines = [
        f"Query plans of the sweeper's candidate queries ({result['backend']}, 100,000 overdue):\n",
        "```",
    ]
    for name, plan in result["sweep"]["plans"].items():
        lines.append(f"-- {name}")
        lines.extend(plan[:8])
    lines.append("```\n")
    return "\n".join(lines)


def _x(value: float | None) -> str:
    return f"{value:.2f}×" if value is not None else "—"
