"""The few statements and SQL fragments written by hand, and names for them.

The worker runs a handful of statements for every verification. Built by the ORM, each costs
a fraction of a millisecond to a millisecond of CPU to resolve and compile, often more than
the database takes to run it (docs/benchmarks.md, "Cost of one verification"); written once,
they cost nothing. So the subqueries it asks are annotations (`RawSQL`), rows it loads with
their related rows come through `Selection` (the ORM's own converters and `from_db`), rows
it stores through `insert_rows` and rows it changes through `update_by_ids` and
`save_fields`, each with the fields' own conversions. Names come from the models, so a
renamed table or column is followed; values are always parameters.
"""

import functools
import weakref

from django.db import connection, models
from django.db.models import signals
from django.db.models.expressions import RawSQL


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


class Selection:
    """One model's columns in a hand-written SELECT, under `alias`, and the instance they
    load: what the ORM does for a query's own model and each `select_related` one, without
    compiling the query each time. `load` applies the same converters as the ORM (JSON,
    dates on SQLite, decryption), so an instance loaded here is the one the ORM would give;
    fields in `deferred` are left out (read on access, like `defer`)."""

    def __init__(self, model, alias: str = "", *, deferred: tuple[str, ...] = ()):
        self.model = model
        self.alias = alias or model._meta.db_table
        self.fields = [f for f in model._meta.concrete_fields if f.name not in deferred]
        self.names = [f.attname for f in self.fields]
        self._pk = self.fields.index(model._meta.pk)
        self.columns = ", ".join(column(model, f.name, alias) for f in self.fields)
        self._converters: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def __len__(self) -> int:
        return len(self.fields)

    def _converters_for(self, db) -> list[tuple[int, list, object]]:
        converters = self._converters.get(db.ops)
        if converters is None:
            converters = []
            for index, field in enumerate(self.fields):
                col = field.get_col(self.alias)
                found = db.ops.get_db_converters(col) + col.get_db_converters(db)
                if found:
                    converters.append((index, found, col))
            self._converters[db.ops] = converters
        return converters

    def load(self, values, db=None):
        """Return the instance in `values` (this selection's columns, in order), or None when
        its primary key is NULL (an outer join that found no row)."""
        db = db or connection
        if values[self._pk] is None:
            return None
        values = list(values)
        for index, converters, col in self._converters_for(db):
            for converter in converters:
                values[index] = converter(values[index], col, db)
        return self.model.from_db(db.alias, self.names, values)


def load_row(row, *selections: Selection) -> tuple[list, tuple]:
    """Return the instances `selections` load from `row` (their columns in turn), and the
    values that follow them."""
    instances, at = [], 0
    for selection in selections:
        instances.append(selection.load(row[at : at + len(selection)]))
        at += len(selection)
    return instances, tuple(row[at:])


def _runs_no_code_on_save(model, *, update: bool) -> None:
    """Refuse a model that runs code of its own when saved (signal receivers; for an update,
    a `save` override too): the statements here skip `save()`, and with it that code."""
    listened = signals.pre_save.has_listeners(model) or signals.post_save.has_listeners(model)
    overridden = update and model.save is not models.Model.save
    if listened or overridden:
        raise TypeError(
            f"{model.__name__} runs code when saved; save it through the ORM, not core.sql."
        )


def insert_rows(objects: list, *, unless_exists: str = "") -> list:
    """Insert `objects` (new instances of one model) in one statement; return those inserted,
    their primary keys set. With `unless_exists` (a unique field), leave out each whose value
    of it is stored already, or repeated among `objects`.

    What `create` and `bulk_create` do, without compiling the insert each time, and with
    `INSERT … ON CONFLICT (field) DO NOTHING RETURNING`: no savepoint to catch a duplicate
    (two round trips more) and no second pass to sort stored from new. The model's `save()`
    is not called: a model with save signal receivers is refused.
    """
    if not objects:
        return []
    model = type(objects[0])
    _runs_no_code_on_save(model, update=False)
    meta = model._meta
    key = meta.get_field(unless_exists) if unless_exists else meta.pk
    sql, fields = _insert_sql(connection.vendor, model, unless_exists, len(objects))
    params = [
        field.get_db_prep_save(field.pre_save(instance, True), connection)
        for instance in objects
        for field in fields
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        returned = cursor.fetchall()
    if not unless_exists:
        # Rows come back in the order they were given (PostgreSQL and SQLite both).
        stored = list(objects)
        for instance, (pk, _) in zip(stored, returned, strict=True):
            instance.pk = pk
    else:
        by_value = {value: pk for pk, value in returned}
        stored = []
        for instance in objects:
            value = getattr(instance, key.attname)
            if value in by_value:
                instance.pk = by_value.pop(value)
                stored.append(instance)
    for instance in stored:
        instance._state.adding, instance._state.db = False, connection.alias
    return stored


@functools.lru_cache(maxsize=256)
def _insert_sql(vendor: str, model, unless_exists: str, rows: int) -> tuple[str, list]:
    """The INSERT of `insert_rows`, written once for each shape of call."""
    meta = model._meta
    fields = [field for field in meta.concrete_fields if field is not meta.pk]
    key = meta.get_field(unless_exists) if unless_exists else meta.pk
    one_row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    conflict = f"ON CONFLICT ({quoted(key.column)}) DO NOTHING " if unless_exists else ""
    sql = (
        f"INSERT INTO {table(model)} ({', '.join(quoted(f.column) for f in fields)}) "  # noqa: S608  names from the models
        f"VALUES {', '.join([one_row] * rows)} {conflict}"
        f"RETURNING {quoted(meta.pk.column)}, {quoted(key.column)}"
    )
    return sql, fields


def update_by_ids(model, ids, **values) -> int:
    """`model.objects.filter(pk__in=ids).update(**values)`, for plain values and `RawSQL`
    ones (whose SQL may name the table's columns), without compiling an update each time;
    return how many rows it changed."""
    if not ids:
        return 0
    meta = model._meta
    shape, params = [], []
    for name, value in values.items():
        if isinstance(value, RawSQL):
            shape.append((name, value.sql))
            params.extend(value.params)
        else:
            shape.append((name, None))
            params.append(meta.get_field(name).get_db_prep_save(value, connection))
    sql = _update_sql(connection.vendor, model, tuple(shape), len(ids))
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *ids])
        return cursor.rowcount


@functools.lru_cache(maxsize=256)
def _update_sql(vendor: str, model, shape: tuple[tuple[str, str | None], ...], rows: int) -> str:
    """The UPDATE of `update_by_ids`, written once for each shape of call: the fields set,
    each to a parameter (None) or to its SQL."""
    meta = model._meta
    assignments = [
        f"{quoted(meta.get_field(name).column)} = " + (f"({sql})" if sql is not None else "%s")
        for name, sql in shape
    ]
    return (
        f"UPDATE {table(model)} SET {', '.join(assignments)} "  # noqa: S608  names from the models
        f"WHERE {quoted(meta.pk.column)} IN ({', '.join(['%s'] * rows)})"
    )


def save_fields(instance, fields: list[str]) -> None:
    """`instance.save(update_fields=fields)`, without compiling the update each time, for a
    model whose saving runs no code of its own: one with a `save` override or save signal
    receivers is refused."""
    _runs_no_code_on_save(type(instance), update=True)
    meta = type(instance)._meta
    values = {name: meta.get_field(name).pre_save(instance, False) for name in fields}
    update_by_ids(type(instance), [instance.pk], **values)
