"""Service accounts in the admin (superusers only)."""
