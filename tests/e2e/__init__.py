"""End to end: the web view, a real Celery worker on Redis, PostgreSQL, fake Stripe, SMTP."""
