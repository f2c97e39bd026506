# heap: 1m
"""Evidence that cannot be hidden (issue 14): refused signed-class attempts
are always individual records (the flood budget summarizes only keyless
junk); a rotation that drops records says so in the log; patient ids in the
log are keyed pseudonyms."""
import struct

from mptest import eq, true

from hub import hmac, wire
from hubkit import Rig, PATIENT_ID


def test_a_forged_arm_among_a_flood_of_junk_refusals_is_its_own_record():
    rig = Rig()
    for _ in range(30):                                   # over the per-second budget
        rig.cmd(wire.M_HOLD, b"\xff")
    req = rig.send(wire.M_ARM, tag=b"\x00" * wire.TAG_SIZE)
    rig.poll()
    eq(rig.acks[req][:2], (wire.ACKS_REJECTED, wire.WHY_AUTH_BAD))
    rig.run(1100)
    recs = [r for r in rig.events(wire.EV_REJECT) if r[3] == wire.M_ARM and r[4] == req]
    eq(len(recs), 1)
    eq(recs[0][5], wire.WHY_AUTH_BAD)
    true(rig.events(wire.EV_CMD_FLOOD), "the junk is summarized")


def test_every_refused_signed_class_attempt_is_recorded_however_many():
    rig = Rig()
    reqs = []
    for _ in range(40):
        reqs.append(rig.send(wire.M_TREAT_RESUME, sign=False))
        rig.poll()
    logged = set(r[4] for r in rig.events(wire.EV_REJECT) if r[3] == wire.M_TREAT_RESUME)
    eq(logged, set(reqs))


def test_a_rotation_that_drops_records_says_what_and_from_where():
    rig = Rig()
    log = rig.hub.log
    per = log.per_seg
    while log.first_index == 0:
        log.ack(log.next_index)                 # the host stored everything so far
        rig.hub.record(wire.EV_PARAM, 1, 0, 7)
    drops = rig.events(wire.EV_LOG_DROP)
    eq(len(drops), 1)
    eq((drops[0][4], drops[0][5]), (per, 0))
    eq(log.unwritten, 0)
    ok, bad = log.verify()
    true(ok, "the log still verifies")


def test_the_patient_id_is_recorded_as_a_keyed_pseudonym():
    rig = Rig()
    rig.consent(PATIENT_ID)
    rec = rig.events(wire.EV_CONSENT)[-1]
    true(rec[5] != PATIENT_ID, "not the id itself")
    d = hmac.hmac_sha256(rig.key, b"patient" + struct.pack("<I", PATIENT_ID))
    eq(rec[5], d[0] | (d[1] << 8) | (d[2] << 16) | ((d[3] & 0x7F) << 24))


# ------------------------------------------------------- small doors closed --

def test_an_unsigned_ack_cannot_clear_a_high_alarm():
    rig = Rig()
    rig.hub.alarms.raise_(wire.ALARM_RUNAWAY, rig.now)
    rig.hub.alarms.raise_(wire.ALARM_DOSE_CAP, rig.now)
    ack = rig.alarm_ack(wire.ALARM_RUNAWAY, sign=False)
    eq(ack[:2], (wire.ACKS_REJECTED, wire.WHY_AUTH_MISSING))
    eq(rig.alarm_ack(0, sign=False)[0], wire.ACKS_DONE)      # the LOW one goes
    true(rig.hub.alarms.unacked_high(), "the HIGH alarm still blocks arming")
    eq(rig.alarm_ack(wire.ALARM_RUNAWAY)[0], wire.ACKS_DONE)  # signed
    eq(rig.hub.alarms.unacked_high(), 0)


def test_an_unsigned_telemetry_rate_cannot_go_below_the_floor():
    rig = Rig()
    ack = rig.cmd(wire.M_TELEM_RATE, struct.pack(wire.TELEM_RATE_FMT, 5, 0, 0), sign=False)
    eq(ack[:2], (wire.ACKS_REJECTED, wire.WHY_AUTH_MISSING))
    eq(ack[2], wire.TELEM_FLOOR_HZ)
    eq(rig.cmd(wire.M_TELEM_RATE, struct.pack(wire.TELEM_RATE_FMT, 5, 1, 1),
               sign=False)[0], wire.ACKS_DONE)
    eq(rig.cmd(wire.M_TELEM_RATE, struct.pack(wire.TELEM_RATE_FMT, 5, 0, 0))[0],
       wire.ACKS_DONE)                                        # signed: the operator may


# ------------------------------------------------------ a keyed audit trail --

def _checkpoint_tag(key, index, prev_chain):
    d = hmac.hmac_sha256(key, b"log" + struct.pack("<I", index) + bytes(prev_chain))
    return (d[0] | (d[1] << 8) | (d[2] << 16) | ((d[3] & 0x7F) << 24)) or 1


def _chain_before(log, index):
    buf = bytearray(wire.LOG_SIZE)
    n, _, _ = log.read_into(index - 1, 1, buf)
    eq(n, 1)
    return bytes(buf[wire.LOG_CHAIN:])


def test_a_keyed_checkpoint_follows_every_few_records_and_verifies_under_the_key():
    rig = Rig()
    log = rig.hub.log
    start = log.next_index
    for i in range(3 * wire.LOG_CHECKPOINT_EVERY):
        rig.hub.record(wire.EV_PARAM, 1, 0, i)
    cps = rig.events(wire.EV_CHECKPOINT, start)
    true(len(cps) >= 3, "one checkpoint per LOG_CHECKPOINT_EVERY records: %d" % len(cps))
    for r in cps:
        eq(r[3], 1)                                         # written under a key
        eq(r[5], _checkpoint_tag(rig.key, r[0], _chain_before(log, r[0])))
    gaps = [b[0] - a[0] for a, b in zip(cps, cps[1:])]
    eq(set(gaps), {wire.LOG_CHECKPOINT_EVERY + 1})
    ok, bad = log.verify()
    true(ok, "the hub's own check still passes")


def test_a_hub_without_a_key_still_logs_and_its_checkpoints_say_they_carry_no_tag():
    rig = Rig(key=None)
    start = rig.hub.log.next_index
    for i in range(2 * wire.LOG_CHECKPOINT_EVERY):
        rig.hub.record(wire.EV_PARAM, 1, 0, i)
    cps = rig.events(wire.EV_CHECKPOINT, start)
    true(len(cps) >= 2, "checkpoints are written without a key too")
    eq(set((r[3], r[5]) for r in cps), {(0, 0)})
    eq(len(rig.events(wire.EV_PARAM, start)), 2 * wire.LOG_CHECKPOINT_EVERY)


def test_the_hub_status_carries_the_newest_index_and_the_chain_head():
    rig = Rig()
    rig.hub.record(wire.EV_PARAM, 1, 0, 5)
    rig.request(wire.REQ_STATUS)
    st = rig.last[wire.M_HUB_STATUS]
    log = rig.hub.log
    eq(st["log_next"], log.next_index)
    eq(bytes(st["log_head"]), _chain_before(log, log.next_index))


# ------------------------------------ no unpulled segment is rotated away --

def _small_log(rig):
    log = rig.hub.log
    log.per_seg = 16                            # fills in hundreds of records, not thousands
    return log


def _fill(rig, log):
    n = 0
    while not log.full() and n < 10000:
        rig.hub.record(wire.EV_PARAM, 1, 0, n)
        n += 1
    true(log.full(), "the log fills")


def test_records_no_host_acknowledged_are_never_rotated_away_and_what_is_not_written_is_counted():
    rig = Rig()
    log = _small_log(rig)
    _fill(rig, log)
    eq(log.first_index, 0)                      # the oldest record is still there
    eq(len(rig.events(wire.EV_LOG_DROP)), 0)
    nxt = log.next_index
    for i in range(5):
        rig.hub.record(wire.EV_PARAM, 2, 0, i)
    eq(log.next_index, nxt)                     # nothing overwritten, nothing written
    eq(log.unwritten, 5)
    true(rig.hub.alarms.active(wire.ALARM_LOG_FULL), "the operator is told")
    ok, bad = log.verify()
    true(ok, "the log verifies")


def test_an_unsigned_log_ack_cannot_let_evidence_be_rotated_away():
    rig = Rig()
    log = _small_log(rig)
    _fill(rig, log)
    req = rig.send(wire.M_LOG_ACK, struct.pack(wire.LOG_ACK_FMT, log.next_index), sign=False)
    rig.poll()
    eq(rig.acks[req][:2], (wire.ACKS_REJECTED, wire.WHY_AUTH_MISSING))
    eq(log.acked, 0)
    true(log.full(), "still full: nothing may be rotated away")
    req = rig.send(wire.M_LOG_ACK, struct.pack(wire.LOG_ACK_FMT, log.next_index),
                   tag=b"\x00" * wire.TAG_SIZE)
    rig.poll()
    eq(rig.acks[req][:2], (wire.ACKS_REJECTED, wire.WHY_AUTH_BAD))
    eq(log.first_index, 0)


def test_a_signed_log_ack_frees_the_log_and_the_hub_says_what_it_could_not_write():
    rig = Rig()
    log = _small_log(rig)
    _fill(rig, log)
    rig.hub.record(wire.EV_PARAM, 2, 0, 0)
    rig.hub.record(wire.EV_PARAM, 2, 0, 1)
    lost = log.unwritten
    true(lost >= 2, "counted: %d" % lost)
    upto = log.next_index
    ack = rig.cmd(wire.M_LOG_ACK, struct.pack(wire.LOG_ACK_FMT, upto))
    eq(ack[:2], (wire.ACKS_DONE, wire.WHY_NONE))
    eq(log.acked, upto)
    true(not log.full(), "room again")
    rig.hub.record(wire.EV_PARAM, 3, 0, 0)
    notes = rig.events(wire.EV_LOG_LOST)
    eq(len(notes), 1)
    true(notes[0][5] >= lost, "how many were not written: %d" % notes[0][5])
    true(rig.events(wire.EV_LOG_DROP), "the acknowledged segment went, and the log says so")
    true(log.first_index > 0 and log.first_index <= upto, "only acknowledged records went")
    ok, bad = log.verify()
    true(ok, "the log verifies")


def test_a_log_ack_beyond_the_newest_record_is_refused():
    rig = Rig()
    ack = rig.cmd(wire.M_LOG_ACK, struct.pack(wire.LOG_ACK_FMT, rig.hub.log.next_index + 5))
    eq(ack[:2], (wire.ACKS_REJECTED, wire.WHY_BAD_ARG))
    eq(rig.hub.log.acked, 0)


def test_the_acknowledged_mark_survives_a_reboot():
    rig = Rig()
    upto = rig.hub.log.next_index
    eq(rig.cmd(wire.M_LOG_ACK, struct.pack(wire.LOG_ACK_FMT, upto))[:2],
       (wire.ACKS_DONE, wire.WHY_NONE))
    rig.boot()
    eq(rig.hub.log.acked, upto)
