"""HMAC-SHA256 on the MicroPython VM: RFC 4231 known answers, tags, compare."""
from binascii import hexlify

from mptest import eq, true

from hub import hmac

LONG_KEY = b"\xaa" * 131
# RFC 4231 test cases 1-7 (case 5 is truncated to 128 bits in the RFC)
RFC4231 = (
    (b"\x0b" * 20, b"Hi There",
     "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (b"Jefe", b"what do ya want for nothing?",
     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    (b"\xaa" * 20, b"\xdd" * 50,
     "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
    (bytes(range(1, 26)), b"\xcd" * 50,
     "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
    (b"\x0c" * 20, b"Test With Truncation", "a3b6167473100ee06e0c796c2955552b"),
    (LONG_KEY, b"Test Using Larger Than Block-Size Key - Hash Key First",
     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
    (LONG_KEY, b"This is a test using a larger than block-size key and a larger "
     b"than block-size data. The key needs to be hashed before being used by "
     b"the HMAC algorithm.",
     "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
)


def hx(b):
    return hexlify(b).decode()


def test_rfc4231_vectors_match():
    for i, (key, msg, want) in enumerate(RFC4231):
        got = hx(hmac.hmac_sha256(key, msg))[:len(want)]
        eq(got, want, "RFC 4231 case %d" % (i + 1))


def test_tag_is_the_truncated_mac():
    key, msg, want = RFC4231[1]
    eq(hx(hmac.tag(key, msg)), want[:16])
    eq(hx(hmac.tag(key, msg, 16)), want[:32])
    eq(len(hmac.tag(key, msg)), 8)


def test_buffers_of_any_kind_are_accepted():
    key, msg, want = RFC4231[0]
    eq(hx(hmac.hmac_sha256(bytearray(key), memoryview(bytearray(msg)))), want)


def test_only_keys_longer_than_a_block_are_hashed():
    from hashlib import sha256
    k64, k65 = bytes(range(64)), bytes(range(65))
    eq(hmac.hmac_sha256(k65, b"m"), hmac.hmac_sha256(sha256(k65).digest(), b"m"))
    true(hmac.hmac_sha256(k64, b"m") != hmac.hmac_sha256(sha256(k64).digest(), b"m"))
    # a short key is zero-padded to a block
    eq(hmac.hmac_sha256(k64[:20], b"m"), hmac.hmac_sha256(k64[:20] + bytes(10), b"m"))


def test_equal_compares_contents_and_length():
    a = bytes(range(8))
    true(hmac.equal(a, bytes(range(8))))
    true(hmac.equal(a, bytearray(a)))
    for i in range(8):
        b = bytearray(a)
        b[i] ^= 0x01
        true(not hmac.equal(a, b), "differs at %d" % i)
    true(not hmac.equal(a, a[:7]))
    true(hmac.equal(b"", b""))
