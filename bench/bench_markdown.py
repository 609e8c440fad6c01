"""The text of docs/benchmarks.md, from the results of one ``run_bench.py`` run."""

# ruff: noqa: E501  (Markdown table rows are long by nature)

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench_report import REFERENCE, ConfigResult


@dataclass(frozen=True)
class Goal:
    config: str
    concurrency: int
    measure: str  # "x_flows" or "x_cpu"
    text: str
    passes: Callable[[float], bool]


GOALS = (
    Goal("sqlite-1w", 16, "x_flows", "flows/s ≥ 1.00× oidc-provider", lambda x: x >= 1.0),
    Goal("sqlite-1w", 64, "x_flows", "flows/s ≥ 0.95× oidc-provider", lambda x: x >= 0.95),
    Goal("sqlite-1w", 16, "x_cpu", "server CPU/flow ≤ 1.05× oidc-provider", lambda x: x <= 1.05),
    Goal("sqlite-1w", 64, "x_cpu", "server CPU/flow ≤ 1.05× oidc-provider", lambda x: x <= 1.05),
    Goal("sqlite-2w", 64, "x_flows", "flows/s ≥ 1.40× oidc-provider", lambda x: x >= 1.4),
)

CONFIG_LABELS = {
    "sqlite-1w": "Backchannel SQLite, 1 worker",
    "sqlite-2w": "Backchannel SQLite, 2 workers",
    "postgres-1w": "Backchannel PostgreSQL, 1 worker",
}

SETTINGS = """\
| | oidc-provider (reference) | Backchannel |
| --- | --- | --- |
| version | {oidc_provider} (Node {node}), `server.mjs` of the harness | {backchannel} (`{commit}`), Python {python} |
| start | `AUTO_APPROVE=0 OIDC_ADAPTER=map oidc-provider/start.sh` | `backchannel serve --workers N` (uvicorn, `access_log=False`; the app's own JSON access log stays on, its default) |
| storage | unbounded in-memory `Map` adapter (nothing is durable) | embedded SQLite (stdlib `sqlite3` on the event-loop thread, one connection per process, WAL checkpoints on a thread of their own, a fresh file per configuration) or PostgreSQL 127.0.0.1 (asyncpg, fresh database); every state change committed before the response |
| approval | `POST /test/ciba/approve` (the harness's helper route) | `POST /test/ciba/approve` (`testing.automated_approval = true`) |
| client | `bench-poll`, client_secret_basic, fixed secret | generated client, client_secret_basic, generated 256-bit secret (stored as a keyed fast hash) |
| id_token | RS256 (RSA 2048) | RS256 (RSA 2048) |
| access token | opaque (stored in the adapter) | JWT (RFC 9068) signed **ES256** |
| where signatures are computed | jose's WebCrypto `crypto.subtle.sign`: on libuv's thread pool, beside the event loop | RS256 in a signing child process beside the event loop (`protocol/signing_process.py`, one per worker); ES256 inline |
| refresh token | none (the client has no `refresh_token` grant, no `offline_access`) | none: `tokens.issue_refresh_tokens = false` (see below) |
| login_hint | `bench-user-<flow index>`, accepted as the account id | `bench-user-<driver worker>`, 64 users in the database (SQLite: each lookup answered from the store's memory while no other connection commits, see `storage/sql/kept_reads.py`; PostgreSQL: read every time) |

Non-default Backchannel settings (environment): `BACKCHANNEL_DEV_MODE=true` (plain-http
issuer), `BACKCHANNEL_ISSUER=http://127.0.0.1:8088`, `BACKCHANNEL_SERVER__PORT=8088`,
`BACKCHANNEL_DATABASE__URL=…` (scratch SQLite file under `var/bench/` or a fresh
`bench_<random>` PostgreSQL database, dropped afterwards),
`BACKCHANNEL_KEYS__MASTER_SECRET_FILE=var/bench/<config>/master.key`,
`BACKCHANNEL_TESTING__AUTOMATED_APPROVAL=true`, `BACKCHANNEL_TOKENS__ISSUE_REFRESH_TOKENS=false`.
Everything else is the default, including `ciba.interval = 5`: the driver approves before
its first poll, so every flow is one bc-authorize, one approval call and one token call
that returns tokens, and no poll is early enough to be answered `slow_down` (the
`slow_down` column shows it; oidc-provider sends no `interval` and does not enforce one).
The refresh token is switched off because oidc-provider's bench client gets none; issuing
one would make Backchannel do an extra insert per flow that the reference does not do.
"""

HOW_TO_READ = """\
How the numbers are made: `compare.sh` (harness driver, aiohttp backend, uvloop) runs each
target as a fresh driver process per repetition, targets interleaved and their order
rotated every repetition. Poll interval 10 ms (the driver sleeps 10 ms after bc-authorize
and the approval call before its first token call). Warm-up flows are discarded. Every
id_token is decoded and its iss/aud/sub/exp/iat checked, the signature of the first 20
and ~2 % of the rest verified against the JWKS. flows/s: median over repetitions, min–max
and spread = (max − min) / median. Latencies: median over repetitions of each
repetition's percentile, in ms. Server CPU ms/flow = server CPU time (utime + stime from
`/proc`) during the measured phase ÷ completed flows. × = ratio to oidc-provider at the
same concurrency *in the same compare run*, median over median; under each table the same
ratio per repetition, of the two runs made back to back in it, shows how far the machine's
drift moves it. Server and driver share the machine's cores;
a driver CPU % above 85 means the driver, not the server, may be the limit.
Absolute numbers drift 5–20 % between runs on this shared VM; only same-run ratios count.
"""


PROFILE = """\
## Profile

`docs/profile-poll-flow.svg` is a py-spy flame graph of one Backchannel worker (SQLite)
and its signing process under the poll flow at concurrency 16; `docs/performance.md` reads
it and lists each optimisation with its before/after figures. To record one
(`pip install py-spy`, not a dependency), start the server as above and, while the driver
runs (e.g. `driver/run.py --target <target> --flows 6000 --concurrency 16 --http aiohttp`):

```
py-spy record -r 250 --nonblocking --subprocesses -p <server pid> -d 7 -o docs/profile-poll-flow.svg
```

The SVG names the programs by their full paths: cut the machine's directories out before
committing it.
"""


def render(
    results: list[ConfigResult], env: dict[str, str], *, quick: bool, chart: Path | None
) -> str:
    parts = [_title(env, quick), _goals(results), _chart(chart), _machine(env)]
    parts += ["## What is compared\n", SETTINGS.format(**env), _commands(results)]
    parts += ["## Results per configuration\n", HOW_TO_READ]
    parts += [_config_section(result) for result in results]
    if not quick:
        from bench_pending_markdown import render_pending_sections

        parts.append(render_pending_sections())
    parts.append(PROFILE)
    return "\n".join(parts)


def _title(env: dict[str, str], quick: bool) -> str:
    kind = "QUICK smoke run (`make bench QUICK=1`) — not the reference figures" if quick else ""
    return (
        "# Benchmarks: Backchannel against node-oidc-provider (CIBA poll flow)\n\n"
        f"Generated by `make bench`, {env['date']} to {env.get('finished', '?')}; "
        "regenerated on every run, do not edit.\n"
        f"{kind}\n"
    )


def _goals(results: list[ConfigResult]) -> str:
    lines = [
        "## Goals of issue 7 (same run, same driver)\n",
        "| configuration | C | goal | measured | result | per repetition |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    by_key = {r.key: r for r in results}
    for goal in GOALS:
        result = by_key.get(goal.config)
        row = result.row(goal.concurrency, reference=False) if result else None
        value = row.get(goal.measure) if row else None
        label = result.label if result else CONFIG_LABELS.get(goal.config, goal.config)
        if value is None:
            lines.append(f"| {label} | {goal.concurrency} | {goal.text} | not measured | — | — |")
            continue
        verdict = "**pass**" if goal.passes(value) else "**FAIL**"
        reps = _ratios_text(row.get(f"{goal.measure}_reps") or [])
        lines.append(
            f"| {label} | {goal.concurrency} | {goal.text} | {value:.3f}× | {verdict} | {reps} |"
        )
    lines.append(
        "\nmeasured: the ratio of the medians over the repetitions, which the goal is judged on. "
        "Per repetition: the ratio of the two runs made back to back in each repetition."
    )
    return "\n".join(lines) + "\n"


def _ratios_text(ratios: list[float | None]) -> str:
    return " · ".join("—" if r is None else f"{r:.2f}" for r in ratios) or "—"


def _chart(chart: Path | None) -> str:
    if chart is None:
        return "(chart not drawn: matplotlib failed, see the run's output)\n"
    return f"![flows/s against concurrency]({chart.name})\n"


def _machine(env: dict[str, str]) -> str:
    return (
        "## Machine\n\n"
        "| item | value |\n| --- | --- |\n"
        f"| CPUs (`nproc`) | {env['nproc']} |\n| CPU model | {env['cpu']} |\n"
        f"| memory | {env['memory']} |\n| kernel | {env['kernel']} |\n"
        f"| Python | {env['python']} |\n| Node.js | {env['node']} |\n"
        f"| load average (1 min) when the report was written | {env.get('load', '?')} |\n"
        "\nServer and load driver run on the same machine and share its cores; other work on "
        "the machine during a run (see the load average) widens the spreads.\n"
    )


def _commands(results: list[ConfigResult]) -> str:
    lines = ["## Commands\n", "From the harness directory (`../shared/bench` or its copy):\n"]
    lines.append("```")
    lines.append("AUTO_APPROVE=0 OIDC_ADAPTER=map oidc-provider/start.sh")
    for result in results:
        workers = f"--workers {result.workers}"
        lines.append(f"# {result.label}: backchannel serve {workers}, then")
        lines.append(result.command)
    lines.append("oidc-provider/stop.sh")
    lines.append("```\n")
    return "\n".join(lines)


def _config_section(result: ConfigResult) -> str:
    head = (
        "| C | server | n | flows/s median | min–max (spread) | flow p50 | flow p99 | bc p99 "
        "| srv CPU ms/flow | srv CPU % | drv CPU % | errors | slow_down | × flows/s | × CPU/flow |"
    )
    lines = [f"### {result.label}\n", head, "|" + " --- |" * 15]
    for row in result.rows:
        lines.append(_row(row))
    if result.exit_code != 0:
        lines.append(f"\n**compare.sh exited with {result.exit_code}**: a run failed (see n).")
    if result.server_exit is not None:
        lines.append(
            f"\n**The server was gone before the compare run ended** (exit status "
            f"{result.server_exit}; negative = killed by that signal). Its log ends without an "
            "error, so the repetitions after that point failed to connect and are missing."
        )
    paired = [row for row in result.rows if row.get("x_flows_reps")]
    if paired:
        per_c = "; ".join(
            f"C={row['concurrency']}: {_ratios_text(row['x_flows_reps'])} "
            f"(CPU/flow {_ratios_text(row.get('x_cpu_reps') or [])})"
            for row in paired
        )
        lines.append(
            f"\nPer repetition, Backchannel ÷ oidc-provider of the two runs made back to back, "
            f"flows/s (and CPU per flow), repetitions in order: {per_c}."
        )
    if result.cpu_note:
        lines.append(f"\nCPU: {result.cpu_note}.")
    if result.cross_check:
        checks = "; ".join(result.cross_check)
        lines.append(
            f"\nCPU read by the driver against the whole process tree (ms/flow): {checks}."
        )
    lines.append(f"\nRaw results: `{_relative(result.out_dir)}` (`compare.sh --summarize DIR`).\n")
    return "\n".join(lines)


def _row(row: dict[str, Any]) -> str:
    flows = row["flows_per_s"]
    name = "oidc-provider" if row["target"] == REFERENCE else "Backchannel"
    spread = (
        f"{_f(flows.get('min'), 1)}–{_f(flows.get('max'), 1)} ({_f(flows.get('spread_pct'), 1)} %)"
    )
    driver = _f(row.get("driver_cpu_pct"), 1) + (" !" if row.get("driver_bound") else "")
    is_reference = row["target"] == REFERENCE
    cells = [
        str(row["concurrency"]), name, str(row.get("runs")), _f(flows.get("median"), 1), spread,
        _f(row.get("flow_p50_ms"), 1), _f(row.get("flow_p99_ms"), 1), _f(row.get("bc_p99_ms"), 2),
        _f(row.get("server_cpu_ms_per_flow"), 3), _f(row.get("server_cpu_pct"), 1), driver,
        str(row.get("errors")), str(row.get("slow_down")),
        "1" if is_reference else _x(row.get("x_flows")), "1" if is_reference else _x(row.get("x_cpu")),
    ]  # fmt: skip
    return "| " + " | ".join(cells) + " |"


def _f(value: Any, digits: int) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _x(value: float | None) -> str:
    return "—" if value is None else f"**{value:.2f}×**"


def _relative(path: Path) -> str:
    parts = path.parts
    return "/".join(parts[parts.index("var") :]) if "var" in parts else path.name
