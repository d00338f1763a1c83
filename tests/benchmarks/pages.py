"""Pages at scale (issue #15): the portal's pages and the helpdesk queue with 100 merchants,
then with 100,000 merchants, 1,000,000 keys and 1,000,000 audit events.

Each page is measured at both sizes (p50, p95, its queries); at the large size every query it
runs is explained, and the plans are recorded here: a sequential scan of a large table, or a
count of more rows than a page shows, is a missed target.

The helpdesk queue's pages are compared like with like. At 100 merchants a filter such as
"waiting for the merchant" has a handful of keys, at 100,000 a full page of 50: rendering 50
rows instead of 2 is not the table growing. So each queue page is measured at both sizes
showing the number of rows it shows at 100 merchants (at most a page, at least one): the
benchmark sets the admin's `list_per_page` to that number for its own requests
(`rows_per_page`), and puts it back after. The product's full page at 100,000 merchants is
measured too, and reported beside it for information; its queries are the ones explained.
"""

import json
import re
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.contrib import admin
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.benchmarks import scale
from tests.benchmarks.harness import SMALL, Section, Target, Timings, scaled, timed
from tests.helpers import verify_session

REPEATS = 20
WARM_UP = 3
BASE = {"merchants": 100, "credentials": 1_000, "audit_events": 1_000}
LARGE = {
    "merchants": scaled(scale.FULL_MERCHANTS, least=BASE["merchants"]),
    "credentials": scaled(scale.FULL_CREDENTIALS, least=BASE["credentials"]),
    "audit_events": scaled(scale.FULL_AUDIT_EVENTS, least=BASE["audit_events"]),
}
SLOWDOWN_ALLOWED = 1.5
TIMES = "\N{MULTIPLICATION SIGN}"
BIG_TABLES = frozenset(
    {
        "credentials_credential",
        "teams_auditevent",
        "merchants_merchant",
        "teams_membership",
        "teams_user",
        "merchants_outgoingemail",
    }
)
# A count that reads more rows than this is counting a large share of a big table.
COUNTED_ROWS_ALLOWED = 50_000
QUEUE = reverse("admin:credentials_credential_changelist")
AUDIT = reverse("admin:audit_auditevent_changelist")


@dataclass
class Measured:
    timings: Timings
    queries: list[str]
    rows: int | None  # rows in the admin list, None on other pages


@dataclass
class Page:
    label: str
    url: str
    staff: bool = False
    # An admin list of keys: measured with as many rows at both sizes.
    queue: bool = False
    at: dict[str, Measured] = field(default_factory=dict)
    # Rows a page of the list shows at both sizes: what it shows at 100 merchants.
    rows_compared: int | None = None

    @property
    def label_with_rows(self) -> str:
        if self.rows_compared is None:
            return self.label
        plural = "" if self.rows_compared == 1 else "s"
        return f"{self.label} ({self.rows_compared} row{plural})"


def _pages(bench) -> list[Page]:
    slug = bench.merchant.slug
    queue = [
        ("helpdesk queue (default: waiting)", ""),
        ("helpdesk queue, search a merchant (waiting)", "?q=Bench+Merchant"),
        ("helpdesk queue, search a merchant (all keys)", "?acknowledged=all&q=Bench+Merchant"),
        ("helpdesk queue, follow-up overdue", "?acknowledged=overdue"),
        ("helpdesk queue, waiting for the merchant", "?acknowledged=merchant"),
        ("helpdesk queue, acknowledged", "?acknowledged=yes"),
        ("helpdesk queue, all keys", "?acknowledged=all"),
        ("helpdesk queue, all keys, page 3", "?acknowledged=all&p=3"),
        ("helpdesk queue, flagged", "?flagged=yes"),
        ("helpdesk queue, verified", "?verification_state__exact=verified"),
        (
            "helpdesk queue, superseded (all keys)",
            "?acknowledged=all&lifecycle_state__exact=superseded",
        ),
        ("helpdesk queue, live", "?mode__exact=live"),
        ("helpdesk queue, Kashier (all keys)", "?acknowledged=all&provider__exact=kashier"),
        ("helpdesk queue, restricted", "?kind__exact=restricted"),
    ]
    return [
        Page("merchant page", bench.merchant.get_absolute_url()),
        Page("dashboard", reverse("merchants:dashboard")),
        Page("key detail", bench.key.get_absolute_url()),
        Page("team page", reverse("teams:team", kwargs={"slug": slug})),
        Page("audit trail", reverse("teams:audit", kwargs={"slug": slug})),
        Page("audit trail, page 4", reverse("teams:audit", kwargs={"slug": slug}) + "?page=4"),
        Page("admin home (queue counts)", reverse("admin:index"), staff=True),
        Page("admin audit trail", AUDIT, staff=True),
        Page(
            "admin audit trail, one merchant",
            AUDIT + f"?merchant__id__exact={bench.merchant.pk}",
            staff=True,
        ),
        *(Page(label, QUEUE + query, staff=True, queue=True) for label, query in queue),
    ]


@contextmanager
def rows_per_page(rows: int | None):
    """Show `rows` rows a page in the helpdesk queue for the requests inside (None: the
    admin's own page size). The benchmark's setting only: it is put back on the way out."""
    from credentials.models import Credential

    model_admin = admin.site._registry[Credential]
    if rows is not None:
        model_admin.list_per_page = rows
    try:
        yield
    finally:
        model_admin.__dict__.pop("list_per_page", None)


def _measure(client, url, *, rows: int | None = None) -> Measured:
    with rows_per_page(rows):
        for _ in range(WARM_UP):
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)
        timings = Timings()
        for _ in range(REPEATS):
            timed(timings, lambda: client.get(url))
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url)
    changelist = (response.context or {}).get("cl")
    return Measured(
        timings,
        [query["sql"] for query in captured.captured_queries],
        len(changelist.result_list) if changelist is not None else None,
    )


def _nodes(plan: dict, depth: int = 0):
    yield depth, plan
    for child in plan.get("Plans", ()):
        yield from _nodes(child, depth + 1)


@dataclass
class Explained:
    sql: str
    summary: str
    text: str
    seq_scans: list[str]
    counted_rows: int


def _explain(sql: str) -> Explained:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql)
        raw = cursor.fetchone()[0]
        cursor.execute("EXPLAIN " + sql)
        text = "\n".join(row[0] for row in cursor.fetchall())
    plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
    parts, seq_scans, counted = [], [], 0
    counts = bool(re.search(r"\bCOUNT\(", sql, re.I))
    for _, node in _nodes(plan):
        words = node["Node Type"]
        if node.get("Index Name"):
            words += f" {node['Index Name']}"
        elif node.get("Relation Name"):
            words += f" {node['Relation Name']}"
        parts.append(words)
        if node["Node Type"] == "Seq Scan" and node.get("Relation Name") in BIG_TABLES:
            seq_scans.append(node["Relation Name"])
        if counts and node.get("Relation Name") in BIG_TABLES:
            counted = max(counted, int(node.get("Plan Rows", 0)))
    return Explained(sql, " > ".join(parts), text, seq_scans, counted)


def _is_read(sql: str) -> bool:
    return sql.lstrip().upper().startswith(("SELECT", "WITH"))


def _short(sql: str, limit: int = 110) -> str:
    return sql if len(sql) <= limit else sql[: limit - 1] + "…"


def _rows_shown(client, url) -> int:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return len(response.context["cl"].result_list)


def _run_pages(pages, clients, size: str) -> None:
    for page in pages:
        client = clients[page.staff]
        if page.queue and size == "base":
            # What the page shows at 100 merchants (at most a full page); one row a page when
            # it shows none there, the fewest a page can show where there are some.
            page.rows_compared = max(1, _rows_shown(client, page.url))
        page.at[size] = _measure(client, page.url, rows=page.rows_compared)
        if page.queue and size == "large":
            page.at["large, full page"] = _measure(client, page.url)


def run() -> Section:
    if connection.vendor != "postgresql":
        return Section(
            "Pages at scale",
            "Needs PostgreSQL (set DATABASE_URL): the data is generated with its "
            "`generate_series` and the plans are PostgreSQL's.",
        )
    from tests.factories import UserFactory

    bench = scale.bench_merchant_create()
    owner_client, staff_client = Client(), Client()
    owner_client.force_login(bench.owner)
    verify_session(
        staff_client,
        UserFactory(email="bench-pages-staff@example.test", is_staff=True, is_superuser=True),
    )
    clients = {False: owner_client, True: staff_client}
    pages = _pages(bench)

    base = scale.populate(**BASE)
    _run_pages(pages, clients, "base")
    large = scale.populate(**LARGE)
    _run_pages(pages, clients, "large")

    rows, plans, targets = [], [], []
    missing_index, grown, over_counted = [], [], []
    explained_count = 0
    for page in pages:
        small, big = page.at["base"], page.at["large"]
        # The product's page at the large size: its full page of the queue.
        product = page.at.get("large, full page", big)
        ratio = big.timings.p50_ms / small.timings.p50_ms
        full_page = (
            f"{product.timings.p50_ms:.1f} ({product.rows} rows, {len(product.queries)} queries)"
            if page.queue
            else ""
        )
        rows.append(
            f"| {page.label} | {page.rows_compared or ''} | {small.timings.p50_ms:.1f} | "
            f"{small.timings.p95_ms:.1f} | {big.timings.p50_ms:.1f} | {big.timings.p95_ms:.1f} | "
            f"{ratio:.2f} | {len(small.queries)} | {len(big.queries)} | {full_page} |"
        )
        targets.append(
            Target(
                f"pages: {page.label_with_rows}: p50 ≤ {SLOWDOWN_ALLOWED} {TIMES} p50 at 100 "
                "merchants",
                f"{big.timings.p50_ms:.1f} ms vs {small.timings.p50_ms:.1f} ms "
                f"({ratio:.2f} {TIMES})",
                None if SMALL else ratio <= SLOWDOWN_ALLOWED,
            )
        )
        # Fewer at the large size is allowed: a count the paginator estimates instead.
        if max(len(big.queries), len(product.queries)) > len(small.queries):
            grown.append(f"{page.label} ({len(small.queries)} → {len(big.queries)})")
        # The rows compared read like the full page; a read only they run is checked as well.
        for sql in set(big.queries) - set(product.queries):
            if _is_read(sql) and _explain(sql).seq_scans:
                missing_index.append(f"{page.label_with_rows}")
        lines, full = [], []
        for number, sql in enumerate(product.queries, 1):
            if not _is_read(sql):
                lines.append(f"{number}. (not a read: not explained) `{_short(sql, 60)}`")
                continue
            plan = _explain(sql)
            explained_count += 1
            flag = " **seq scan: " + ", ".join(plan.seq_scans) + "**" if plan.seq_scans else ""
            lines.append(f"{number}. {plan.summary}{flag}")
            full.append(f"-- {number}. {sql}\n{plan.text}")
            if plan.seq_scans:
                missing_index.append(f"{page.label} #{number}")
            if page.staff and plan.counted_rows > COUNTED_ROWS_ALLOWED:
                over_counted.append(f"{page.label} #{number} (~{plan.counted_rows:,} rows)")
        plans += [
            f"**{page.label}** (`{page.url}`)",
            "",
            *lines,
            "",
            "<details><summary>plans</summary>",
            "",
            "```",
            *full,
            "```",
            "",
            "</details>",
            "",
        ]
    judged = None if SMALL else True
    targets += [
        Target(
            "pages: no more queries at 100,000 merchants than at 100",
            "grew: " + "; ".join(grown) if grown else f"all {len(pages)} pages the same",
            None if SMALL else not grown,
        ),
        Target(
            "pages: every query uses an index",
            f"{explained_count} reads explained; seq scans of a large table: "
            + ("; ".join(missing_index) if missing_index else "none"),
            judged and not missing_index,
        ),
        Target(
            "pages: the admin never counts all rows",
            "counts over "
            + (
                "; ".join(over_counted)
                if over_counted
                else f"no more than {COUNTED_ROWS_ALLOWED:,} rows anywhere"
            ),
            judged and not over_counted,
        ),
    ]
    body = "\n".join(
        [
            "In-process requests through Django's test client, signed in as the bench "
            "merchant's Owner (portal) or a superuser (admin); "
            f"{REPEATS} requests a page after {WARM_UP} to warm up. The bench merchant has a "
            "team of four, 16 keys and 300 audit events at both sizes.",
            "",
            f"- Small size: {base.merchants:,} merchants, {base.credentials:,} keys, "
            f"{base.audit_events:,} audit events (generated in {base.seconds:.1f} s)",
            f"- Large size: {large.merchants:,} merchants, {large.credentials:,} keys, "
            f"{large.audit_events:,} audit events (grown in {large.seconds:.1f} s)",
            "",
            "A queue page's figures are for the number of rows it shows at 100 merchants (rows "
            "compared), at both sizes; the last column is the product's full page at 100,000 "
            "merchants, for information. Its plans are the ones below.",
            "",
            f"| page | rows compared | p50 ms small | p95 ms small | p50 ms large | "
            f"p95 ms large | {TIMES} | queries small | queries large | "
            "p50 ms large, full page |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
            *rows,
            "",
            "### Plans at the large size",
            "",
            "One line a query: its plan's nodes, outermost first.",
            "",
            *plans,
        ]
    )
    return Section("Pages at scale", body, targets)
