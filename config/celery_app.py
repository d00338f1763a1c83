"""The Celery application, configured from Django settings (the `CELERY_` namespace).

Tasks are declared with `@app.task` on this app (not `shared_task`), so that importing a tasks
module in the web process always binds to this configuration.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("keyhouse")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
