"""The helpdesk queue's search: the admin's own matches, asked in a shape the indexes serve.

Django's search keeps a key when every word of the search is in one of `search_fields`
(case-insensitively). Asked as one query, the merchant's columns and the key's are ORed across
the join, so PostgreSQL reads every key and joins every merchant before it can test a row.
Here each word looks up the merchants it names first (their trigram indexes,
migrations/0011_queue_search.py), and then keys are asked `merchant_id IN (…) OR hint … OR
account id …`, which the planner answers by ORing index scans.

A word that names very many merchants (more than MERCHANTS_LISTED_UP_TO: "merchant", "shop")
is asked through the join as before: it selects most keys anyway, so a page of them is found
by reading the queue in order and there is no point in listing the merchants.

A word shorter than three characters has no trigram: it is still matched exactly as before,
but by reading rows (the waiting queue, or the keys in order until a page is full).
"""

from django.contrib.admin.utils import lookup_spawns_duplicates
from django.db.models import Q
from django.db.models.constants import LOOKUP_SEP
from django.utils.text import smart_split, unescape_string_literal

# Up to this many merchants, a word's merchants are listed by id for the keys' query.
MERCHANTS_LISTED_UP_TO = 1000


def search_words(search_term: str) -> list[str]:
    """Return the words of `search_term` as the admin splits them: on spaces, with a quoted
    phrase kept as one word (ModelAdmin.get_search_results)."""
    words = []
    for word in smart_split(search_term):
        if word.startswith(('"', "'")) and word[0] == word[-1]:
            word = unescape_string_literal(word)
        words.append(word)
    return words


class RelatedFirstSearchMixin:
    """A ModelAdmin whose search looks words up in one related model first (`search_related`,
    a foreign key among `search_fields`, such as `merchant` for `merchant__name`), then in the
    model's own columns. Same matches as Django's search over the same `search_fields`."""

    search_related = None

    def get_search_results(self, request, queryset, search_term):
        search_fields = self.get_search_fields(request)
        words = search_words(search_term)
        if not (search_fields and words):
            return queryset, False
        prefix = self.search_related + LOOKUP_SEP
        related = [field[len(prefix) :] for field in search_fields if field.startswith(prefix)]
        own = [field for field in search_fields if not field.startswith(prefix)]
        conditions = [self._word_condition(word, related=related, own=own) for word in words]
        may_have_duplicates = any(
            lookup_spawns_duplicates(self.opts, field) for field in search_fields
        )
        return queryset.filter(*conditions), may_have_duplicates

    def _word_condition(self, word: str, *, related: list[str], own: list[str]) -> Q:
        """Return the condition of a row that has `word` in one of the searched columns."""
        condition = Q.create([(f"{field}__icontains", word) for field in own], connector=Q.OR)
        if not related:
            return condition
        field = self.opts.get_field(self.search_related)
        named = list(
            field.related_model._base_manager.filter(
                Q.create([(f"{column}__icontains", word) for column in related], connector=Q.OR)
            )
            # In key order: with many matches the primary key's index finds the first ones
            # without reading the others.
            .order_by("pk")
            .values_list("pk", flat=True)[: MERCHANTS_LISTED_UP_TO + 1]
        )
        if len(named) > MERCHANTS_LISTED_UP_TO:
            through_join = Q.create(
                [(f"{self.search_related}__{column}__icontains", word) for column in related],
                connector=Q.OR,
            )
            return through_join | condition
        # No merchant named: `IN ()` drops out of the OR, leaving the key's own columns.
        return Q(**{f"{field.attname}__in": named}) | condition
