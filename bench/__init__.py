"""The benchmark of issue #9 (``make bench``); not part of the test suite."""
