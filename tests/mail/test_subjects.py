"""Mail subjects are plain text (issue #12, finding 12): a merchant called "Ben & Jerry's" reads
as such in every subject, never as "Ben &amp; Jerry&#x27;s"."""

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.core import mail
from django.template.loader import render_to_string
from django.test import TestCase

from credentials.models import VerificationState
from credentials.services.notifications import mail_context
from mail.compose import email_compose
from teams.services.invitations import invitation_create
from tests.factories import CredentialFactory, InvitationFactory, default_role

NAME = 'Ben & Jerry\'s <Café> "Bar"'
ESCAPES = ("&amp;", "&#x27;", "&lt;", "&gt;", "&quot;", "&#39;")
TEMPLATES = Path(settings.BASE_DIR) / "templates" / "emails"
SUBJECT_TEMPLATES = sorted(
    path.name.removesuffix(".subject.txt") for path in TEMPLATES.glob("*.subject.txt")
)


@pytest.fixture
def merchant(merchant):
    merchant.name = NAME
    merchant.save(update_fields=["name"])
    return merchant


@pytest.fixture
def credential(merchant, owner):
    return CredentialFactory(merchant=merchant, submitted_by=owner)


@pytest.mark.parametrize("template", SUBJECT_TEMPLATES)
def test_subject_is_plain_text(template, merchant, owner, credential):
    context = {
        **mail_context(credential),
        "merchant": merchant,
        "invitation": InvitationFactory(merchant=merchant, invited_by=owner),
        "number": 2,
    }

    subject = render_to_string(f"emails/{template}.subject.txt", context)

    assert not [escape for escape in ESCAPES if escape in subject]
    if "merchant.name" in (TEMPLATES / f"{template}.subject.txt").read_text():
        assert NAME in subject


def test_outbox_mail_subject_is_not_html_escaped(merchant, credential):
    email = email_compose(
        dedupe_key="subject-test",
        kind="helpdesk_submission",
        to=["helpdesk@keyhouse.test"],
        template="helpdesk_submission",
        context=mail_context(credential),
    )

    assert NAME in email.subject
    assert "&amp;" not in email.subject
    assert "&amp;" in email.body_html  # the HTML part is still escaped


def test_invitation_mail_subject_is_not_html_escaped(merchant, owner):
    with TestCase.captureOnCommitCallbacks(execute=True):
        invitation_create(
            merchant=merchant,
            email="invitee@example.test",
            role=default_role("developer"),
            actor=owner,
        )

    assert NAME in mail.outbox[-1].subject
    assert "&amp;" not in mail.outbox[-1].subject


# Subjects are capitalised (issue #14): after a "[Keyhouse]" or "[URGENT]" prefix the subject
# starts with a capital, whatever the merchant calls itself, and Stripe keeps its capital.


@pytest.mark.parametrize("template", SUBJECT_TEMPLATES)
@pytest.mark.parametrize("state", [choice.value for choice in VerificationState])
def test_subject_starts_with_a_capital_after_its_prefix(template, state, merchant, owner):
    merchant.name = "corner shop"
    merchant.save(update_fields=["name"])
    credential = CredentialFactory(merchant=merchant, submitted_by=owner, verification_state=state)
    context = {
        **mail_context(credential),
        "invitation": InvitationFactory(merchant=merchant, invited_by=owner),
        "number": 2,
    }

    subject = " ".join(render_to_string(f"emails/{template}.subject.txt", context).split())

    words = re.sub(r"^(\[[^\]]+\]\s*)+", "", subject)
    assert words[:1].isupper(), subject
    assert "stripe" not in subject.replace("Stripe", "")
