"""Paginating lists over tables of millions of rows without counting them."""

import json

from django.core.paginator import Paginator
from django.db import connections
from django.db.models import QuerySet
from django.utils.functional import cached_property


def planner_row_estimate(queryset: QuerySet) -> int | None:
    """Return how many rows PostgreSQL's planner expects `queryset` to have, from its
    statistics and without reading a row (`EXPLAIN`); None on other databases."""
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return None
    sql, params = queryset.order_by().query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


def count_up_to(queryset: QuerySet, cap: int) -> int:
    """Return how many rows `queryset` has if that is at most `cap`, and otherwise `cap + 1`,
    reading no more than `cap + 1` rows (`SELECT COUNT(*) FROM (… LIMIT cap + 1)`)."""
    # Unordered: the count needs no order, and an ORDER BY under the LIMIT could make the
    # database sort every matching row before it stops.
    return queryset.order_by()[: cap + 1].count()


class EstimatedCountPaginator(Paginator):
    """A paginator whose count never reads much more than a page's worth of rows beyond the
    page asked for: it counts exactly up to `exact_up_to` rows past the page's start, says
    "more than N" beyond that (`count_is_lower_bound`), and where the planner expects a
    large list takes its estimate without counting (`count_is_estimate`: "about N").

    A COUNT(*) reads every row it counts: a million for the helpdesk's "All keys", thousands
    for a filter of the queue, on every page view. The planner's estimate costs a plan, not a
    scan, and is trusted where it expects a large list. Where it expects a small one it is not
    shown: the planner's estimates for the queue's filters are off by up to a thousand times
    (7 rows expected, 4,000 there), so the rows are counted, but only up to the cap.

    The count covers at least `exact_up_to` rows past the page asked for (`page_asked`), so
    there are always page links onwards while rows remain. With an estimate the last page
    links may run past the real end: such a page lists no rows, and a page past the estimate
    is Django's "invalid page" (the admin redirects to the list).
    """

    # Up to this many rows (past the page's start), the list is counted exactly: reading
    # them costs about as much as showing a page, whatever the size of the table.
    exact_up_to = 1_000
    # Where the planner expects more rows than this, the list is not counted at all.
    trust_estimate_above = 10_000

    # The count is not exact: "about" it (an estimate, or a lower bound)…
    count_is_estimate = False
    # … or more rows than it (the rows were counted up to count_cap, and there were more).
    count_is_lower_bound = False

    def __init__(self, object_list, per_page, *args, page_asked: int = 1, **kwargs):
        super().__init__(object_list, per_page, *args, **kwargs)
        self.page_asked = max(page_asked, 1)

    @cached_property
    def count_cap(self) -> int:
        """Return how many rows are counted at most: the cap past the start of the page."""
        return self.exact_up_to + (self.page_asked - 1) * self.per_page

    @cached_property
    def count(self) -> int:
        if not isinstance(self.object_list, QuerySet):
            return Paginator.count.func(self)
        estimate = planner_row_estimate(self.object_list)
        if estimate is not None and estimate > self.trust_estimate_above:
            self.count_is_estimate = True
            return estimate
        counted = count_up_to(self.object_list, self.count_cap)
        # count_cap + 1 rows: there are more than count_cap, and one more row keeps a link to
        # the page after the cap's. Not exact either: a page that only knows "about" says so.
        self.count_is_lower_bound = self.count_is_estimate = counted > self.count_cap
        return counted
