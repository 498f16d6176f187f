"""xrfweb settings: everything comes from the environment (README has the table).

Bad values fail loudly at start-up (ImproperlyConfigured) rather than at the first request.
"""
import os
import re
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, "").strip() or default


def env_bool(name: str, default: bool) -> bool:
    raw = env_str(name)
    if not raw:
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name}={raw!r}: expected 1/0, true/false, yes/no or on/off")


def env_int(name: str, default: int, minimum: int = 0) -> int:
    raw = env_str(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r}: expected a whole number") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name}={value}: must be at least {minimum}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = env_str(name)
    return [item.strip() for item in raw.split(",") if item.strip()] if raw else default


# Production-safe by default: `make run` and the tests turn DEBUG on explicitly.
DEBUG = env_bool("DEBUG", False)

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    # Development only: a random key per process, never one written in the code (scripts/run.sh
    # keeps one in the data folder so that sign-ins survive a restart).
    from django.core.management.utils import get_random_secret_key

    SECRET_KEY = get_random_secret_key()

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"] if DEBUG else [])
if not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must be set when DEBUG is off (e.g. xrf.example.org)")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# Uploads, results and trained models live here, outside any URL the web server serves directly.
DATA_DIR = Path(env_str("XRFWEB_DATA_DIR", str(BASE_DIR / "var"))).resolve()

try:
    DATABASES = {
        "default": dj_database_url.parse(
            env_str("DATABASE_URL", f"sqlite:///{DATA_DIR / 'db.sqlite3'}"), conn_max_age=0
        )
    }
except ValueError as e:
    raise ImproperlyConfigured(f"DATABASE_URL: {e}") from None
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web and the worker write the same file: wait for locks instead of failing at once.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
if not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured(f"REDIS_URL={REDIS_URL!r}: expected redis://host:port/db")
# One cache for every process (sign-in lockouts, API throttles): Redis, failing open when it is
# down (xrfweb/cache.py). Keys carry the queue prefix, so test sessions never share counts.
CACHES = {
    "default": {
        "BACKEND": "xrfweb.cache.SharedCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": ":".join(filter(None, ["xrfweb", env_str("XRFWEB_QUEUE_PREFIX")])),
        "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
    }
}

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    "axes",
    "xrfweb.accounts",
    "xrfweb.projects",
    "xrfweb.registry",
    "xrfweb.jobs",
    "xrfweb.api",
    "xrfweb.review",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Before the CSRF check, which may read a body: the upload size limits (projects/uploads.py).
    "xrfweb.projects.uploads.UploadLimitMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "axes.middleware.AxesMiddleware",  # last: it answers a sign-in that axes locked
]

ROOT_URLCONF = "xrfweb.urls"
WSGI_APPLICATION = "xrfweb.wsgi.application"
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
            ]
        },
    }
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
# Sign-in lockouts (django-axes, xrfweb/accounts/lockout.py): 10 failed sign-ins from one address
# (whatever the user names: password spraying), or for one user name from one address, lock it
# out for 15 minutes, even with the right password. A success does not clear an address's count
# (an attacker with an account could clear it between tries). Counted in the shared cache.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend",
                           "django.contrib.auth.backends.ModelBackend"]
AXES_HANDLER = "axes.handlers.cache.AxesCacheHandler"
AXES_FAILURE_LIMIT = 10
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = ["ip_address", ["username", "ip_address"]]
AXES_LOCKOUT_CALLABLE = "xrfweb.accounts.lockout.locked_out"
AXES_CLIENT_IP_CALLABLE = "xrfweb.accounts.lockout.client_address"
AXES_VERBOSE = False
# Trusted reverse proxies in front of the web server (the Docker set-up's TLS proxy: 1); the
# client's address for the lockouts is then read from X-Forwarded-For.
XRFWEB_PROXIES = env_int("XRFWEB_PROXIES", 0)
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
# Plotly's cartesian browser bundle (heatmap, scatter, bar: all the pages draw) is vendored in
# static/vendor: no CDN (sites may be offline), and a third of the full bundle's bytes.
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "var" / "static"  # filled by collectstatic (the Docker build)

# Uploads: stream every file to disk (never held in memory), capped while streaming. Django's
# small default limits (DATA_UPLOAD_MAX_MEMORY_SIZE, 2.5 MB) hold everywhere; only a signed-in
# user's request to an upload view may reach XRFWEB_MAX_UPLOAD_MB (projects/uploads.py).
FILE_UPLOAD_HANDLERS = ["xrfweb.projects.uploads.CappedTemporaryFileUploadHandler"]
FILE_UPLOAD_MAX_MEMORY_SIZE = 256 * 1024
# Same disk as the store, so keeping an upload is a rename, not a multi-GB copy.
FILE_UPLOAD_TEMP_DIR = str(DATA_DIR / "tmp")
Path(FILE_UPLOAD_TEMP_DIR).mkdir(parents=True, exist_ok=True)
XRFWEB_MAX_UPLOAD_MB = env_int("XRFWEB_MAX_UPLOAD_MB", 8192, minimum=1)
XRFWEB_USER_QUOTA_MB = env_int("XRFWEB_USER_QUOTA_MB", 102400, minimum=1)

# Jobs. A job may run this long; the broker must not hand its message to a second worker earlier.
XRFWEB_JOB_MAX_HOURS = env_int("XRFWEB_JOB_MAX_HOURS", 24, minimum=1)
# A running job whose heartbeat is older than this is failed by the reaper (worker died).
# At least three missed heartbeats (jobs beat every 20 s) before a quiet job counts as dead.
XRFWEB_HEARTBEAT_STALE_S = env_int("XRFWEB_HEARTBEAT_STALE_S", 300, minimum=60)
# A validation against a fine scan or a blind probe estimate (minutes of CPU work on the default
# queue) still running this long after it was asked, or taken by a worker, is marked failed
# (xrfweb/side_tasks.py); its task stops itself at the same limit.
XRFWEB_SIDE_TASK_TIMEOUT_S = env_int("XRFWEB_SIDE_TASK_TIMEOUT_S", 3600, minimum=60)
# Heavy work inside web requests (first comparisons, examples, a dataset's first read) at once,
# across the site; one at a time per user (xrfweb/review/limits.py).
XRFWEB_HEAVY_REQUESTS = env_int("XRFWEB_HEAVY_REQUESTS", 1, minimum=1)
# Jobs one user may have queued or running at once (fairness: the queue is first-in-first-out).
XRFWEB_MAX_ACTIVE_JOBS = env_int("XRFWEB_MAX_ACTIVE_JOBS", 4, minimum=1)
# Queue names get a prefix so that test sessions sharing one Redis never take each other's work.
XRFWEB_QUEUE_PREFIX = env_str("XRFWEB_QUEUE_PREFIX")
GPU_QUEUE = XRFWEB_QUEUE_PREFIX + "gpu"
DEFAULT_QUEUE = XRFWEB_QUEUE_PREFIX + "default"

CELERY_BROKER_URL = REDIS_URL
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": (XRFWEB_JOB_MAX_HOURS + 1) * 3600}
CELERY_TASK_IGNORE_RESULT = True  # the Job row is the result
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_PROC_ALIVE_TIMEOUT = 60  # a pool child imports torch & co. as it starts (xrfweb/celery.py)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TASK_DEFAULT_QUEUE = DEFAULT_QUEUE
CELERY_TASK_ROUTES = {
    "jobs.enhance_dataset": {"queue": GPU_QUEUE},
    "jobs.train_model": {"queue": GPU_QUEUE},
    "registry.benchmark_model": {"queue": GPU_QUEUE},
    "projects.parse_dataset": {"queue": DEFAULT_QUEUE},
    "jobs.validate_job": {"queue": DEFAULT_QUEUE},
    "projects.estimate_probe": {"queue": DEFAULT_QUEUE},  # numpy on the CPU, minutes at most
}
# No global time limit (training runs for hours); the job tasks set their own from XRFWEB_JOB_MAX_HOURS.
CELERY_TASK_TIME_LIMIT = None
CELERY_TASK_SOFT_TIME_LIMIT = None

XRFWEB_API_RATE = env_str("XRFWEB_API_RATE", "300/minute")
if not re.fullmatch(r"[1-9]\d*/(second|minute|hour|day)", XRFWEB_API_RATE):
    raise ImproperlyConfigured(f"XRFWEB_API_RATE={XRFWEB_API_RATE!r}: expected e.g. 300/minute")
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "xrfweb.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # Per signed-in user (and per address when signed out), counted in the shared cache. Generous
    # for scripts that poll a job every second; a runaway loop gets 429 with the wait.
    "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.UserRateThrottle",
                                 "rest_framework.throttling.AnonRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"user": XRFWEB_API_RATE, "anon": "60/minute"},
    # ?format= names a download format (h5, tiff, png, csv), not a DRF renderer.
    "URL_FORMAT_OVERRIDE": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "xrfweb API",
    "DESCRIPTION": "Resolution enhancement for X-ray fluorescence maps.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Production hardening (Django's deployment checklist); all on whenever DEBUG is off.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # container health checks speak plain HTTP
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# Content-Security-Policy (django-csp): scripts only from this site, none inline and no inline
# handlers, so a missed escape cannot run script. Pages start from static/app.js and read their
# data from data attributes or json_script. Styles may be inline: Plotly sets them on its SVG.
# Images: Plotly draws heatmaps as data: URLs.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:", "blob:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}
