"""How many examples a property test tries.

Each test names its own number; the hypothesis profile scales it
(tests/conftest.py registers them): ``default`` tries half of it, so that
``make test`` stays short, ``long`` ten times as many
(``pytest --hypothesis-profile=long``).
"""
from hypothesis import HealthCheck, settings

PER_100 = 100       # a profile's max_examples is read as "per 100 of the test's number"


def examples(n):
    return max(10, n * settings().max_examples // PER_100)


def thorough(n):
    """Settings for a property test worth ``n`` examples at full depth: no
    deadline (the VM and a loaded machine are slow), no health check."""
    return settings(max_examples=examples(n), deadline=None,
                    suppress_health_check=list(HealthCheck))
