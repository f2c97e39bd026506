"""Waiting for what a test needs to have happened, never for a fixed time.

``wait_for`` polls a condition until it holds or a deadline passes, and
then fails saying what did not happen; it returns what it waited for.
``arrived`` waits for deployed bots to report themselves at their sites.
"""
import time


class Timeout(AssertionError):
    pass


def wait_for(cond, timeout=10.0, what="the condition", interval=0.02, most=0.25):
    """Call ``cond()`` until it returns something true; return that.

    The pause between calls starts at ``interval`` and grows to ``most``: a
    quick event is seen at once, a slow one is not polled at a high rate
    (each poll may be a request to a hub or a whole process).
    Fails with ``what`` (and the last value) once ``timeout`` seconds pass."""
    end = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        left = end - time.monotonic()
        if left <= 0:
            raise Timeout("timed out after %.1f s waiting for %s (last: %r)" % (timeout, what, value))
        time.sleep(min(interval, left))
        interval = min(interval * 1.5, max(most, interval))


def arrived(hub, sites, timeout=30.0, count=None):
    """Wait until bots report themselves at every one of ``sites`` and the hub's
    checks on them pass (ready to arm); with ``count``, that many deployed."""
    def there():
        bots = hub.bots()
        at = {b["site"] for b in bots if b["state"] in ("DEPLOYED", "ACTIVE")}
        if count is not None and sum(b["state"] == "DEPLOYED" for b in bots) < count:
            return False
        return set(sites) <= at and not {"BOTS", "DEPLOYED"} & set(hub.status()["failing_checks"])
    wait_for(there, timeout, "bots at sites %s" % sorted(sites), interval=0.1)
