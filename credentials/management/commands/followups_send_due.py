"""Run the helpdesk follow-up sweep once, then send the mail that is due."""

from django.core.management.base import BaseCommand

from credentials.services.helpdesk import followups_send_due
from mail.services import emails_send_due


class Command(BaseCommand):
    help = (
        "Queue a reminder for every unacknowledged submission whose follow-up is due, then "
        "send the due mail from this process. Safe to run beside the workers: a submission "
        "is never reminded twice for one period."
    )

    def handle(self, *args, **options):
        queued = followups_send_due()
        sent = emails_send_due()
        self.stdout.write(f"{queued} reminder(s) queued; {sent} mail(s) sent.")
