"""A treatment plan's structure, checked before the hub loads it.

The hub refuses (BAD_ARG) a TREAT_START whose records name a site outside the
mouth or one site twice, send fewer than ``wire.PLAN_BOTS_MIN`` bots to a site,
or whose site cap is above its session cap: the limits ``nanohub treat start
--check`` applies on the host (protocol/facts.py, docs/parameters.md). The
caller checks the site count and the caps against the parameters.
"""
import struct

from hub import wire


def bad(buf, off):
    """True if the TREAT_START payload at ``buf[off:]`` breaks a plan limit.
    The frame's length has been checked against its record count."""
    session_cap, site_cap, _, _, count = struct.unpack_from(wire.TREAT_START_FMT, buf, off)
    if site_cap > session_cap:
        return True
    first = off + wire.TREAT_START_SIZE
    size = wire.TREAT_START_REC_SIZE
    for k in range(count):
        rec = first + k * size
        site = buf[rec + wire.R_TREAT_START_SITE]
        if site >= wire.SITES or buf[rec + wire.R_TREAT_START_BOTS] < wire.PLAN_BOTS_MIN:
            return True
        for j in range(k):
            if buf[first + j * size + wire.R_TREAT_START_SITE] == site:
                return True
    return False
