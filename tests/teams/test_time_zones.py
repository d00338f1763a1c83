"""Times in the reader's time zone, named, in one format: the `when` filter, the zone a page
is written in (the account's choice, the browser's, the helpdesk's), the account page, the
admin and the mail."""

import zoneinfo
from datetime import UTC, date, datetime

import pytest
from django.template import Context, Template
from django.urls import reverse
from django.utils import formats, timezone

from audit.models import AuditEvent
from audit.refusals import Refused
from credentials.services.notifications import KeyEvent, key_event_notify
from teams.models import Membership
from teams.services import invitation_create
from teams.services.time_zones import user_time_zone_set
from teams.time_zones import time_zone_for_account, time_zone_for_addresses
from tests.factories import CredentialFactory, UserFactory, default_role
from tests.helpers import merchant_url, page_text, reload

# 13:05 UTC: 14:05 in Berlin (CET), 08:05 in New York (EST).
MOMENT = datetime(2026, 1, 15, 13, 5, tzinfo=UTC)
IN_UTC = "15 Jan 2026, 13:05 UTC"
IN_BERLIN = "15 Jan 2026, 14:05 CET"
IN_NEW_YORK = "15 Jan 2026, 08:05 EST"


def render_when(value) -> str:
    return Template("{% load when %}{{ value|when }}").render(Context({"value": value}))


def time_zone_events(user):
    return AuditEvent.objects.filter(
        action=AuditEvent.Action.USER_CHANGED, target=f"user {user.email}"
    )


# The filter ------------------------------------------------------------------------------


def test_when_writes_a_moment_in_the_active_zone_with_the_zone_named():
    with timezone.override(zoneinfo.ZoneInfo("Europe/Berlin")):
        assert render_when(MOMENT) == IN_BERLIN
    assert render_when(MOMENT) == IN_UTC


def test_when_writes_nothing_for_no_moment_so_a_default_applies():
    template = Template('{% load when %}{{ value|when|default:"never" }}')
    assert template.render(Context({"value": None})) == "never"


def test_when_writes_a_date_without_time_or_zone():
    assert render_when(date(2026, 1, 15)) == "15 Jan 2026"


def test_the_admin_writes_datetimes_in_the_same_format_as_the_filter():
    with timezone.override(zoneinfo.ZoneInfo("Europe/Berlin")):
        assert formats.localize(timezone.template_localtime(MOMENT)) == IN_BERLIN


# Pages -----------------------------------------------------------------------------------


@pytest.fixture
def joined_at_moment(owner):
    Membership.objects.filter(user=owner).update(joined_at=MOMENT)
    return owner


def test_a_member_reads_times_in_the_zone_of_their_account(merchant, joined_at_moment, client_for):
    joined_at_moment.time_zone = "Europe/Berlin"
    joined_at_moment.save(update_fields=["time_zone"])

    text = page_text(client_for(joined_at_moment).get(merchant_url("teams:team", merchant)))

    assert IN_BERLIN in text


def test_a_member_without_a_zone_reads_times_in_utc_with_the_zone_named(
    merchant, joined_at_moment, client_for
):
    text = page_text(client_for(joined_at_moment).get(merchant_url("teams:team", merchant)))

    assert IN_UTC in text


def test_staff_without_a_zone_read_the_admin_in_the_helpdesk_zone(
    settings, superuser, merchant, client_for
):
    settings.HELPDESK_TIME_ZONE = "America/New_York"
    type(merchant).objects.filter(pk=merchant.pk).update(created_at=MOMENT)

    text = page_text(client_for(superuser).get(reverse("admin:merchants_merchant_changelist")))

    assert IN_NEW_YORK in text


def test_staff_with_a_zone_read_the_admin_in_their_own(settings, superuser, merchant, client_for):
    settings.HELPDESK_TIME_ZONE = "America/New_York"
    superuser.time_zone = "Europe/Berlin"
    superuser.save(update_fields=["time_zone"])
    type(merchant).objects.filter(pk=merchant.pk).update(created_at=MOMENT)

    text = page_text(client_for(superuser).get(reverse("admin:merchants_merchant_changelist")))

    assert IN_BERLIN in text


def test_a_zone_is_not_left_active_after_the_request(owner, client_for):
    owner.time_zone = "Europe/Berlin"
    owner.save(update_fields=["time_zone"])

    client_for(owner).get(reverse("account:account"))

    assert timezone.get_current_timezone_name() == "UTC"


# The account page ------------------------------------------------------------------------


def test_the_account_page_offers_the_zones_with_the_current_one_chosen(owner, client_for):
    owner.time_zone = "Europe/Berlin"
    owner.save(update_fields=["time_zone"])

    response = client_for(owner).get(reverse("account:account"))

    html = response.content.decode()
    assert '<option value="Europe/Berlin" selected>Berlin</option>' in html
    assert '<optgroup label="America">' in html
    assert "Times are shown in <strong>Europe/Berlin</strong>" in html


def test_choosing_a_zone_saves_it_and_audits_the_change(owner, client_for):
    response = client_for(owner).post(
        reverse("account:time_zone"), {"time_zone": "America/New_York"}, follow=True
    )

    assert "Times are now shown in America/New York." in page_text(response)
    assert reload(owner).time_zone == "America/New_York"
    [event] = time_zone_events(owner)
    assert event.details == {
        "changed": ["time_zone"],
        "time_zone": "America/New_York",
        "source": "chosen",
    }


def test_an_unknown_zone_is_refused_with_a_message_and_nothing_is_saved(owner, client_for):
    response = client_for(owner).post(reverse("account:time_zone"), {"time_zone": "Mars/Olympus"})

    assert response.status_code == 200
    assert "Choose your time zone from the list, such as Europe/Berlin." in page_text(response)
    assert reload(owner).time_zone == ""
    assert not time_zone_events(owner).exists()


def test_choosing_a_zone_needs_a_signed_in_person(client, owner):
    response = client.post(reverse("account:time_zone"), {"time_zone": "Europe/Berlin"})

    assert response.status_code == 302
    assert reverse("login") in response["Location"]
    assert reload(owner).time_zone == ""


# The browser's zone ----------------------------------------------------------------------


def test_pages_ask_the_browser_for_its_zone_while_the_account_has_none(owner, client_for):
    client = client_for(owner)

    asks_before = (
        'id="time-zone-detected"' in client.get(reverse("account:account")).content.decode()
    )
    client.post(reverse("account:time_zone_detected"), {"time_zone": "Europe/Berlin"})
    asks_after = (
        'id="time-zone-detected"' in client.get(reverse("account:account")).content.decode()
    )

    assert (asks_before, asks_after) == (True, False)


def test_the_browsers_zone_is_stored_once_and_audited_as_detected(owner, client_for):
    response = client_for(owner).post(
        reverse("account:time_zone_detected"), {"time_zone": "Europe/Berlin"}
    )

    assert response.status_code == 204
    assert reload(owner).time_zone == "Europe/Berlin"
    [event] = time_zone_events(owner)
    assert event.details["source"] == "browser"


def test_the_browsers_zone_never_overwrites_a_chosen_one(owner, client_for):
    owner.time_zone = "Asia/Tokyo"
    owner.save(update_fields=["time_zone"])

    client_for(owner).post(reverse("account:time_zone_detected"), {"time_zone": "Europe/Berlin"})

    assert reload(owner).time_zone == "Asia/Tokyo"
    assert not time_zone_events(owner).exists()


def test_an_unknown_zone_from_the_browser_is_ignored(owner, client_for):
    response = client_for(owner).post(
        reverse("account:time_zone_detected"), {"time_zone": "Not/A_Zone"}
    )

    assert response.status_code == 204
    assert reload(owner).time_zone == ""


def test_an_anonymous_visitor_cannot_store_a_zone(client, db):
    response = client.post(reverse("account:time_zone_detected"), {"time_zone": "Europe/Berlin"})

    assert response.status_code == 302
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.USER_CHANGED).exists()


# The service -----------------------------------------------------------------------------


def test_nobody_sets_another_persons_zone_without_the_helpdesks_permission(
    owner, other_owner, merchant
):
    with pytest.raises(Refused):
        user_time_zone_set(user=owner, time_zone="Europe/Berlin", actor=other_owner)

    assert reload(owner).time_zone == ""
    assert AuditEvent.objects.filter(
        action=AuditEvent.Action.ACCESS_DENIED, actor=other_owner
    ).exists()


def test_staff_who_manage_users_may_set_someone_elses_zone(owner, superuser):
    assert user_time_zone_set(user=owner, time_zone="Europe/Berlin", actor=superuser)

    assert reload(owner).time_zone == "Europe/Berlin"
    assert time_zone_events(owner).get().actor == superuser


# Mail ------------------------------------------------------------------------------------


def test_mail_to_the_helpdesk_is_written_in_the_helpdesks_zone(settings, merchant):
    settings.HELPDESK_TIME_ZONE = "Europe/Berlin"
    credential = CredentialFactory(merchant=merchant, submitted_at=MOMENT)

    [notice] = key_event_notify(credential=credential, event=KeyEvent.VERIFICATION, merchant_to=[])

    assert IN_BERLIN in notice.body_text
    assert IN_BERLIN in notice.body_html


def test_mail_to_merchant_users_is_in_the_zone_they_share_else_utc(owner, merchant):
    colleague = UserFactory(email="colleague@demo.test", time_zone="Europe/Berlin")
    owner.time_zone = "Europe/Berlin"
    owner.save(update_fields=["time_zone"])

    shared = time_zone_for_addresses([owner.email, colleague.email.upper(), "no-account@x.test"])
    colleague.time_zone = "Asia/Tokyo"
    colleague.save(update_fields=["time_zone"])
    disagreeing = time_zone_for_addresses([owner.email, colleague.email])

    assert (shared, disagreeing) == ("Europe/Berlin", "UTC")


def test_an_invitation_to_a_new_address_is_written_in_the_inviters_zone(
    owner, merchant, mailoutbox, django_capture_on_commit_callbacks
):
    owner.time_zone = "Europe/Berlin"
    owner.save(update_fields=["time_zone"])

    with django_capture_on_commit_callbacks(execute=True):
        invitation = invitation_create(
            merchant=merchant, email="new@example.test", role=default_role("developer"), actor=owner
        )

    with timezone.override(zoneinfo.ZoneInfo("Europe/Berlin")):
        expected = render_when(invitation.expires_at)
    [mail] = mailoutbox
    assert expected.endswith(("CET", "CEST"))
    assert expected in mail.body


@pytest.mark.parametrize(
    ("zone", "expected"),
    [("Europe/Berlin", "Europe/Berlin"), ("", "UTC"), ("Mars/Olympus_Mons", "UTC")],
)
def test_the_zone_of_mail_to_one_account_is_its_address_zone_without_a_query(
    owner, zone, expected, django_assert_num_queries
):
    """The worker writes the submitter's mail in the zone of the account it loaded with the
    key: the same zone the address lookup gives."""
    owner.time_zone = zone
    owner.save(update_fields=["time_zone"])

    with django_assert_num_queries(0):
        from_account = time_zone_for_account(owner)

    assert from_account == time_zone_for_addresses([owner.email]) == expected


def test_mail_to_the_helpdesk_account_is_in_the_helpdesk_zone(owner, settings):
    settings.HELPDESK_EMAIL = owner.email
    settings.HELPDESK_TIME_ZONE = "America/New_York"

    assert time_zone_for_account(owner) == time_zone_for_addresses([owner.email])
    assert time_zone_for_account(owner) == "America/New_York"
