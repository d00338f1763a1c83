"""The webhook delivery log in the admin."""
