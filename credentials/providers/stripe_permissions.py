"""The read permissions a restricted Stripe key needs for each integration, in one place.

Each permission is named as Stripe names it in a 403 ("Having the 'rak_invoice_read'
permission would allow this request to continue"), labelled as the dashboard's restricted-key
editor lists the resource, and proved by one read-only GET that creates, changes and sends
nothing. Write permissions cannot be probed without side effects: they are checked when the
integration first uses them.
"""

from dataclasses import dataclass

from merchants.models import Integration


@dataclass(frozen=True)
class Permission:
    name: str  # Stripe's own name, as in its 403 messages
    resource: str  # the resource's row in the dashboard's restricted-key editor
    probe: str  # the read-only GET that needs it
    access: str = "Read"

    @property
    def label(self) -> str:
        return f"{self.resource}: {self.access}"


_ALL = (
    Permission("rak_charge_read", "Charges", "/v1/charges?limit=1"),
    Permission("rak_payment_intent_read", "PaymentIntents", "/v1/payment_intents?limit=1"),
    Permission("rak_customer_read", "Customers", "/v1/customers?limit=1"),
    Permission("rak_terminal_reader_read", "Terminal Readers", "/v1/terminal/readers?limit=1"),
    Permission(
        "rak_terminal_location_read", "Terminal Locations", "/v1/terminal/locations?limit=1"
    ),
    Permission("rak_subscription_read", "Subscriptions", "/v1/subscriptions?limit=1"),
    Permission("rak_product_read", "Products", "/v1/products?limit=1"),
    Permission("rak_price_read", "Prices", "/v1/prices?limit=1"),
    Permission("rak_invoice_read", "Invoices", "/v1/invoices?limit=1"),
    Permission("rak_payout_read", "Payouts", "/v1/payouts?limit=1"),
    Permission("rak_balance_read", "Balance", "/v1/balance"),
    Permission(
        "rak_balance_transaction_read",
        "Balance transactions",
        "/v1/balance_transactions?limit=1",
    ),
    Permission("rak_report_run_read", "Report runs", "/v1/reporting/report_runs?limit=1"),
)
PERMISSIONS = {permission.name: permission for permission in _ALL}

# What each integration reads, by permission name.
NEEDS = {
    Integration.ONLINE_PAYMENTS: (
        "rak_charge_read",
        "rak_payment_intent_read",
        "rak_customer_read",
    ),
    Integration.IN_PERSON: (
        "rak_payment_intent_read",
        "rak_terminal_reader_read",
        "rak_terminal_location_read",
    ),
    Integration.SUBSCRIPTIONS: (
        "rak_subscription_read",
        "rak_product_read",
        "rak_price_read",
        "rak_customer_read",
    ),
    Integration.INVOICING: ("rak_invoice_read", "rak_customer_read"),
    Integration.PAYOUTS_REPORTING: (
        "rak_payout_read",
        "rak_balance_read",
        "rak_balance_transaction_read",
        "rak_report_run_read",
    ),
}


def permissions_for(integrations) -> list[Permission]:
    """Return the permissions `integrations` need, each once, in the catalogue's order."""
    wanted = {name for integration in integrations or () for name in NEEDS.get(integration, ())}
    return [permission for permission in _ALL if permission.name in wanted]


def permission_label(name: str) -> str:
    """Return "Invoices: Read (rak_invoice_read)" for a permission name (the name alone when
    it is not in the manifest: Stripe named one we do not know)."""
    permission = PERMISSIONS.get(name)
    return f"{permission.label} ({name})" if permission else name


def checklist() -> dict:
    """Return, for the submit page's script, each integration's permissions with labels."""
    return {
        str(integration): [{"name": name, "label": PERMISSIONS[name].label} for name in names]
        for integration, names in NEEDS.items()
    }
