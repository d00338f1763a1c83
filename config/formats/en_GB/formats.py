"""en-GB display formats: datetimes as `core.moments` writes them, so the admin's columns
and read-only fields show times in the one format of the portal and the mails."""

from core.moments import DAY_FORMAT, MOMENT_FORMAT

DATETIME_FORMAT = MOMENT_FORMAT
DATE_FORMAT = DAY_FORMAT
