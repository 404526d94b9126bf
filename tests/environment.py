"""Environment for the test suite, set before Django reads its settings."""

import os

os.environ.setdefault(
    "DJANGO_SECRET_KEY", "test-suite-secret-key-not-for-production-use-0123456789"
)
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
