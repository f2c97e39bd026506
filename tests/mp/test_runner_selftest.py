# heap: 96k
"""Checks of the VM environment the firmware relies on, and of the runner itself.

The first line sets this module's heap (see tests/test_firmware_mp.py).
"""

import binascii
import gc
import struct

from mptest import SkipTest, eq, raises, true


def test_struct_pack_into_and_unpack_from():
    buf = bytearray(8)
    struct.pack_into("<HI", buf, 1, 0x1234, 0xDEADBEEF)
    eq(bytes(buf), b"\x00\x34\x12\xef\xbe\xad\xde\x00")
    eq(struct.unpack_from("<HI", buf, 1), (0x1234, 0xDEADBEEF))


def test_crc32_check_value():
    # The standard CRC-32 check value for b"123456789".
    eq(binascii.crc32(b"123456789"), 0xCBF43926)


def test_gc_reports_memory_and_heap_comment_applies():
    alloc, free = gc.mem_alloc(), gc.mem_free()
    true(alloc > 0, "gc.mem_alloc() should be positive")
    # "# heap: 96k" on line 1 must have reached -X heapsize (default is 256k).
    true(64 * 1024 < alloc + free <= 96 * 1024, "heap is %d bytes, expected ~96k" % (alloc + free))


def test_mptest_helpers():
    e = raises(AssertionError, eq, b"\x01\x02", b"\x01\x03")
    true("index 1" in str(e), str(e))
    raises(AssertionError, raises, ValueError, lambda: None)
    raises(AssertionError, true, 0)


def test_viper_emitter():
    # @micropython.viper is resolved by the compiler (hasattr(micropython,
    # "viper") is False even where it works), so probe by compiling some.
    ns = {}
    try:
        exec("import micropython\n@micropython.viper\ndef f(x: int) -> int:\n    return x << 1", ns)
    except (SyntaxError, ValueError, NameError, ImportError) as e:
        raise SkipTest("no viper emitter: %r" % (e,))
    eq(ns["f"](21), 42)
