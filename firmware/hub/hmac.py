"""HMAC-SHA256 (RFC 2104) from hashlib.sha256: MicroPython has no hmac module.

Checked against CPython's hmac (RFC 4231 vectors and random inputs) in
tests/test_auditlog_host.py and tests/mp/test_hmac.py.
"""
from hub.compat import const, sha256

_BLOCK = const(64)


def hmac_sha256(key, msg):
    """The 32-byte HMAC-SHA256 of msg under key (bytes-like)."""
    if len(key) > _BLOCK:
        key = sha256(key).digest()
    ipad = bytearray(_BLOCK)
    opad = bytearray(_BLOCK)
    for i in range(_BLOCK):
        k = key[i] if i < len(key) else 0
        ipad[i] = k ^ 0x36
        opad[i] = k ^ 0x5C
    inner = sha256(ipad)
    inner.update(msg)
    outer = sha256(opad)
    outer.update(inner.digest())
    return outer.digest()


def tag(key, msg, n=8):
    """HMAC-SHA256 truncated to its first n bytes (wire.TAG_SIZE on the wire)."""
    return hmac_sha256(key, msg)[:n]


def equal(a, b):
    """Compare in time that depends only on the length, not on where they differ."""
    if len(a) != len(b):
        return False
    acc = 0
    for i in range(len(a)):
        acc |= a[i] ^ b[i]
    return acc == 0
