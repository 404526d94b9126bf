"""A password hasher for the test suite only: the same PBKDF2 scheme with few rounds.

Django's default (1,000,000 rounds) costs ~0.3 s per user created, and most tests
create several. A hash from this one reads ``pbkdf2_sha256$1000$…``: any Django
process verifies it with the rounds written in it, so servers started by the tests
(gunicorn, workers) accept these passwords with their default settings.
"""

from django.contrib.auth.hashers import PBKDF2PasswordHasher


class FastPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    iterations = 1000
