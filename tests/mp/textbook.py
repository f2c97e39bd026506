"""Textbook references the simulator's code is checked against, on the VM and
on CPython alike (importable by both)."""


def xorshift32(x):
    """One step of Marsaglia's 32-bit xorshift (shifts 13, 17, 5), kept to 32 bits."""
    x ^= (x << 13) & 0xFFFFFFFF
    x ^= x >> 17
    x ^= (x << 5) & 0xFFFFFFFF
    return x
