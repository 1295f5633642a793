"""The load test (``python -m bench.load``, ``make loadtest``): see ``__main__.py``."""

# Requests made while users are still signing in (every sign-in hashes a password, so that burst
# slows every call) are named with this suffix and reported apart from the steady run.
AT_SIGN_IN = "(at sign-in)"
