"""The manifest of what a restricted Stripe key must read for each integration."""

from urllib.parse import urlsplit

import pytest

from credentials.providers.stripe_permissions import (
    NEEDS,
    PERMISSIONS,
    checklist,
    permission_label,
    permissions_for,
)
from merchants.models import Integration

CATALOGUE_ORDER = list(PERMISSIONS)


def test_every_integration_has_an_entry():
    assert set(NEEDS) == set(Integration)


@pytest.mark.parametrize("integration", list(Integration))
def test_every_integration_needs_at_least_one_permission_each_named_once(integration):
    names = NEEDS[integration]

    assert names
    assert len(names) == len(set(names))


@pytest.mark.parametrize("integration", list(Integration))
def test_every_permission_an_integration_needs_is_in_the_catalogue(integration):
    assert set(NEEDS[integration]) <= PERMISSIONS.keys()


def test_every_permission_in_the_catalogue_is_needed_by_some_integration():
    needed = {name for names in NEEDS.values() for name in names}

    assert set(PERMISSIONS) == needed


@pytest.mark.parametrize("permission", PERMISSIONS.values(), ids=list(PERMISSIONS))
def test_every_permission_is_named_as_stripe_names_a_read_permission(permission):
    assert PERMISSIONS[permission.name] is permission
    assert permission.name.startswith("rak_")
    assert permission.name.endswith("_read")
    assert permission.access == "Read"
    assert permission.resource


@pytest.mark.parametrize("permission", PERMISSIONS.values(), ids=list(PERMISSIONS))
def test_every_probe_is_a_path_under_v1_with_at_most_one_item_asked(permission):
    probe = urlsplit(permission.probe)

    assert not probe.scheme
    assert not probe.netloc
    assert probe.path.startswith("/v1/")
    assert probe.query in ("", "limit=1")


def test_every_probe_reads_a_path_of_its_own():
    # A 403 on a shared path could not say which of its permissions is missing.
    paths = [urlsplit(permission.probe).path for permission in PERMISSIONS.values()]

    assert len(paths) == len(set(paths))


def test_invoicing_reads_the_invoices_with_rak_invoice_read():
    invoice_read = PERMISSIONS["rak_invoice_read"]

    assert "rak_invoice_read" in NEEDS[Integration.INVOICING]
    assert invoice_read.probe == "/v1/invoices?limit=1"
    assert invoice_read.resource == "Invoices"


def test_balance_is_read_without_a_limit_as_it_is_one_object():
    assert PERMISSIONS["rak_balance_read"].probe == "/v1/balance"


def test_permissions_for_names_each_permission_once_in_the_catalogue_order():
    # Customers are needed by both; the integrations are given out of catalogue order.
    permissions = permissions_for([Integration.INVOICING, Integration.ONLINE_PAYMENTS])

    assert [permission.name for permission in permissions] == [
        "rak_charge_read",
        "rak_payment_intent_read",
        "rak_customer_read",
        "rak_invoice_read",
    ]


def test_permissions_for_every_integration_is_the_whole_catalogue_in_order():
    assert [p.name for p in permissions_for(list(Integration))] == CATALOGUE_ORDER


def test_permissions_for_the_same_integration_twice_names_each_permission_once():
    once = permissions_for([Integration.SUBSCRIPTIONS])

    assert permissions_for([Integration.SUBSCRIPTIONS, Integration.SUBSCRIPTIONS]) == once


@pytest.mark.parametrize("integrations", [[], (), None], ids=["list", "tuple", "none"])
def test_permissions_for_no_integration_is_empty(integrations):
    assert permissions_for(integrations) == []


def test_permissions_for_an_integration_given_as_its_stored_string():
    # requested_integrations are stored as plain strings in a JSON field.
    assert permissions_for(["invoicing"]) == permissions_for([Integration.INVOICING])


def test_permissions_for_an_unknown_integration_is_empty():
    assert permissions_for(["teleportation"]) == []


def test_permission_label_gives_the_dashboards_words_and_stripes_name():
    assert permission_label("rak_invoice_read") == "Invoices: Read (rak_invoice_read)"
    assert permission_label("rak_balance_transaction_read") == (
        "Balance transactions: Read (rak_balance_transaction_read)"
    )


def test_permission_label_of_a_name_stripe_gave_but_the_manifest_lacks_is_the_name():
    assert permission_label("rak_accounts_kyc_basic_read") == "rak_accounts_kyc_basic_read"


def test_checklist_lists_every_integration_by_its_stored_value():
    assert set(checklist()) == {str(integration.value) for integration in Integration}


def test_checklist_gives_each_integrations_permissions_with_their_labels_in_order():
    rows = checklist()

    for integration, names in NEEDS.items():
        assert rows[integration.value] == [
            {"name": name, "label": PERMISSIONS[name].label} for name in names
        ]
    assert rows["invoicing"] == [
        {"name": "rak_invoice_read", "label": "Invoices: Read"},
        {"name": "rak_customer_read", "label": "Customers: Read"},
    ]


def test_checklist_holds_only_strings_so_the_page_can_serialize_it():
    rows = checklist()

    assert all(type(key) is str for key in rows)
    assert all(
        set(row) == {"name", "label"} and all(type(value) is str for value in row.values())
        for permissions in rows.values()
        for row in permissions
    )
