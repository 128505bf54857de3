"""Settings for bcservice, read from environment variables with safe defaults.

With nothing set the service runs on its embedded default: SQLite and the django-q2 ORM broker.
``DATABASE_URL`` switches the store to PostgreSQL (psycopg 3), ``BC_REDIS_URL`` the broker to Redis,
and ``BC_PRODUCTION=1`` turns on the hardened settings that pass ``manage.py check --deploy``.
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
# Local state of the embedded default (SQLite file, demo secrets and signing key, exported audit
# checkpoints, degraded-mode snapshots, the lab, backups). The test suite points it at a
# temporary directory so that nothing a test starts writes into a checkout's var/.
BC_VAR_DIR = Path(os.environ.get("BC_VAR_DIR") or BASE_DIR / "var")


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


PRODUCTION = env_bool("BC_PRODUCTION")
DEBUG = env_bool("BC_DEBUG", default=False)

_DEV_KEY = "django-insecure-dev-only-key-not-for-production-use-0123456789"
SECRET_KEY = os.environ.get("BC_SECRET_KEY", "" if PRODUCTION else _DEV_KEY)
if not SECRET_KEY:
    raise ImproperlyConfigured("BC_SECRET_KEY must be set when BC_PRODUCTION=1")

ALLOWED_HOSTS = env_list("BC_ALLOWED_HOSTS", "" if PRODUCTION else "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("BC_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "guardian",
    "simple_history",
    "django_q",
    "django_htmx",
    "bcservice",
    "audit",
    "inventory",
    "connectors",
    "approvals",
    "executions",
    "notifications",
    "bcservice.accounts",
    "frontend",
]

MIDDLEWARE = [
    "bcservice.middleware.RequestIdMiddleware",
    "bcservice.metrics.MetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Before sessions and auth: answers 503 / last-known copies while the database is down.
    "bcservice.degraded.DegradedModeMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
]

ROOT_URLCONF = "bcservice.urls"
WSGI_APPLICATION = "bcservice.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# The state store: SQLite unless DATABASE_URL says otherwise.
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{BC_VAR_DIR / 'db.sqlite3'}",
        conn_max_age=int(os.environ.get("BC_DB_CONN_MAX_AGE", "0")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Concurrent writers (web + worker) on SQLite need WAL and a busy timeout, and BEGIN IMMEDIATE
    # so that the audit chain append serialises instead of failing with "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    if os.environ.get("BC_SQLITE_PATH"):
        DATABASES["default"]["NAME"] = os.environ["BC_SQLITE_PATH"]
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    # Password logins, limited by BC_LOCAL_LOGIN (see the identity block below).
    "bcservice.auth.backends.LocalPasswordBackend",
    # OpenID Connect; answers nothing unless the BC_OIDC_* settings are present.
    "bcservice.auth.oidc.OIDCBackend",
    "guardian.backends.ObjectPermissionBackend",
]
ANONYMOUS_USER_NAME = None  # guardian: no anonymous user object

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(os.environ.get("BC_STATIC_ROOT", BASE_DIR / "var" / "static"))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [d for d in [BASE_DIR / "frontend" / "dist"] if d.exists()]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

LOGIN_URL = "/admin/login/"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first so that an unauthenticated request gets 401 with WWW-Authenticate.
        "bcservice.auth.tokens.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "bcservice.api.pagination.StandardPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "bcservice.api.exceptions.exception_handler",
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
}

SPECTACULAR_SETTINGS = {
    "TITLE": "bcservice API",
    "DESCRIPTION": "Business Continuity service: DR readiness, approvals, executions, audit.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {},
}

# django-q2: the ORM broker by default, Redis when BC_REDIS_URL is set.
Q_CLUSTER = {
    "name": "bcservice",
    "workers": int(os.environ.get("BC_Q_WORKERS", "4")),
    "timeout": int(os.environ.get("BC_Q_TIMEOUT", "900")),
    "retry": int(os.environ.get("BC_Q_RETRY", "1200")),
    "max_attempts": 1,
    "catch_up": False,
    "save_limit": 1000,
    "label": "Task queue",
}
if os.environ.get("BC_REDIS_URL"):
    Q_CLUSTER["redis"] = os.environ["BC_REDIS_URL"]
else:
    Q_CLUSTER["orm"] = "default"
    Q_CLUSTER["poll"] = float(os.environ.get("BC_Q_POLL", "0.5"))

# Secrets for the demo come from the environment or a local file; see connectors/secrets.py.
BC_SECRETS_FILE = os.environ.get("BC_SECRETS_FILE", str(BC_VAR_DIR / "secrets.json"))
# vault: references (connectors/vault.py, docs/operations/vault.md). The login itself
# (BC_VAULT_TOKEN, or BC_VAULT_ROLE_ID + BC_VAULT_SECRET_ID) is read from the environment at login
# time and deliberately never copied into settings.
BC_VAULT_ADDR = os.environ.get("BC_VAULT_ADDR", "")
BC_VAULT_MOUNT = os.environ.get("BC_VAULT_MOUNT", "secret")  # the KV version 2 mount
BC_VAULT_APPROLE_MOUNT = os.environ.get("BC_VAULT_APPROLE_MOUNT", "approle")
BC_VAULT_NAMESPACE = os.environ.get("BC_VAULT_NAMESPACE", "")
BC_VAULT_CACERT = os.environ.get("BC_VAULT_CACERT", "")  # CA bundle for TLS; empty: system CAs
BC_VAULT_TIMEOUT = float(os.environ.get("BC_VAULT_TIMEOUT", "5"))
# "module:function" returning a DB-API connection; the demo points it at the lab's scripted
# Snowflake. Empty means the real snowflake.connector.connect.
BC_SNOWFLAKE_CONNECTION_FACTORY = os.environ.get("BC_SNOWFLAKE_CONNECTION_FACTORY", "")
BC_LAB_DIR = Path(os.environ.get("BC_LAB_DIR", BC_VAR_DIR / "lab"))

# Notifications (docs/notifications.md): channel endpoints, and the worker's retries: after the
# n-th failure wait BASE x 2^(n-1) s (+-10 %), at most MAX s, giving up after MAX_ATTEMPTS.
BC_PAGERDUTY_EVENTS_URL = os.environ.get(
    "BC_PAGERDUTY_EVENTS_URL", "https://events.pagerduty.com/v2/enqueue"
)
BC_NOTIFY_HTTP_TIMEOUT = float(os.environ.get("BC_NOTIFY_HTTP_TIMEOUT", "10"))
BC_NOTIFY_RETRY_BASE_SECONDS = int(os.environ.get("BC_NOTIFY_RETRY_BASE_SECONDS", "30"))
BC_NOTIFY_RETRY_MAX_SECONDS = int(os.environ.get("BC_NOTIFY_RETRY_MAX_SECONDS", "3600"))
BC_NOTIFY_MAX_ATTEMPTS = int(os.environ.get("BC_NOTIFY_MAX_ATTEMPTS", "8"))
BC_NOTIFY_KEEP_DAYS = int(os.environ.get("BC_NOTIFY_KEEP_DAYS", "90"))
BC_NOTIFY_EMAIL_SUBJECT_PREFIX = os.environ.get("BC_NOTIFY_EMAIL_SUBJECT_PREFIX", "[bcservice] ")
# "package.module:factory" building a gds_notification provider for the gds channel.
BC_GDS_PROVIDER = os.environ.get("BC_GDS_PROVIDER", "")
# E-mail through Django's backend: SMTP when BC_EMAIL_HOST is set, else the console (demo).
EMAIL_HOST = os.environ.get("BC_EMAIL_HOST", "")
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend"
)
EMAIL_PORT = int(os.environ.get("BC_EMAIL_PORT", "587"))
EMAIL_HOST_USER = os.environ.get("BC_EMAIL_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("BC_EMAIL_PASSWORD", "")
EMAIL_USE_SSL = env_bool("BC_EMAIL_USE_SSL", False)  # implicit TLS (465); else STARTTLS below
EMAIL_USE_TLS = env_bool("BC_EMAIL_USE_TLS", not EMAIL_USE_SSL)
EMAIL_TIMEOUT = int(os.environ.get("BC_EMAIL_TIMEOUT", "10"))
DEFAULT_FROM_EMAIL = os.environ.get("BC_EMAIL_FROM", "bcservice@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# Where scripts/backup.sh writes pg_dump files; bc_selfcheck reads their age.
BC_BACKUP_DIR = Path(os.environ.get("BC_BACKUP_DIR", BC_VAR_DIR / "backups"))
# bc_selfcheck's limits (bcservice/selfcheck.py; the command's options override them).
BC_SELFCHECK_MAX_BACKUP_AGE_HOURS = float(os.environ.get("BC_SELFCHECK_MAX_BACKUP_AGE_HOURS", "24"))
BC_SELFCHECK_MAX_STORE_LAG_SECONDS = float(
    os.environ.get("BC_SELFCHECK_MAX_STORE_LAG_SECONDS", "5")
)
BC_SELFCHECK_REQUIRE_STANDBY = env_bool("BC_SELFCHECK_REQUIRE_STANDBY", True)

# Degraded mode while the database is unreachable (bcservice/degraded.py): where last-known
# copies of status reads are kept, how old one may be, how often the database is retried.
BC_SNAPSHOT_DIR = Path(os.environ.get("BC_SNAPSHOT_DIR", BC_VAR_DIR / "snapshots"))
BC_DEGRADED_SNAPSHOT_MAX_AGE = float(os.environ.get("BC_DEGRADED_SNAPSHOT_MAX_AGE", "86400"))
BC_DEGRADED_RECHECK_SECONDS = float(os.environ.get("BC_DEGRADED_RECHECK_SECONDS", "5"))
BC_DEGRADED_PROBE_TIMEOUT = int(os.environ.get("BC_DEGRADED_PROBE_TIMEOUT", "3"))

# Collection: how many sweep loops may run at once (across workers and hosts; leases split the
# due resources between them), how long one loop runs before it hands over, and how many targets
# one loop observes concurrently.
BC_SWEEP_SLOTS = int(os.environ.get("BC_SWEEP_SLOTS", "1"))
BC_SWEEP_LOOP_SECONDS = float(os.environ.get("BC_SWEEP_LOOP_SECONDS", "50"))
BC_COLLECT_CONCURRENCY = int(os.environ.get("BC_COLLECT_CONCURRENCY", "16"))

# Drill cadence by tier (days): a resource whose last passed drill is older than its tier's
# cadence gets the readiness reason "drill_overdue" (inventory/rules.py, docs/monitoring.md).
BC_DRILL_CADENCE_DAYS = {
    1: int(os.environ.get("BC_DRILL_CADENCE_TIER1_DAYS", "90")),
    2: int(os.environ.get("BC_DRILL_CADENCE_TIER2_DAYS", "180")),
    3: int(os.environ.get("BC_DRILL_CADENCE_TIER3_DAYS", "365")),
}
if min(BC_DRILL_CADENCE_DAYS.values()) < 1:
    raise ImproperlyConfigured("BC_DRILL_CADENCE_TIER<n>_DAYS must be at least 1")
# A resource that never passed a drill is overdue this many days after it was added; empty: one
# cadence of its tier (a new resource has as long for its first drill as for any other).
BC_DRILL_GRACE_DAYS = (
    int(os.environ["BC_DRILL_GRACE_DAYS"]) if os.environ.get("BC_DRILL_GRACE_DAYS") else None
)

# Longest break-glass grant an eligible person may open (minutes).
BC_BREAKGLASS_MAX_MINUTES = int(os.environ.get("BC_BREAKGLASS_MAX_MINUTES", "240"))

# When set, /metrics requires "Authorization: Bearer <token>".
BC_METRICS_TOKEN = os.environ.get("BC_METRICS_TOKEN", "")

# OpenTelemetry tracing (bcservice/tracing.py), off by default; the exporter reads the standard
# OTEL_EXPORTER_OTLP_* variables. BC_OTEL_EXPORTER=console prints spans instead.
BC_OTEL_ENABLED = env_bool("BC_OTEL_ENABLED", False)
BC_OTEL_EXPORTER = os.environ.get("BC_OTEL_EXPORTER", "otlp")

LOG_LEVEL = os.environ.get("BC_LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "bcservice.logging.RequestIdFilter"}},
    "formatters": {"json": {"()": "bcservice.logging.JsonFormatter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "snowflake.connector": {"level": "WARNING"},
    },
}

# --- Identity: OIDC single sign-on, local logins, API tokens, MFA for approvers -----------------
# OIDC is on when a client id and secret are set together with an issuer (endpoints discovered
# from /.well-known/openid-configuration on first use) or the explicit endpoints. See
# docs/operations/identity.md; bcservice.auth.oidc reads these at call time.
BC_OIDC_ISSUER = os.environ.get("BC_OIDC_ISSUER", "").rstrip("/")
OIDC_RP_CLIENT_ID = os.environ.get("BC_OIDC_CLIENT_ID", "")
OIDC_RP_CLIENT_SECRET = os.environ.get("BC_OIDC_CLIENT_SECRET", "")
OIDC_OP_AUTHORIZATION_ENDPOINT = os.environ.get("BC_OIDC_AUTHORIZATION_ENDPOINT", "")
OIDC_OP_TOKEN_ENDPOINT = os.environ.get("BC_OIDC_TOKEN_ENDPOINT", "")
OIDC_OP_USER_ENDPOINT = os.environ.get("BC_OIDC_USERINFO_ENDPOINT", "")
OIDC_OP_JWKS_ENDPOINT = os.environ.get("BC_OIDC_JWKS_ENDPOINT", "")
OIDC_RP_SIGN_ALGO = os.environ.get("BC_OIDC_SIGN_ALGO", "RS256")
OIDC_RP_SCOPES = os.environ.get("BC_OIDC_SCOPES", "openid email profile groups")
OIDC_TOKEN_USE_BASIC_AUTH = env_bool("BC_OIDC_TOKEN_BASIC_AUTH", True)
OIDC_USE_PKCE = True
OIDC_TIMEOUT = int(os.environ.get("BC_OIDC_TIMEOUT", "10"))
OIDC_AUTHENTICATE_CLASS = "bcservice.auth.views.OIDCLoginView"
OIDC_CALLBACK_CLASS = "bcservice.auth.views.OIDCCallbackView"
# The claim that names the Django user, and the claim (dotted path allowed, e.g.
# "realm_access.roles") whose values are matched against the admin's role mappings.
BC_OIDC_USERNAME_CLAIM = os.environ.get("BC_OIDC_USERNAME_CLAIM", "preferred_username")
BC_OIDC_GROUPS_CLAIM = os.environ.get("BC_OIDC_GROUPS_CLAIM", "groups")
# Let an OIDC login take over an existing local account of the same name (off: refused).
BC_OIDC_LINK_LOCAL_USERS = env_bool("BC_OIDC_LINK_LOCAL_USERS")
LOGIN_REDIRECT_URL = "/app/"
LOGIN_REDIRECT_URL_FAILURE = "/app/login/?sso=failed"
LOGOUT_REDIRECT_URL = "/app/"
# With SSO configured, people who are not logged in go to the identity provider.
LOGIN_URL = os.environ.get("BC_LOGIN_URL") or (
    "/oidc/authenticate/" if OIDC_RP_CLIENT_ID else LOGIN_URL
)
# Password logins: "all" (default, the demo's local accounts), "breakglass" (only users flagged
# for break-glass in the admin) or "none". Enforced by bcservice.auth.backends.
BC_LOCAL_LOGIN = os.environ.get("BC_LOCAL_LOGIN", "all").strip().lower()
if BC_LOCAL_LOGIN not in {"all", "breakglass", "none"}:
    raise ImproperlyConfigured("BC_LOCAL_LOGIN must be one of: all, breakglass, none")
# MFA is the identity provider's job; approver roles need a login whose ID token carries one of
# these acr values and/or one of these amr values (empty: no requirement).
BC_APPROVER_REQUIRED_ACR = env_list("BC_APPROVER_REQUIRED_ACR")
BC_APPROVER_REQUIRED_AMR = env_list("BC_APPROVER_REQUIRED_AMR")
# Sessions end after this many seconds (roles from the IdP are recomputed at each login).
SESSION_COOKIE_AGE = int(os.environ.get("BC_SESSION_SECONDS", str(8 * 3600)))
if PRODUCTION:
    # __Host-: the browser refuses the cookie unless Secure, Path=/ and without Domain.
    SESSION_COOKIE_NAME = "__Host-sessionid"

if PRODUCTION:
    SECURE_SSL_REDIRECT = env_bool("BC_SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = int(os.environ.get("BC_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
