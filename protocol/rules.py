"""The rules a client needs besides the frame and message tables.

``docs/protocol.md`` is generated (``nanohub.protocol.gen``); this module is
its prose input: every rule a client written from the document alone must
follow, with the numbers taken from the schema, never retyped. Each rule has a
key, so tests can check that the document states it.
"""
from nanohub.protocol import facts, schema

HOST_VERSION = 1            # HELLO.host_version this protocol revision sends


def rules():
    s = schema
    return (
        ("session", "Session", [
            "Open with `HELLO {schema: fingerprint, host_version: %d}`; the hub answers "
            "`HELLO_REPLY` (resend HELLO every 0.5 s until it does). A mismatched fingerprint "
            "is answered with `result = HELLO_SCHEMA`: stop there." % HOST_VERSION,
            "HELLO starts a session (so does a new connection on a socket link): the hub "
            "forgets the previous session's request-id mark.",
            "`HELLO_REPLY` tells what signing needs: `counter` (the hub's high-water mark), "
            "`t` (hub time, ms modulo %d) and `fresh_ms`." % s.HUB_TIME_MOD,
            "Telemetry (HUB_STATUS, BOT_STATES, SITE_READINGS, ALARM) goes only to a host that "
            "said HELLO; ACKs and ESTOP_REPORT go to any sender.",
        ]),
        ("request-ids", "Request ids, ACKs and exactly-once", [
            "A command's `seq` is its request id. Within a session ids rise (16-bit serial "
            "order: an id is newer when (id - last) mod 65536 is 1..32767).",
            "Every command gets exactly one ACK echoing `req` = its id and `cmd` = its message "
            "id. Replies to reads (PARAM_VALUE, LOG_CHUNK, telemetry asked by REQUEST) carry "
            "the read's id as their own `seq` and the `F_REPLY` flag; a refused read is "
            "answered by an ACK.",
            "Retry a command by resending the identical bytes: while its answer is among the "
            "last %d (the hub's ACK cache, keyed by id and frame CRC) the cached ACK comes "
            "back and nothing runs again." % s.ACK_CACHE,
            "An unsigned command whose id is at or below the session's mark is never run: "
            "ACK `DUPLICATE` (detail: the mark). Signed commands are exactly-once by their "
            "counter. ESTOP always runs (stopping twice is harmless).",
        ]),
        ("signing", "Signing", [
            "Commands marked **auth** carry `F_AUTH` and the auth block "
            "`counter:u32 expires:u32 tag:%dB` between payload and CRC." % s.TAG_SIZE,
            "`tag` = HMAC-SHA256(key, header + payload + counter + expires), first %d bytes."
            % s.TAG_SIZE,
            "`counter` must be above the hub's mark and at most %d above it "
            "(`AUTH_REPLAY`, `AUTH_JUMP`); the hub persists the mark before it runs the "
            "command. Sign with max(own last counter, HELLO_REPLY.counter) + 1." % s.COUNTER_JUMP_MAX,
            "`expires` is hub time (ms modulo %d) by which the frame must arrive: estimate "
            "the hub's time from the last `t` heard (HELLO_REPLY, HUB_STATUS) plus the time "
            "since, and add at most `fresh_ms` (parameter, default %d). A frame arriving "
            "later, or expiring further ahead, is refused `STALE`: sign it anew "
            "(new counter, new expiry)." % (s.HUB_TIME_MOD, facts.param_default("fresh_ms")),
            "The tag is checked before the expiry and the counter: a forged or stale frame "
            "never moves the counter.",
            "`ALARM_ACK` of a HIGH alarm and `TELEM_RATE` below %d Hz need the same auth "
            "block (otherwise ACK `AUTH_MISSING`); sign them whenever you hold the key."
            % s.TELEM_FLOOR_HZ,
        ]),
        ("heartbeat", "Heartbeat and the operator-gone rule", [
            "Send HEARTBEAT at 4 Hz. Only a signed one keeps a treatment running: auth block "
            "with `counter` = the hub's mark (not checked, not used up) and an `expires` later "
            "than the previous heartbeat's. Unsigned heartbeats keep the link, not the "
            "energy: without a signed heartbeat or signed command for `hb_pause_ms` "
            "(default %d) a treatment pauses." % facts.param_default("hb_pause_ms"),
        ]),
        ("estop", "Emergency stop", [
            "ESTOP needs no key and no handshake: send it first, as `0x00` + COBS(frame) + "
            "`0x00`, unsigned, and resend the identical bytes every 0.1 s until an "
            "ESTOP_REPORT with `done = 1` arrives after its ACK (every 0.5 s once the ACK is "
            "in). Each resend is answered with the cached ACK, and once confirmation is "
            "done with the final report again.",
            "The hub searches every read for ESTOP frames before parsing anything, so a stop "
            "behind a flood acts when its bytes are read. It parses up to 4 KB per poll; a "
            "link still backlogged after 100 ms is flooded, and then the hub parses nothing "
            "else until a poll finds it empty: heartbeats and commands sent into a flood are "
            "dropped and counted (`EV_RX_DRAIN`).",
        ]),
        ("key-rotate", "Key rotation", [
            "KEY_ROTATE's 32-byte payload is the new key XOR HMAC-SHA256(old key, counter as "
            "u32 little-endian), where counter is the KEY_ROTATE frame's own auth counter: the "
            "new key never crosses the link in the clear.",
            "After `DONE` the hub's counter restarts at 0: sign the next command with "
            "counter 1 and the new key. If the ACK is lost, ask `REQUEST INFO`: counter 0 "
            "means the rotation happened.",
        ]),
        ("log", "Audit log transfer", [
            "`LOG_READ {start, max}` answers one LOG_CHUNK: `start` = index of its first "
            "record, `first` = oldest index still stored, `next` = the index the next "
            "record will get (the newest is next - 1). Resume with start + count until it "
            "reaches next; a start below first returns from first (records before it were "
            "rotated away, and an `EV_LOG_DROP` record says which).",
            "Patient ids are recorded as keyed pseudonyms (`EV_CONSENT`): whoever holds the "
            "key can check an id against one.",
        ]),
        ("keys", "Key file", [
            "A hub key is 32 random bytes. Host key store: `$NANOHUB_HOME/keys/<hub id as 8 hex "
            "digits>.key` (32 raw bytes, or 64 hex digits, mode 0600) and `.counter` (last "
            "counter used, decimal). On the hub: `hub.key` in its storage, written at flash "
            "time, never readable over the protocol.",
        ]),
    )
