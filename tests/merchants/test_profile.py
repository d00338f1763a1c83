"""The merchant profile: the country chosen from ISO 3166 and never cut to two letters, shown by
name, and the form's errors summed up at its top."""

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from tests.helpers import merchant_url, page_html, page_text, reload

UNKNOWN_COUNTRY = (
    "This is not a country we know: choose it from the list (or type its English name, or its "
    "two-letter code such as DE)."
)


def profile(**changes):
    return {
        "contact_email": "accounts@demo-coffee.test",
        "contact_phone": "",
        "website": "",
        "country": "GB",
        "requested_integrations": [],
        **changes,
    }


def post_profile(client, merchant, **changes):
    return client.post(merchant_url("merchants:profile", merchant), profile(**changes))


def test_the_profile_form_offers_the_iso_3166_countries_by_name(owner_client, merchant):
    html = page_html(owner_client.get(merchant_url("merchants:profile", merchant)))

    assert '<select name="country"' in html
    assert '<option value="DE">Germany</option>' in html
    assert '<option value="GB" selected>United Kingdom</option>' in html


@pytest.mark.parametrize(
    ("typed", "stored"),
    [("DE", "DE"), ("de", "DE"), ("Germany", "DE"), ("germany", "DE"), ("DEU", "DE")],
)
def test_a_country_is_stored_as_its_code_however_it_was_given(
    owner_client, merchant, typed, stored
):
    response = post_profile(owner_client, merchant, country=typed)

    assert response.status_code == 302
    assert reload(merchant).country.code == stored


@pytest.mark.parametrize("typed", ["Germania", "Deutschland", "XX", "United"])
def test_a_name_that_is_no_known_country_is_refused_and_never_cut_to_two_letters(
    owner_client, merchant, typed
):
    response = post_profile(owner_client, merchant, country=typed)

    assert response.status_code == 200
    assert UNKNOWN_COUNTRY in page_text(response)
    assert reload(merchant).country.code == "GB"
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.MERCHANT_PROFILE_CHANGED).exists()


def test_a_changed_country_is_audited_by_its_codes(owner_client, merchant):
    post_profile(owner_client, merchant, country="France")

    event = AuditEvent.objects.get(action=AuditEvent.Action.MERCHANT_PROFILE_CHANGED)
    assert event.details["country"] == {"from": "GB", "to": "FR"}


def test_the_merchant_page_and_the_admin_show_the_countrys_name(
    owner_client, merchant, superuser, client_for
):
    admin = client_for(superuser).get(reverse("admin:merchants_merchant_changelist"))

    assert "United Kingdom" in page_text(admin)
    assert "United Kingdom" in page_text(owner_client.get(merchant.get_absolute_url()))


def test_a_refused_profile_sums_up_its_errors_with_links_to_the_fields(owner_client, merchant):
    response = post_profile(owner_client, merchant, country="Germania", contact_email="x@")

    html = page_html(response)
    assert 'class="error-summary"' in html
    assert 'tabindex="-1"' in html
    assert 'href="#id_country"' in html
    assert 'href="#id_contact_email"' in html


def test_a_member_who_may_not_edit_the_profile_cannot_change_the_country(
    merchant, member_factory, client_for
):
    client = client_for(member_factory(merchant, "view-only"))

    response = post_profile(client, merchant, country="FR")

    assert response.status_code == 403
    assert reload(merchant).country.code == "GB"


def test_another_merchants_owner_cannot_change_the_country(client_for, other_owner, merchant):
    response = post_profile(client_for(other_owner), merchant, country="FR")

    assert response.status_code == 404
    assert reload(merchant).country.code == "GB"
