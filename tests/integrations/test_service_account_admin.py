"""Service accounts in the admin: a superuser creates one and sees its token once, rolls the
token, revokes the account and adds endpoints through confirmation pages, each through the
services (audited); everybody else is refused every page; no page ever shows a token's hash
or a signing secret."""

import re

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from integrations.models import ServiceAccount, ServiceToken, WebhookEndpoint
from integrations.scopes import EventType, Scope
from integrations.services.accounts import service_account_create, service_token_roll
from integrations.services.tokens import TokenRefused, token_authenticate
from tests.helpers import page_html, page_text

ADD = reverse("admin:integrations_serviceaccount_add")
LIST = reverse("admin:integrations_serviceaccount_changelist")
TOKEN = re.compile(r"kh_[a-z2-7]{10}_[A-Za-z0-9_-]{32,}")
SIGNING_SECRET = re.compile(r"whsec_[A-Za-z0-9_-]{20,}")
SAVE_BUTTONS = ('name="_save"', 'name="_continue"', 'name="_addanother"')


def page(name: str, account) -> str:
    return reverse(f"admin:integrations_serviceaccount_{name}", args=[account.pk])


def add_form(**overrides) -> dict:
    return {
        "name": "pos-backend",
        "description": "The point of sale",
        "scopes": [Scope.SECRETS_READ, Scope.MERCHANTS_READ],
        "all_merchants": "on",
        "expires_at": "",
        "allowed_ips": "203.0.113.0/24\n198.51.100.7",
        "webhook_url": "",
        **overrides,
    }


def change_form(account, **overrides) -> dict:
    data = {
        "description": account.description,
        "scopes": account.scopes,
        "expires_at": "",
        "allowed_ips": "\n".join(account.allowed_ips),
        **{
            f"{prefix}-{field}": "0"
            for prefix in ("tokens", "endpoints")
            for field in ("TOTAL_FORMS", "INITIAL_FORMS")
        },
        **overrides,
    }
    if account.all_merchants and "merchants" not in overrides:
        data["all_merchants"] = "on"
    return data


def never_stored(response) -> bool:
    return {"private", "no-store"} <= {
        directive.strip().split("=")[0] for directive in response["Cache-Control"].split(",")
    }


@pytest.fixture
def admin_client(client_for, superuser):
    return client_for(superuser)


@pytest.fixture
def issued(db):
    """An account with a webhook endpoint, its token and signing secret."""
    return service_account_create(
        name="pos-backend",
        scopes=[Scope.SECRETS_READ],
        all_merchants=True,
        webhook_url="https://pos.example.com/hook",
        actor=None,
    )


@pytest.fixture
def account(issued):
    return issued[0]


# Creating ---------------------------------------------------------------------------------


def test_an_expiry_typed_in_the_one_date_and_time_field_is_stored(admin_client):
    response = admin_client.post(ADD, add_form(expires_at="2027-01-31T12:30"))

    assert response.status_code == 200
    expires = timezone.localtime(ServiceAccount.objects.get(name="pos-backend").expires_at)
    assert (expires.date().isoformat(), expires.strftime("%H:%M")) == ("2027-01-31", "12:30")


def test_superuser_creates_an_account_and_sees_its_token_once(admin_client, superuser):
    response = admin_client.post(ADD, add_form())

    assert response.status_code == 200
    tokens = TOKEN.findall(page_html(response))
    assert len(set(tokens)) == 1
    account = ServiceAccount.objects.get(name="pos-backend")
    assert token_authenticate(tokens[0]).account == account
    assert "Shown once" in page_text(response)
    assert never_stored(response)
    assert response["Pragma"] == "no-cache"
    assert account.scopes == [Scope.MERCHANTS_READ, Scope.SECRETS_READ]
    assert account.allowed_ips == ["203.0.113.0/24", "198.51.100.7"]
    assert account.created_by == superuser
    assert AuditEvent.objects.get(action=AuditEvent.Action.SERVICE_ACCOUNT_CREATED).actor == (
        superuser
    )

    again = admin_client.get(page("change", account))

    assert again.status_code == 200
    assert tokens[0] not in page_html(again)
    assert TOKEN.search(page_html(again)) is None
    assert f"{account.tokens.get().prefix}…" in page_text(again)


def test_creating_with_a_webhook_shows_its_signing_secret_once(admin_client):
    response = admin_client.post(
        ADD,
        add_form(webhook_url="https://pos.example.com/hook", event_types=[EventType.VERIFIED]),
    )

    secrets = SIGNING_SECRET.findall(page_html(response))
    endpoint = WebhookEndpoint.objects.get()
    assert secrets == [endpoint.signing_secret]
    assert endpoint.event_types == [EventType.VERIFIED]

    again = page_html(admin_client.get(page("change", endpoint.account)))

    assert endpoint.signing_secret not in again
    assert "https://pos.example.com/hook" in again


def test_superuser_chooses_merchants_for_an_account(admin_client, merchant, other_merchant):
    admin_client.post(ADD, add_form(all_merchants="", merchants=[merchant.pk]))

    account = ServiceAccount.objects.get()
    assert not account.all_merchants
    assert list(account.merchants.all()) == [merchant]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"merchants": ["{merchant}"]}, "not both"),
        ({"all_merchants": ""}, "Choose the merchants it serves"),
        ({"allowed_ips": "203.0.113.0/24\noffice"}, "Line 2 is not an IP address"),
        ({"scopes": []}, "This field is required"),
        ({"scopes": ["secrets:write"]}, "Choose scopes from the list"),
        ({"webhook_url": "not a url"}, "Enter a valid URL"),
        ({"event_types": [EventType.VERIFIED]}, "Give a webhook URL"),
        ({"name": "POS backend!"}, "slug"),
    ],
    ids=["both", "neither", "ip", "no scope", "unknown scope", "url", "events without url", "name"],
)
def test_invalid_account_is_refused_with_a_message_and_nothing_is_created(
    admin_client, merchant, overrides, message
):
    overrides = {
        key: [str(merchant.pk)] if value == ["{merchant}"] else value
        for key, value in overrides.items()
    }

    response = admin_client.post(ADD, add_form(**overrides))

    assert response.status_code == 200
    assert message in page_text(response)
    assert not ServiceAccount.objects.exists()
    assert not ServiceToken.objects.exists()
    assert TOKEN.search(page_html(response)) is None


def test_duplicate_name_is_refused_in_the_form(admin_client, account):
    response = admin_client.post(ADD, add_form(name=account.name))

    assert response.status_code == 200
    assert "already exists" in page_text(response)
    assert ServiceAccount.objects.count() == 1


def test_key_shaped_text_in_the_description_is_refused(admin_client, secret):
    response = admin_client.post(ADD, add_form(description=f"key {secret}"))

    assert response.status_code == 200
    assert "looks like a secret key" in page_text(response)
    assert secret not in page_html(response)
    assert not ServiceAccount.objects.exists()


@pytest.mark.parametrize("field", ["expires_at", "allowed_ips", "merchants", "scopes"])
def test_a_key_typed_anywhere_in_the_form_is_refused_and_not_echoed(admin_client, secret, field):
    response = admin_client.post(ADD, add_form(**{field: secret, "all_merchants": ""}))

    assert response.status_code == 200
    assert secret.split("_", 2)[2] not in page_html(response)
    assert not ServiceAccount.objects.exists()


def test_a_merchant_id_no_database_holds_is_refused_not_a_server_error(admin_client):
    response = admin_client.post(ADD, add_form(all_merchants="", merchants=["9" * 20]))

    assert response.status_code == 200
    assert "Choose merchants from the list" in page_text(response)
    assert not ServiceAccount.objects.exists()


# Changing ---------------------------------------------------------------------------------


def test_change_goes_through_the_service_and_is_audited_with_what_changed(
    admin_client, account, merchant
):
    response = admin_client.post(
        page("change", account),
        change_form(account, merchants=[merchant.pk], scopes=[Scope.CREDENTIALS_READ]),
    )

    assert response.status_code == 302
    account.refresh_from_db()
    assert account.scopes == [Scope.CREDENTIALS_READ]
    assert list(account.merchants.all()) == [merchant]
    event = AuditEvent.objects.get(action=AuditEvent.Action.SERVICE_ACCOUNT_CHANGED)
    assert event.details["changed"]["scopes"] == [[Scope.SECRETS_READ], [Scope.CREDENTIALS_READ]]
    assert event.details["changed"]["merchants"] == [[], [merchant.slug]]


def test_change_page_offers_the_actions_and_keeps_the_name_fixed(admin_client, account):
    body = page_html(admin_client.get(page("change", account)))

    for name in ("roll", "revoke", "endpoint_add"):
        assert page(name, account) in body
    assert 'name="name"' not in body


# Rolling the token ------------------------------------------------------------------------


def test_roll_page_offers_the_grace_periods_and_names_the_current_token(admin_client, account):
    response = admin_client.get(page("roll", account))

    text = page_text(response)
    assert "Now: the current token stops working at once" in text
    assert "In 7 days" in text
    assert f"{account.tokens.get().prefix}…" in text
    assert re.search(r'value="86400"[^>]* checked', page_html(response))


def test_roll_shows_the_new_token_once_and_the_old_one_works_for_the_grace_period(
    admin_client, superuser, issued
):
    account, old, _ = issued

    response = admin_client.post(page("roll", account), {"grace": "3600"})

    assert response.status_code == 200
    assert never_stored(response)
    new = TOKEN.search(page_html(response)).group(0)
    assert new != old
    assert old not in page_html(response)
    assert token_authenticate(new).account == account
    assert token_authenticate(old).account == account
    assert "keeps working until" in page_text(response)
    event = AuditEvent.objects.get(action=AuditEvent.Action.SERVICE_TOKEN_ROLLED)
    assert event.actor == superuser
    assert new not in page_html(admin_client.get(page("change", account)))


def test_roll_now_refuses_the_old_token_at_once(admin_client, issued):
    account, old, _ = issued

    admin_client.post(page("roll", account), {"grace": "0"})

    with pytest.raises(TokenRefused):
        token_authenticate(old)


def test_roll_with_a_grace_period_not_offered_is_refused(admin_client, account):
    response = admin_client.post(page("roll", account), {"grace": "31536000"})

    assert response.status_code == 200
    assert TOKEN.search(page_html(response)) is None
    assert account.tokens.count() == 1


# Revoking ---------------------------------------------------------------------------------


def test_revoke_page_says_what_stops_before_anything_happens(admin_client, account):
    response = admin_client.get(page("revoke", account))

    text = page_text(response)
    assert "cannot be undone" in text
    assert "1 webhook endpoint gets no more events" in text
    assert ServiceAccount.objects.get(pk=account.pk).revoked_at is None


def test_revoke_refuses_every_token_and_leaves_a_read_only_page(admin_client, superuser, issued):
    account, token, _ = issued

    response = admin_client.post(page("revoke", account))

    assert response.status_code == 302
    with pytest.raises(TokenRefused):
        token_authenticate(token)
    assert AuditEvent.objects.get(action=AuditEvent.Action.SERVICE_ACCOUNT_REVOKED).actor == (
        superuser
    )
    body = page_html(admin_client.get(page("change", account)))
    assert not [button for button in SAVE_BUTTONS if button in body]
    assert page("roll", account) not in body
    assert "Revoked" in body
    assert admin_client.post(page("roll", account), {"grace": "0"}).status_code == 200
    assert account.tokens.count() == 1


def test_a_revoked_accounts_page_refuses_a_post(admin_client, account):
    admin_client.post(page("revoke", account))

    response = admin_client.post(page("change", account), change_form(account, scopes=["x"]))

    assert response.status_code == 403


# Adding an endpoint -----------------------------------------------------------------------


def test_add_endpoint_shows_its_signing_secret_once(admin_client, superuser, account):
    response = admin_client.post(
        page("endpoint_add", account),
        {"url": "https://billing.example.com/hook", "event_types": [EventType.REVOKED]},
    )

    assert response.status_code == 200
    assert never_stored(response)
    endpoint = account.endpoints.get(url="https://billing.example.com/hook")
    assert SIGNING_SECRET.findall(page_html(response)) == [endpoint.signing_secret]
    assert endpoint.event_types == [EventType.REVOKED]
    assert AuditEvent.objects.get(action=AuditEvent.Action.WEBHOOK_ENDPOINT_CHANGED).actor == (
        superuser
    )
    again = page_html(admin_client.get(page("change", account)))
    assert "https://billing.example.com/hook" in again
    assert endpoint.signing_secret not in again


def test_add_endpoint_with_a_bad_url_is_refused_and_adds_nothing(admin_client, account):
    response = admin_client.post(page("endpoint_add", account), {"url": "nope"})

    assert response.status_code == 200
    assert "Enter a valid URL" in page_text(response)
    assert account.endpoints.count() == 1


# Everybody else ---------------------------------------------------------------------------


def every_page(account) -> list[str]:
    return [
        LIST,
        ADD,
        page("change", account),
        page("history", account),
        page("delete", account),
        page("roll", account),
        page("revoke", account),
        page("endpoint_add", account),
    ]


@pytest.mark.parametrize("method", ["get", "post"])
def test_helpdesk_agent_is_refused_every_page_and_changes_nothing(
    client_for, helpdesk_user, issued, method
):
    account, token, _ = issued
    client = client_for(helpdesk_user)

    answers = {
        address: getattr(client, method)(
            address, {"grace": "0", "url": "https://x.test/h"}
        ).status_code
        for address in every_page(account)
    }

    assert answers == dict.fromkeys(every_page(account), 403)
    assert token_authenticate(token).account == account
    assert account.tokens.count() == 1
    assert account.endpoints.count() == 1
    assert ServiceAccount.objects.get(pk=account.pk).revoked_at is None
    refusals = AuditEvent.objects.filter(
        action=AuditEvent.Action.ACCESS_DENIED, actor=helpdesk_user
    )
    assert refusals.count() == len(every_page(account))


def test_helpdesk_agent_sees_no_service_accounts_in_the_admin(client_for, helpdesk_user, account):
    body = page_html(client_for(helpdesk_user).get(reverse("admin:index")))

    assert LIST not in body
    assert "Service accounts" not in body


def test_superuser_sees_service_accounts_in_the_admin(admin_client, account):
    assert LIST in page_html(admin_client.get(reverse("admin:index")))


def test_merchant_member_is_sent_to_the_admin_sign_in(owner_client, account):
    for address in every_page(account):
        response = owner_client.get(address)
        assert response.status_code == 302
        assert response.url.startswith(reverse("admin:login"))


def test_no_page_shows_a_token_hash_or_a_signing_secret(admin_client, superuser, issued):
    account, _, _ = issued
    service_token_roll(account=account, actor=superuser)
    endpoint = account.endpoints.get()
    hashes = list(ServiceToken.objects.values_list("token_hash", flat=True))

    for address in [*every_page(account)[:4], *every_page(account)[5:]]:
        body = page_html(admin_client.get(address))
        assert not [hash_ for hash_ in hashes if hash_ in body], address
        assert endpoint.signing_secret not in body, address
        assert "whsec_" not in body, address
        assert TOKEN.search(body) is None, address


def test_list_shows_each_accounts_scopes_merchants_and_state_in_a_fixed_number_of_queries(
    admin_client, django_assert_max_num_queries, account, merchant
):
    service_account_create(
        name="billing", scopes=[Scope.MERCHANTS_READ], merchants=[merchant], actor=None
    )
    with django_assert_max_num_queries(20) as captured:
        response = admin_client.get(LIST)
    baseline = len(captured)
    for number in range(5):
        service_account_create(
            name=f"more-{number}", scopes=[Scope.MERCHANTS_READ], merchants=[merchant], actor=None
        )

    with django_assert_max_num_queries(baseline):
        response = admin_client.get(LIST)

    text = page_text(response)
    assert "All merchants" in text
    assert "1 merchant" in text
    assert "Active" in text
