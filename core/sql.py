"""Names for the few SQL fragments written by hand: the subqueries the worker asks on every
verification, as annotations (`RawSQL`). Built by the ORM, each costs about a millisecond of
CPU to resolve and compile, more than the query itself (docs/benchmarks.md, "Cost of one
verification"); written once, it costs nothing. Names come from the models, so a renamed
table or column is followed."""

import functools

from django.db import connection


def quoted(name: str) -> str:
    return connection.ops.quote_name(name)


def table(model) -> str:
    """Return `model`'s table, quoted."""
    return quoted(model._meta.db_table)


def columns_of(model, alias: str = ""):
    """Return `column` for `model` under `alias`, as a function of the field's name."""
    return functools.partial(column, model, alias=alias)


def column(model, field: str, alias: str = "") -> str:
    """Return `field`'s column of `model`, quoted and qualified by `alias` (default: the table,
    which is how Django names the main table of a query)."""
    name = model._meta.get_field(field).column
    return f"{quoted(alias) if alias else table(model)}.{quoted(name)}"
