"""The one settings module. Everything that varies between installs comes from the environment
(see the configuration table in README.md)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url

from loket.env import env_bool, env_float, env_int, env_list, env_str, persistent_secret

SRC_DIR = Path(__file__).resolve().parent
BASE_DIR = Path(env_str("LOKET_HOME") or Path.cwd())
VAR_DIR = Path(env_str("LOKET_VAR_DIR") or BASE_DIR / "var")

DEBUG = env_bool("LOKET_DEBUG", False)
TESTING = env_bool("LOKET_TESTING", False) or "pytest" in sys.modules

DATABASE_URL = env_str("DATABASE_URL")
REDIS_URL = env_str("REDIS_URL")
if TESTING and REDIS_URL and (_test_worker := os.environ.get("PYTEST_XDIST_WORKER", "")):
    # Parallel test workers share one Redis server, and a test's cache.clear() is FLUSHDB: each
    # worker gets a database of its own, 1-15, leaving database 0 to whatever else runs on the
    # machine. The `loket` processes a test starts get this URL (tests.processes.subprocess_env).
    _redis_db = 1 + int(_test_worker.removeprefix("gw") or 0) % 15
    REDIS_URL = urlsplit(REDIS_URL)._replace(path=f"/{_redis_db}").geturl()

# Embedded mode: no external services, SQLite in var/, in-memory channel layer, workers in-process.
EMBEDDED = not DATABASE_URL

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not EMBEDDED:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured("SECRET_KEY must be set when DATABASE_URL is set")
    SECRET_KEY = persistent_secret(VAR_DIR / "secret_key")

# Channel secrets and TOTP seeds are encrypted with keys derived from this per purpose.
LOKET_ENCRYPTION_KEY = env_str("LOKET_ENCRYPTION_KEY") or SECRET_KEY

ALLOWED_HOSTS = env_list("LOKET_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("LOKET_CSRF_TRUSTED_ORIGINS", [])
LOKET_PUBLIC_URL = env_str("LOKET_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")
# Trust X-Forwarded-Proto/Host from a reverse proxy in front of Loket.
if env_bool("LOKET_BEHIND_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    USE_X_FORWARDED_HOST = True

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "channels",
    "ninja",  # its vendored Swagger UI instead of a CDN
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "django_tasks",
    "django_tasks_db",
    "loket.jobs",
    "loket.tenancy",
    "loket.inbox",
    "loket.automation",
    "loket.bots",
    "loket.knowledge",
    "loket.reports",
    "loket.connectors",
    "loket.connectors.livechat",
    "loket.realtime",
    "loket.api",
    "loket.accounts",
    "loket.web",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "loket.web.helpcenter.middleware.HelpCenterDomainMiddleware",  # custom domains
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "loket.web.middleware.UserLanguageMiddleware",
    "loket.accounts.middleware.RequireTwoFactorMiddleware",
]

ROOT_URLCONF = "loket.urls"
ASGI_APPLICATION = "loket.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "django.template.context_processors.csrf",
                "loket.web.workspace.workspace_context",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
SQLITE_PATH = VAR_DIR / "loket.sqlite3"
if EMBEDDED:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "loket.db.sqlite3",  # Django's, with one writer per process
            "NAME": str(SQLITE_PATH),
            # One connection per thread kept open; WAL lets readers run beside the single writer.
            "CONN_MAX_AGE": None,
            "OPTIONS": {
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": (
                    "PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL;"
                    "PRAGMA busy_timeout=30000;PRAGMA cache_size=-20000"
                ),
            },
            # A file, so subprocesses and threads share it; per process, so runs do not collide.
            "TEST": {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")},
        }
    }
else:
    _db = dj_database_url.parse(DATABASE_URL)
    if _db["ENGINE"] == "django.db.backends.postgresql":
        _db["CONN_MAX_AGE"] = 0  # the pool keeps connections; Django returns them after use
        _db.setdefault("OPTIONS", {})
        # Server-side binding lets PostgreSQL prepare the hot statements (ingest) once per
        # connection: measured ~25% less database CPU per message.
        _db["OPTIONS"]["server_side_binding"] = env_bool("LOKET_DB_SERVER_SIDE_BINDING", True)
        _db["OPTIONS"]["prepare_threshold"] = 5
        _db["OPTIONS"]["pool"] = {
            "min_size": env_int("LOKET_DB_POOL_MIN", 2),
            "max_size": env_int("LOKET_DB_POOL_MAX", 20),
            "timeout": env_float("LOKET_DB_POOL_TIMEOUT", 10.0),
        }
        if TESTING:  # concurrent test runs on one server must not clobber each other
            _db["TEST"] = {"NAME": f"test_{_db['NAME']}_{os.getpid()}"}
    elif _db["ENGINE"] == "django.db.backends.sqlite3":
        _db["ENGINE"] = "loket.db.sqlite3"
        _db["CONN_MAX_AGE"] = None
        _db.setdefault("OPTIONS", {}).update(
            {
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": (
                    "PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL;PRAGMA busy_timeout=30000"
                ),
            }
        )
    DATABASES = {"default": _db}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache, channels, tasks ------------------------------------------------------------------
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": env_str("LOKET_CHANNEL_PREFIX", "loket")},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

# Task workers started inside `loket serve` (embedded mode default); production runs `loket worker`.
LOKET_INPROCESS_WORKERS = env_int("LOKET_INPROCESS_WORKERS", 1 if EMBEDDED else 0)
LOKET_WORKER_POLL_SECONDS = env_float("LOKET_WORKER_POLL_SECONDS", 0.5)
LOKET_WORKER_HEARTBEAT_SECONDS = env_float("LOKET_WORKER_HEARTBEAT_SECONDS", 10.0)
# A RUNNING task whose worker has not sent a heartbeat for this long is requeued.
LOKET_WORKER_STALE_SECONDS = env_float("LOKET_WORKER_STALE_SECONDS", 60.0)

# Functions called with every domain event: the one list of subscribers (see loket/events.py).
LOKET_EVENT_SUBSCRIBERS = [
    "loket.realtime.publish.on_event",
    "loket.connectors.livechat.delivery.on_event",  # e.g. the rating prompt after resolve
    "loket.automation.assignment.on_event",  # auto-assignment of new and reopened conversations
    "loket.automation.sla.on_event",  # SLA due times
    "loket.bots.engine.on_event",  # an agent's reply takes over from the bot
]
# Functions that enqueue follow-up jobs for an event inside the transaction that emits it (see
# loket/events.py): the jobs are stored with the data or not at all.
LOKET_EVENT_ENQUEUERS = [
    "loket.automation.autoreplies.enqueue_jobs",  # greetings and away messages
    "loket.automation.rules.engine.enqueue_jobs",  # rules triggered by events
    "loket.bots.engine.enqueue_jobs",  # the flow bot's turn on a customer's message
    "loket.reports.csat.enqueue_jobs",  # CSAT survey after resolve; answers to it
]

# --- Auth -------------------------------------------------------------------------------------
AUTH_USER_MODEL = "tenancy.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
# Accounts come from invitations and `loket createadmin`; the adapter closes open signup.
ACCOUNT_ADAPTER = "loket.accounts.adapters.AccountAdapter"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = "none"
# After a reset the person signs in again, so the 2FA step and every login check still run.
ACCOUNT_LOGIN_ON_PASSWORD_RESET = False
# No mail to addresses without an account (a closed system has no one to invite that way).
ACCOUNT_EMAIL_UNKNOWN_ACCOUNTS = False
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Loket] "
ACCOUNT_LOGOUT_REDIRECT_URL = "/accounts/login/"
# Per account (the email) 5 failed passwords in 5 minutes, then even the right one is refused;
# the counters live in the cache (Redis when REDIS_URL is set, so all processes share them).
ACCOUNT_RATE_LIMITS = {"login_failed": "10/m/ip,5/5m/key"}
if env_bool("LOKET_BEHIND_PROXY", False):
    # The client's address for the per-IP limits is the one the proxy saw, not the proxy's.
    ALLAUTH_TRUSTED_PROXY_COUNT = 1
LOGIN_REDIRECT_URL = "/"
LOGIN_URL = "/accounts/login/"
MFA_ADAPTER = "loket.accounts.adapters.MFAAdapter"  # TOTP seeds encrypted with loket.crypto
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "Loket"
# One 30-second step either side: a code typed as it changes still works (each is used once).
MFA_TOTP_TOLERANCE = 1
# allauth precedes loket.accounts in INSTALLED_APPS, so its templates would win over the
# overrides in loket/accounts/templates; a template directory is searched before app ones.
TEMPLATES[0]["DIRS"] = [SRC_DIR / "accounts" / "templates", *TEMPLATES[0]["DIRS"]]
LOKET_INVITATION_DAYS = env_int("LOKET_INVITATION_DAYS", 7)

# --- Email (password resets, invitations) -----------------------------------------------------
# console: printed on stderr (embedded mode default); smtp: LOKET_EMAIL_HOST (the default when
# it is set); locmem: kept in memory (tests); or a dotted path to any Django email backend.
_EMAIL_BACKENDS = {
    "console": "django.core.mail.backends.console.EmailBackend",
    "smtp": "django.core.mail.backends.smtp.EmailBackend",
    "locmem": "django.core.mail.backends.locmem.EmailBackend",
}
EMAIL_HOST = env_str("LOKET_EMAIL_HOST", "localhost")
_email_backend = env_str("LOKET_EMAIL_BACKEND") or (
    "smtp" if env_str("LOKET_EMAIL_HOST") else "console"
)
EMAIL_BACKEND = _EMAIL_BACKENDS.get(_email_backend, _email_backend)
EMAIL_PORT = env_int("LOKET_EMAIL_PORT", 587)
EMAIL_HOST_USER = env_str("LOKET_EMAIL_USER")
EMAIL_HOST_PASSWORD = env_str("LOKET_EMAIL_PASSWORD")
EMAIL_USE_SSL = env_bool("LOKET_EMAIL_SSL", False)  # implicit TLS (port 465)
EMAIL_USE_TLS = env_bool("LOKET_EMAIL_STARTTLS", not EMAIL_USE_SSL)
EMAIL_TIMEOUT = env_int("LOKET_EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Loket <loket@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

if TESTING:
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# uvicorn's per-request access log (off: a reverse proxy in front usually logs requests).
LOKET_ACCESS_LOG = env_bool("LOKET_ACCESS_LOG", False)

# --- HTTP client -----------------------------------------------------------------------------
# Lets the SSRF guard reach loopback/private addresses (tests and on-premise setups only).
LOKET_HTTP_ALLOW_PRIVATE = env_bool("LOKET_HTTP_ALLOW_PRIVATE", False)
LOKET_HTTP_TIMEOUT = env_float("LOKET_HTTP_TIMEOUT", 10.0)
# Demo endpoints (the ferry booking look-up the demo workspace's bot calls, loket.web.demo_api);
# while on, the SSRF guard lets the client reach Loket's own LOKET_PUBLIC_URL (that origin only).
LOKET_DEMO_ENDPOINTS = env_bool("LOKET_DEMO_ENDPOINTS", EMBEDDED)

# --- Messaging providers ---------------------------------------------------------------------
# API base URLs: settings so tests (and air-gapped proxies) can point them at local servers.
LOKET_META_GRAPH_URL = env_str("LOKET_META_GRAPH_URL", "https://graph.facebook.com").rstrip("/")
LOKET_META_GRAPH_VERSION = env_str("LOKET_META_GRAPH_VERSION", "v21.0")
LOKET_TELEGRAM_API_URL = env_str("LOKET_TELEGRAM_API_URL", "https://api.telegram.org").rstrip("/")
LOKET_TWILIO_API_URL = env_str("LOKET_TWILIO_API_URL", "https://api.twilio.com").rstrip("/")

# --- Ingest ----------------------------------------------------------------------------------
# Threads per process that store webhook deliveries in groups (PostgreSQL; SQLite always has one).
LOKET_INGEST_WRITERS = env_int("LOKET_INGEST_WRITERS", 2)
LOKET_WEBHOOK_MAX_BYTES = env_int("LOKET_WEBHOOK_MAX_BYTES", 5 * 1024 * 1024)
LOKET_SIGNATURE_TOLERANCE_SECONDS = 300
# A resolved conversation is reopened by a new customer message within this many days;
# after that the message starts a new conversation.
LOKET_REOPEN_WITHIN_DAYS = env_int("LOKET_REOPEN_WITHIN_DAYS", 7)

LOKET_ATTACHMENT_MAX_BYTES = env_int("LOKET_ATTACHMENT_MAX_BYTES", 25 * 1024 * 1024)
# A customer may change their satisfaction rating for this long after giving it.
LOKET_CSAT_CHANGE_HOURS = env_int("LOKET_CSAT_CHANGE_HOURS", 24)
# At most one automatic answer (greeting, away message) per contact within this many minutes.
LOKET_AUTO_REPLY_PER_CONTACT_MINUTES = env_int("LOKET_AUTO_REPLY_PER_CONTACT_MINUTES", 240)
# Loop guard: once rules acted this many times on one conversation within an hour, they stop there.
LOKET_RULE_RUNS_PER_CONVERSATION = env_int("LOKET_RULE_RUNS_PER_CONVERSATION", 20)
# A bot waiting for an answer this long (when its flow sets no timeout of its own) gives up.
LOKET_BOT_IDLE_MINUTES = env_int("LOKET_BOT_IDLE_MINUTES", 1440)
# "module.function(conversation, text, languages) -> str | None": what the bot's FAQ step asks
# first — the workspace's knowledge base; "" for the step's own list only.
# Background sweeps over new customer messages (language, sentiment) read a message once it is
# this old, so one committed a moment late is not passed by.
LOKET_SWEEP_SETTLE_SECONDS = env_int("LOKET_SWEEP_SETTLE_SECONDS", 3)
LOKET_BOT_KNOWLEDGE_ANSWERER = env_str("LOKET_BOT_KNOWLEDGE_ANSWERER", "loket.knowledge.bot.answer")

# --- Live chat -------------------------------------------------------------------------------
LOKET_WIDGET_TOKEN_DAYS = env_int("LOKET_WIDGET_TOKEN_DAYS", 365)  # a visitor session lasts
LOKET_WIDGET_MESSAGES_PER_MINUTE = env_int("LOKET_WIDGET_MESSAGES_PER_MINUTE", 30)
LOKET_WIDGET_MESSAGES_PER_MINUTE_PER_IP = env_int("LOKET_WIDGET_MESSAGES_PER_MINUTE_PER_IP", 120)
LOKET_WIDGET_UPLOAD_MAX_BYTES = env_int("LOKET_WIDGET_UPLOAD_MAX_BYTES", 10 * 1024 * 1024)
LOKET_WIDGET_UPLOADS_PER_HOUR = env_int("LOKET_WIDGET_UPLOADS_PER_HOUR", 30)
LOKET_WIDGET_UPLOAD_TYPES = env_list(
    "LOKET_WIDGET_UPLOAD_TYPES",
    [
        "image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "text/plain",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ],
)  # fmt: skip
# A function(filename, content_type, data) that raises UploadRejected for a file it refuses
# (e.g. a ClamAV check), as a dotted path; empty: no scan.
LOKET_UPLOAD_SCANNER = env_str("LOKET_UPLOAD_SCANNER", "")

# --- Email channel ---------------------------------------------------------------------------
# IMAP mailboxes are read by a background service in `loket worker` (and in-process workers).
LOKET_MAILBOX_POLLING = env_bool("LOKET_MAILBOX_POLLING", True)
LOKET_MAILBOX_POLL_SECONDS = env_float("LOKET_MAILBOX_POLL_SECONDS", 60.0)  # servers without IDLE
LOKET_MAILBOX_IDLE_SECONDS = env_float("LOKET_MAILBOX_IDLE_SECONDS", 25 * 60.0)
LOKET_MAILBOX_RESCAN_SECONDS = env_float("LOKET_MAILBOX_RESCAN_SECONDS", 15.0)
LOKET_MAILBOX_LEASE_SECONDS = env_float("LOKET_MAILBOX_LEASE_SECONDS", 90.0)
LOKET_EMAIL_TIMEOUT_SECONDS = env_float("LOKET_EMAIL_TIMEOUT_SECONDS", 30.0)
# Extra CA certificates (PEM) trusted for IMAP and SMTP servers, e.g. an on-premise mail server
# with a private CA; the system's CAs are trusted as well.
LOKET_EMAIL_CA_FILE = env_str("LOKET_EMAIL_CA_FILE", "")
# `loket smtpd`: where it listens, and the domain of the channels' forwarding addresses
# (<channel uuid>@LOKET_SMTPD_DOMAIN; point that domain's MX at the receiver).
LOKET_SMTPD_HOST = env_str("LOKET_SMTPD_HOST", "127.0.0.1")
LOKET_SMTPD_PORT = env_int("LOKET_SMTPD_PORT", 2525)
LOKET_SMTPD_DOMAIN = env_str("LOKET_SMTPD_DOMAIN", "inbound.loket.localhost")

# --- i18n, static, media ---------------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("nl", "Nederlands")]
LOCALE_PATHS = [SRC_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
MEDIA_ROOT = Path(env_str("LOKET_MEDIA_ROOT") or VAR_DIR / "media")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "loket": {"handlers": ["console"], "level": env_str("LOKET_LOG_LEVEL", "INFO")},
        # Without DEBUG or ADMINS a 500 would otherwise leave no traceback anywhere.
        "django.request": {"handlers": ["console"], "level": "ERROR", "propagate": False},
    },
}
