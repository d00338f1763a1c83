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
    """A paginator whose count never reads more than `exact_up_to` rows: it counts exactly up
    to that many, and beyond it takes the planner's estimate (`count_is_estimate`, for the
    page to say "about N"), or says "more than N" where there is no estimate
    (`count_is_lower_bound`, SQLite).

    A COUNT(*) reads every row it counts: a million for the helpdesk's "All keys", thousands
    for a filter of the queue, on every page view. The planner's estimate costs a plan, not a
    scan; where it expects a large list it is trusted outright, and where it expects a small
    one the rows are counted, but only up to the cap, since the planner's estimates for the
    queue's filters can be off by a thousand times.

    With an estimate the page links may run past the real end: such a page lists no rows
    (Django's admin then shows an empty list), and a page past the estimate is Django's
    "invalid page" (the admin redirects to the list).
    """

    # Up to this many rows, the list is counted exactly: reading them costs about as much as
    # showing a page, whatever the size of the table.
    exact_up_to = 1_000
    # Where the planner expects more rows than this, the list is not counted at all.
    trust_estimate_above = 10_000

    count_is_estimate = False
    count_is_lower_bound = False

    @cached_property
    def count(self) -> int:
        if not isinstance(self.object_list, QuerySet):
            return Paginator.count.func(self)
        estimate = planner_row_estimate(self.object_list)
        if estimate is not None and estimate > self.trust_estimate_above:
            self.count_is_estimate = True
            return estimate
        counted = count_up_to(self.object_list, self.exact_up_to)
        if counted <= self.exact_up_to:
            return counted
        if estimate is not None and estimate > self.exact_up_to:
            self.count_is_estimate = True
            return estimate
        # More rows than the cap and no estimate above it: all that is known is "more than".
        self.count_is_lower_bound = True
        return self.exact_up_to
