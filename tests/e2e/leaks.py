"""Where a secret could end up, and how to look for it there without ever printing it.

Findings are descriptions of places ("redis key 'unacked' (hash)", "table x, column y"), never
the text that matched: a failing test must not put the secret in the CI log.
"""

import base64
import binascii
import codecs
import json
import logging
import re
import socket
import threading
from contextlib import contextmanager
from urllib.parse import urlsplit

# Every stretch of this many characters of the key's body counts as a leak: hints show four.
FRAGMENT_LENGTH = 12
# Long runs of base64 (standard or URL-safe alphabet): Celery message bodies, signed values.
_BASE64_RUN = re.compile(rb"[A-Za-z0-9+/_-]{16,}={0,2}")


class Secret(str):
    """A key that shows only its hint when printed (assertion rewriting prints reprs)."""

    def __repr__(self):
        return f"<secret …{self[-4:]}>"


def secret_fragments(secret: str) -> list[str]:
    """Return the secret itself and every FRAGMENT_LENGTH-character stretch of its body: a
    Stripe key's after its prefix; a Kashier key (no prefix) whole, and a Payment API key (a
    UUID) also without its dashes. Hints show four characters, so only longer stretches
    prove a leak."""
    parts = str(secret).split("_", 2)
    if len(parts) == 3:
        forms, bodies = [str(secret)], [parts[2]]
    else:
        forms = bodies = list(dict.fromkeys([str(secret), str(secret).replace("-", "")]))
    pieces = [
        body[start : start + FRAGMENT_LENGTH]
        for body in bodies
        for start in range(len(body) - FRAGMENT_LENGTH + 1)
    ]
    return [*forms, *pieces]


def _base64_decoded(data: bytes) -> list[bytes]:
    """Decode each base64 run, from each of its first four characters.

    A run glued to other letters ("id=W1sz…") starts at the wrong place for base64's groups of
    four; one of the four offsets is right.
    """
    decoded = []
    for match in _BASE64_RUN.finditer(data):
        for offset in range(4):
            token = match.group()[offset:].rstrip(b"=")
            token += b"=" * (-len(token) % 4)
            for decode in (base64.b64decode, base64.urlsafe_b64decode):
                try:
                    decoded.append(decode(token))
                except (binascii.Error, ValueError):
                    continue
    return decoded


def expanded(data: bytes | str, depth: int = 2) -> list[str]:
    """Return `data` as text, followed by the text of every base64 run found in it (nested)."""
    raw = data.encode() if isinstance(data, str) else bytes(data)
    texts = [raw.decode("utf-8", "replace")]
    if depth:
        for inner in _base64_decoded(raw):
            texts.extend(expanded(inner, depth - 1))
    return texts


def holds_secret(data: bytes | str, secret: str) -> bool:
    """Return True if `data`, or base64 inside it, holds the secret or a fragment of it."""
    fragments = secret_fragments(secret)
    return any(fragment in text for text in expanded(data) for fragment in fragments)


def mail_findings(mails, secret: str) -> list[str]:
    """Return where in `mails` the secret shows: raw bytes, headers, any decoded part."""
    findings = []
    for number, mail in enumerate(mails, start=1):
        where = f"mail {number} to {', '.join(mail.recipients)} ({mail.subject!r})"
        if holds_secret(mail.raw, secret):
            findings.append(f"{where}: raw message")
        for index, part in enumerate(mail.decoded_parts()):
            if holds_secret(part, secret):
                findings.append(f"{where}: decoded part {index}")
    return findings


def _redis_values(client, key: bytes) -> tuple[str, list[bytes]]:
    kind = client.type(key).decode()
    if kind == "string":
        values = [client.get(key)]
    elif kind == "list":
        values = client.lrange(key, 0, -1)
    elif kind == "hash":
        values = [item for pair in client.hgetall(key).items() for item in pair]
    elif kind == "set":
        values = list(client.smembers(key))
    elif kind == "zset":
        values = [member for member, _score in client.zrange(key, 0, -1, withscores=True)]
    elif kind == "stream":
        values = [
            item for _id, fields in client.xrange(key) for pair in fields.items() for item in pair
        ]
    else:  # "none": the key expired or was deleted since SCAN listed it
        values = []
    return kind, [value for value in values if value is not None]


def redis_findings(client, secret: str) -> list[str]:
    """Scan every key of the client's database; return the keys whose name or values leak."""
    findings = []
    for key in client.scan_iter(count=1000):
        kind, values = _redis_values(client, key)
        name_leaks = holds_secret(key, secret)
        name = "a key whose name holds the secret" if name_leaks else f"key {key!r}"
        if name_leaks or any(holds_secret(value, secret) for value in values):
            findings.append(f"redis {name} ({kind})")
    return findings


def redis_snapshot(client) -> list[bytes]:
    """Return every key name and value of the client's database, for sanity checks."""
    items = []
    for key in client.scan_iter(count=1000):
        items.append(key)
        items.extend(_redis_values(client, key)[1])
    return items


class RedisMonitor:
    """Record every command the Redis server runs (MONITOR) while it is started.

    SCAN sees what is stored at one moment; a Celery message lives in Redis only from its
    publication until a worker takes it. MONITOR sees every message as it is written.
    """

    def __init__(self, url: str):
        parts = urlsplit(url)
        self._address = (parts.hostname or "127.0.0.1", parts.port or 6379)
        self._password = parts.password
        self._username = parts.username
        self._lines: list[bytes] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._socket = None
        self._pending = b""
        self._thread = threading.Thread(target=self._read, daemon=True)

    def start(self) -> "RedisMonitor":
        self._socket = socket.create_connection(self._address, timeout=5)
        expected = 1
        if self._password:
            auth = [self._username, self._password] if self._username else [self._password]
            self._socket.sendall(_command("AUTH", *auth))
            expected += 1
        self._socket.sendall(_command("MONITOR"))
        replies = b""
        while replies.count(b"\r\n") < expected:
            chunk = self._socket.recv(4096)
            if not chunk:
                raise ConnectionError("Redis closed the MONITOR connection")
            replies += chunk
        lines = replies.split(b"\r\n")
        if any(line.startswith(b"-") for line in lines[:expected]):
            raise ConnectionError("Redis refused AUTH or MONITOR")
        # Commands may already follow the replies in the same read: keep them.
        self._pending = b"\r\n".join(lines[expected:])
        self._socket.settimeout(0.2)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(5)
        self._socket.close()

    def _read(self) -> None:
        pending = self._pending
        while not self._stopping.is_set():
            try:
                chunk = self._socket.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not chunk:
                return
            *lines, pending = (pending + chunk).split(b"\r\n")
            with self._lock:
                self._lines.extend(lines)

    @property
    def commands(self) -> list[bytes]:
        """Each command as Redis printed it, with its quoting and escapes undone."""
        with self._lock:
            lines = list(self._lines)
        return [codecs.escape_decode(line)[0] for line in lines]


def _command(*words: str) -> bytes:
    encoded = [word.encode() for word in words]
    return b"*%d\r\n" % len(encoded) + b"".join(
        b"$%d\r\n%s\r\n" % (len(word), word) for word in encoded
    )


def _as_text(value) -> str:
    if isinstance(value, memoryview):
        value = value.tobytes()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def database_findings(connection, secret: str) -> list[str]:
    """Read every row of every table with raw SQL; return the columns that leak.

    Session data is signed and compressed, so it is also read through the session store.
    """
    from django.contrib.sessions.backends.db import SessionStore

    findings = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            columns = [column.name for column in cursor.description]
            for row in cursor.fetchall():
                for column, value in zip(columns, row, strict=True):
                    if value is None:
                        continue
                    texts = [_as_text(value)]
                    if table == "django_session" and column == "session_data":
                        texts.append(_as_text(SessionStore().decode(value)))
                    if any(holds_secret(text, secret) for text in texts):
                        findings.append(f"table {table}, column {column}")
    return sorted(set(findings))


# Loggers that are quiet by default (or configured quieter in settings) but talk at DEBUG.
TALKATIVE_LOGGERS = (
    "celery",
    "celery.app.trace",
    "celery.task",
    "celery.worker",
    "kombu",
    "stripe",
    "urllib3",
    "django",
    "django.db.backends",
    "django.request",
    "django.security",
    "django.template",
)
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class RecordingHandler(logging.Handler):
    """Keep each record as the text a log handler could write: message, traceback, extras.

    Placed first on every logger that has handlers, it sees each record before anything
    writes it out, then blanks a record holding one of `secrets`: a leak then fails the test
    without the secret being printed in pytest's report of captured logs.
    """

    def __init__(self, *secrets: str):
        super().__init__(level=logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        self.records: list[tuple[str, int, str]] = []
        self._secrets = secrets

    def emit(self, record):
        if getattr(record, "_leak_checked", False):
            return
        try:
            text = self.format(record)
        except Exception as error:  # noqa: BLE001  an unformattable record is still read
            text = f"{record.msg!r} {record.args!r} ({type(error).__name__})"
        extras = {
            name: value for name, value in vars(record).items() if name not in _RECORD_ATTRIBUTES
        }
        text = f"{text}\n{extras!r}"
        self.records.append((record.name, record.levelno, text))
        record._leak_checked = True
        if any(holds_secret(text, secret) for secret in self._secrets):
            record.msg, record.args = "[a record holding a secret, withheld]", None
            record.exc_info = record.exc_text = record.stack_info = None


@contextmanager
def everything_logged_to(recorder: RecordingHandler):
    """Send every log record, at DEBUG, to `recorder` first, wherever it would be handled;
    put the loggers back afterwards."""
    named = [logging.getLogger(name) for name in TALKATIVE_LOGGERS]
    levels = [(logger, logger.level) for logger in [logging.getLogger(), *named]]
    handling = [logging.getLogger()] + [
        logger
        for logger in logging.root.manager.loggerDict.values()
        if isinstance(logger, logging.Logger) and (logger.handlers or not logger.propagate)
    ]
    for logger, _level in levels:
        logger.setLevel(logging.DEBUG)
    for logger in handling:
        logger.handlers.insert(0, recorder)
    try:
        yield recorder
    finally:
        for logger in handling:
            if recorder in logger.handlers:
                logger.removeHandler(recorder)
        for logger, level in levels:
            logger.setLevel(level)
