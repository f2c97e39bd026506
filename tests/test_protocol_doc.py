"""A client written from docs/protocol.md alone (issue 14).

Everything this client knows comes from the document: message ids and field
tables, enumerations, the frame layout and the rules (signing, expiry, key
rotation). Its COBS, CRC and HMAC are its own (stdlib only, no project codec).
It runs against the real firmware on the MicroPython VM: handshake, a signed
command, a key rotation as the document describes it, and a command signed
under the new key.
"""
import hashlib
import hmac
import re
import socket
import struct
import time
import zlib
from pathlib import Path

import pytest

from nanohub.host.emulate.hub import EmulatedHub

DOC = (Path(__file__).resolve().parent.parent / "docs" / "protocol.md").read_text()


class Doc:
    """What the document says: messages (id, struct format, field names), enums, rules."""

    def __init__(self, text):
        self.msgs = {}
        cur = None
        for line in text.splitlines():
            m = re.match(r"#### `0x([0-9a-f]{2})` (\w+)", line)
            if m:
                cur = self.msgs[m.group(2)] = {"id": int(m.group(1), 16), "fields": []}
                continue
            if line.startswith("Followed by") or line.startswith("## "):
                cur = None if line.startswith("## ") else cur
                if cur is not None:
                    cur["tail"] = True
                continue
            m = re.match(r"\| (\d+) \| `(\w+)` \| `(\w+)` \| (\d+) \|", line)
            if m and cur is not None and not cur.get("tail"):
                cur["fields"].append((m.group(2), m.group(3)))
        self.enums = {n: int(v) for n, v in re.findall(r"\| `(\w+)` \| (\d+) \|", text)}
        self.version = int(re.search(r"Protocol version (\d+)", text).group(1))
        self.fingerprint = int(re.search(r"schema fingerprint `0x([0-9a-f]+)`", text).group(1), 16)
        self.host_version = int(re.search(r"host_version: (\d+)", text).group(1))

    def fmt(self, name):
        return "<" + "".join(t for _, t in self.msgs[name]["fields"])

    def pack(self, name, **fields):
        return struct.pack(self.fmt(name), *(fields[n] for n, _ in self.msgs[name]["fields"]))

    def unpack(self, name, payload):
        names = [n for n, _ in self.msgs[name]["fields"]]
        size = struct.calcsize(self.fmt(name))
        return dict(zip(names, struct.unpack(self.fmt(name), payload[:size])))


def cobs(data):
    out, block = bytearray(), bytearray()
    for b in data:
        if b == 0:
            out += bytes((len(block) + 1,)) + block
            block = bytearray()
        else:
            block.append(b)
            if len(block) == 254:
                out += b"\xff" + block
                block = bytearray()
    return bytes(out + bytes((len(block) + 1,)) + block)


def uncobs(data):
    out, i = bytearray(), 0
    while i < len(data):
        code = data[i]
        out += data[i + 1:i + code]
        i += code
        if code < 0xFF and i < len(data):
            out.append(0)
    return bytes(out)


class Client:
    def __init__(self, doc, port):
        self.doc, self.seq = doc, 100
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buf = b""

    def send(self, name, payload, key=None, counter=0, expires=0):
        self.seq += 1
        d = self.doc
        flags = 1 if key else 0                      # F_AUTH
        body = struct.pack("<BHBB", (d.version << 4) | flags, self.seq, d.msgs[name]["id"], 0)
        body += payload
        if key:
            body += struct.pack("<II", counter, expires)
            body += hmac.new(key, body, hashlib.sha256).digest()[:8]
        body += struct.pack("<I", zlib.crc32(body))
        self.sock.sendall(b"\0" + cobs(body) + b"\0")
        return self.seq

    def frames(self, until):
        end = time.monotonic() + until
        while time.monotonic() < end:
            while b"\0" in self.buf:
                chunk, self.buf = self.buf.split(b"\0", 1)
                raw = uncobs(chunk) if chunk else b""
                if len(raw) >= 9 and zlib.crc32(raw[:-4]) == struct.unpack("<I", raw[-4:])[0]:
                    yield raw
            self.sock.settimeout(max(0.01, end - time.monotonic()))
            try:
                self.buf += self.sock.recv(4096)
            except socket.timeout:
                return

    def wait(self, name, seq_field=None, seq=None, until=3.0):
        want = self.doc.msgs[name]["id"]
        for raw in self.frames(until):
            if raw[3] == want:
                f = self.doc.unpack(name, raw[5:-4])
                if seq_field is None or f[seq_field] == seq:
                    return f
        raise AssertionError("no %s" % name)


@pytest.mark.vm
def test_a_client_built_from_the_document_alone_signs_rotates_the_key_and_signs_again(
        home):
    doc = Doc(DOC)
    with EmulatedHub(bots=4, gateway=False, seed=2) as emu:
        key = emu.key_path.read_bytes()
        c = Client(doc, emu.host_port)
        c.send("HELLO", doc.pack("HELLO", schema=doc.fingerprint, host_version=doc.host_version))
        hello = c.wait("HELLO_REPLY")
        t0, fresh = time.monotonic(), hello["fresh_ms"]
        mod = int(re.search(r"ms modulo (\d+)", DOC).group(1))

        def expires():                               # hub time as heard + time since + fresh
            return (hello["t"] + int((time.monotonic() - t0) * 1000) + fresh - 100) % mod

        done, accepted = doc.enums["ACKS_DONE"], doc.enums["ACKS_ACCEPTED"]
        counter = hello["counter"] + 1
        seq = c.send("CONSENT", doc.pack("CONSENT", patient=77), key, counter, expires())
        ack = c.wait("ACK", "req", seq)
        assert (ack["status"], ack["reason"]) == (done, 0), ack

        new = bytes(range(200, 232))
        counter += 1
        pad = hmac.new(key, struct.pack("<I", counter), hashlib.sha256).digest()
        wrapped = bytes(a ^ b for a, b in zip(new, pad))
        seq = c.send("KEY_ROTATE", wrapped, key, counter, expires())
        ack = c.wait("ACK", "req", seq)
        assert ack["status"] == done, ack

        seq = c.send("DOSE_SCALE", doc.pack("DOSE_SCALE", percent=80), new, 1, expires())
        ack = c.wait("ACK", "req", seq)
        assert ack["status"] in (done, accepted) and ack["reason"] == 0, ack
        seq = c.send("DOSE_SCALE", doc.pack("DOSE_SCALE", percent=70), key, 2, expires())
        ack = c.wait("ACK", "req", seq)
        assert ack["reason"] == doc.enums["WHY_AUTH_BAD"], "the old key no longer signs"


def test_the_document_states_every_rule_a_client_needs():
    from nanohub.protocol import rules, schema
    for key, _, _ in rules.rules():
        assert "<!-- rule: %s -->" % key in DOC
    for needle in ("ACK cache", "KEY_ROTATE's 32-byte payload", "`next` = the index",
                   "host_version: %d" % rules.HOST_VERSION, "%d raw bytes" % 32,
                   "at most %d above it" % schema.COUNTER_JUMP_MAX, "fresh_ms",
                   "last %d" % schema.ACK_CACHE, "below %d Hz" % schema.TELEM_FLOOR_HZ):
        assert needle in DOC, needle
