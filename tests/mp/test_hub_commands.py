# heap: 512k
"""Commands end to end (DESIGN 3, 6): exactly one ACK each, exactly-once
execution, authorization of everything that can start or increase energy, and
the audit trail of commands accepted and refused."""
import struct

from mptest import eq, true

from hub import frame, hmac, wire
from hub import params as P
from hub.compat import crc32
from hub.loops import cobs_encode
from hubkit import KEY, OTHER_KEY, Rig, accepted, plan_payload, refused

SITE = 10


def _in_mouth(rig):
    sw = rig.hub.swarm
    return len([i for i in range(sw.n) if sw.in_mouth(i)])


# ------------------------------------------------------------ exactly once --

def test_every_command_gets_exactly_one_ack_echoing_its_request_id():
    rig = Rig()
    reqs = [rig.send(wire.M_HOLD, b"\xff"), rig.send(wire.M_TREAT_PAUSE),
            rig.send(wire.M_ALARM_ACK, b"\x00")]
    rig.poll()
    eq([a[0] for a in rig.ack_log], reqs)
    eq([a[1] for a in rig.ack_log], [wire.M_HOLD, wire.M_TREAT_PAUSE, wire.M_ALARM_ACK])


def _deployed_once(count):
    """A rig that took one DEPLOY of ``count`` bots: (the rig, its request id,
    the frame, to send again)."""
    rig = Rig()
    rig.run(200)
    req, data = rig.frame(wire.M_DEPLOY, struct.pack(wire.DEPLOY_FMT, SITE, count))
    rig.send_raw(data)
    rig.poll()
    return rig, req, data


def test_a_resent_identical_command_gets_the_cached_ack_and_runs_once():
    rig, req, data = _deployed_once(2)
    first = rig.acks[req]
    eq(first, (wire.ACKS_DONE, wire.WHY_NONE, 2))
    log_at = rig.log_next()
    rig.send_raw(data)                    # the host retries: the ACK was lost
    rig.poll()
    rig.send_raw(data)
    rig.run(200)
    eq(rig.ack_count(req), 3)
    eq([a[2:] for a in rig.ack_log if a[0] == req], [first] * 3)
    eq(_in_mouth(rig), 2, "bots deployed once, not three times")
    eq(rig.events(wire.EV_CMD, log_at), [], "the retries are not executed again")


def test_a_resent_signed_command_is_not_refused_as_a_replay():
    rig = Rig()
    rig.lesion(SITE, 300)
    rig.ready(((SITE, 4),))
    req, data = rig.frame(wire.M_ARM)
    rig.send_raw(data)
    rig.poll()
    rig.send_raw(data)
    rig.poll()
    eq([a[2:] for a in rig.ack_log if a[0] == req], [(wire.ACKS_DONE, wire.WHY_NONE, wire.HUB_ARMED)] * 2)
    eq(rig.events(wire.EV_REJECT), [])
    true(not rig.alarm_active(wire.ALARM_UNAUTHORIZED))


def test_a_retried_treatment_start_does_not_restart_the_dose_count():
    rig = Rig()
    rig.armed(((SITE, 4),))
    req, data = rig.frame(wire.M_TREAT_START, _plan())
    rig.send_raw(data)
    rig.run(1000)
    dose = rig.hub.plan.dose[0]
    true(dose > 0)
    rig.send_raw(data)
    rig.run(20)
    eq(rig.ack_count(req), 2)
    true(rig.hub.plan.dose[0] >= dose, "the site's dose count was not reset by the retry")
    eq(len(rig.events(wire.EV_TREAT)), 1)


def test_the_same_request_id_with_different_bytes_is_refused_as_a_duplicate():
    # request ids of one session rise: a reused id is answered, never run
    rig = Rig()
    rig.run(200)
    accepted(rig.deploy(SITE, 2, req=77))
    ack = rig.deploy(SITE + 1, 3, req=77)
    eq(ack[:2], (wire.ACKS_REJECTED, wire.WHY_DUPLICATE))
    eq(rig.ack_count(77), 2)
    eq(_in_mouth(rig), 2)


def test_the_ack_cache_survives_other_commands_in_between():
    rig, req, data = _deployed_once(1)
    for _ in range(10):
        rig.cmd(wire.M_HOLD, b"\xff")
    rig.send_raw(data)
    rig.poll()
    eq(rig.ack_count(req), 2)
    eq(_in_mouth(rig), 1)


def test_a_refused_command_resent_gets_the_same_refusal():
    rig = Rig()
    req, data = rig.frame(wire.M_ARM)
    rig.send_raw(data)
    rig.poll()
    rig.send_raw(data)
    rig.poll()
    acks = [a[2:] for a in rig.ack_log if a[0] == req]
    eq(len(acks), 2)
    eq(acks[0], acks[1])
    eq(acks[0][1], wire.WHY_CHECKS)


# ---------------------------------------------------------- authorization --

def test_an_unsigned_energy_command_is_refused_logged_and_alarmed():
    rig = Rig()
    rig.lesion(SITE, 300)
    rig.ready(((SITE, 4),))
    for msg in (wire.M_ARM, wire.M_TREAT_START, wire.M_TREAT_RESUME, wire.M_DOSE_SCALE,
                wire.M_CONSENT, wire.M_PARAM_SET, wire.M_KEY_ROTATE, wire.M_ESTOP_RESET):
        size = wire.MSGS[msg][1]
        payload = _plan() if msg == wire.M_TREAT_START else bytes(size)
        ack = rig.cmd(msg, payload, sign=False)
        refused(ack, wire.WHY_AUTH_MISSING)
        rej = rig.events(wire.EV_REJECT)[-1]
        eq((rej[3], rej[4], rej[5]), (msg, rig.req, wire.WHY_AUTH_MISSING))
    eq(rig.state(), wire.HUB_SAFE)
    true(rig.alarm_active(wire.ALARM_UNAUTHORIZED))
    rig.run(20)
    frames = rig.alarm_frames(wire.ALARM_UNAUTHORIZED)
    eq([(f["prio"], f["state"]) for f in frames], [(wire.PRIO_MEDIUM, wire.ALST_RAISED)])


def test_a_bad_tag_is_refused():
    rig = Rig()
    rig.run(100)
    refused(rig.consent(tag=bytes(8)), wire.WHY_AUTH_BAD)
    refused(rig.consent(key=OTHER_KEY), wire.WHY_AUTH_BAD)
    eq(rig.hub.state_store.consent, None)
    accepted(rig.consent())


def test_a_tampered_payload_fails_the_tag():
    rig = Rig()
    req, sent = rig.frame(wire.M_CONSENT, struct.pack("<I", 1))
    rx = frame.Rx()                       # the frame as built (a Tx encodes over it)
    rx.feed(sent, 0, len(sent))
    true(rx.ready and not rx.err)
    forged = bytearray(rx.buf)            # change the patient, fix the CRC, keep the tag
    n = wire.HEADER_SIZE + wire.CONSENT_SIZE + wire.AUTH_SIZE
    forged[wire.HEADER_SIZE] ^= 0x01
    struct.pack_into("<I", forged, n, crc32(bytes(forged[:n])))
    out = bytearray(wire.MAX_WIRE)
    k = cobs_encode(forged, n + wire.CRC_SIZE, out)
    rig.send_raw(bytes(out[:k]))
    rig.poll()
    refused(rig.acks[req], wire.WHY_AUTH_BAD)


def test_a_replayed_counter_is_refused():
    rig = Rig()
    accepted(rig.consent(counter=10))
    refused(rig.consent(counter=10), wire.WHY_AUTH_REPLAY)
    accepted(rig.consent(counter=11))


def test_a_stale_counter_is_refused():
    rig = Rig()
    accepted(rig.consent(counter=50))
    refused(rig.consent(counter=49), wire.WHY_AUTH_REPLAY)
    refused(rig.consent(counter=1), wire.WHY_AUTH_REPLAY)
    eq(rig.hub.state_store.counter, 50)


def test_a_captured_frame_replayed_after_the_ack_cache_moved_on_is_refused():
    rig = Rig()
    req, data = rig.frame(wire.M_CONSENT, struct.pack("<I", 99))
    rig.send_raw(data)
    rig.poll()
    accepted(rig.acks[req])
    for _ in range(20):                   # more than the ACK cache holds
        rig.cmd(wire.M_HOLD, b"\xff")
    rig.send_raw(data)
    rig.poll()
    refused(rig.acks[req], wire.WHY_AUTH_REPLAY)


def test_a_bad_tag_does_not_burn_the_counter():
    rig = Rig()
    refused(rig.consent(counter=1000, key=OTHER_KEY), wire.WHY_AUTH_BAD)
    accepted(rig.consent(counter=5))


def test_the_counter_high_water_holds_across_a_reboot():
    rig = Rig()
    accepted(rig.consent(counter=100))
    rig.reboot()
    eq(rig.last[wire.M_HELLO_REPLY]["counter"], 100)
    refused(rig.consent(counter=100), wire.WHY_AUTH_REPLAY)
    refused(rig.consent(counter=60), wire.WHY_AUTH_REPLAY)
    accepted(rig.consent(counter=101))


def test_a_hub_without_a_key_refuses_every_signed_command():
    rig = Rig(key=None)
    refused(rig.consent(), wire.WHY_NO_KEY)
    refused(rig.param_set(P.P_CHECK_TTL_MS, 6000), wire.WHY_NO_KEY)


def test_stop_direction_commands_need_no_key():
    rig = Rig()
    rig.treating(((SITE, 4),))
    rig.run(300)
    accepted(rig.cmd(wire.M_DOSE_SCALE, b"\x32"))         # signed: scaling is energy
    accepted(rig.pause(sign=False))
    accepted(rig.cmd(wire.M_HOLD, b"\xff", sign=False))
    accepted(rig.stop(sign=False))
    eq(rig.state(), wire.HUB_SAFE)
    accepted(rig.cmd(wire.M_RECALL, b"\xff", sign=False))
    accepted(rig.alarm_ack(sign=False))
    eq(rig.estop(sign=False)[0], wire.ACKS_ACCEPTED)
    eq(rig.events(wire.EV_REJECT), [])


def test_stop_direction_commands_work_on_a_hub_with_no_key():
    rig = Rig(key=None)
    rig.run(200)
    accepted(rig.deploy(SITE, 3))
    rig.run(1500)
    accepted(rig.cmd(wire.M_HOLD, b"\xff"))
    accepted(rig.cmd(wire.M_RECALL, b"\xff"))
    rig.run(1500)
    for i in range(3):
        eq(rig.sw.state[i], wire.BOT_DOCKED)


def test_reads_need_no_key():
    rig = Rig(key=None)
    rig.request(wire.REQ_STATUS)
    eq(rig.last[wire.M_HUB_STATUS]["state"], wire.HUB_SAFE)
    rig.send(wire.M_PARAM_GET, bytes([P.P_LEASE_MS]))
    rig.poll()
    eq(rig.last[wire.M_PARAM_VALUE]["value"], 2000)


def test_a_signed_stop_direction_command_is_accepted_too():
    rig = Rig()
    rig.treating(((SITE, 4),))
    accepted(rig.pause(sign=True))


def test_key_rotation_needs_the_old_key_and_then_only_the_new_one_works():
    rig = Rig()
    new = bytes(range(7, 39))
    counter = rig.counter + 1
    pad = hmac.hmac_sha256(KEY, struct.pack("<I", counter))
    wrapped = bytes(new[i] ^ pad[i] for i in range(32))
    accepted(rig.cmd(wire.M_KEY_ROTATE, wrapped, counter=counter))
    refused(rig.consent(), wire.WHY_AUTH_BAD)
    rig.key = new
    accepted(rig.consent())
    eq(rig.events(wire.EV_KEY)[-1][3], 1)


# ------------------------------------------------------------- parameters --

def test_param_set_is_bounded_authorized_and_refused_while_treating():
    rig = Rig()
    refused(rig.param_set(P.P_LEASE_MS, 99999), wire.WHY_BOUNDS, 5000)
    refused(rig.param_set(P.P_LEASE_MS, 1000, sign=False), wire.WHY_AUTH_MISSING)
    refused(rig.param_set(200, 1), wire.WHY_BAD_ARG)
    accepted(rig.param_set(P.P_LEASE_MS, 1000))
    eq(rig.hub.params.get(P.P_LEASE_MS), 1000)
    ev = rig.events(wire.EV_PARAM)[-1]
    eq((ev[3], ev[5]), (P.P_LEASE_MS, 1000))
    rig.treating(((SITE, 4),))
    refused(rig.param_set(P.P_LEASE_MS, 1500), wire.WHY_STATE, wire.HUB_TREATING)
    rig.reboot()
    eq(rig.hub.params.get(P.P_LEASE_MS), 1000)


# ------------------------------------------------------------ audit trail --

def test_the_audit_log_records_accepted_and_rejected_commands_with_reasons():
    rig = Rig()
    rig.lesion(SITE, 300)
    rig.ready(((SITE, 4),))
    at = rig.log_next()
    refused(rig.arm(sign=False), wire.WHY_AUTH_MISSING)
    bad = rig.req
    accepted(rig.arm())
    good = rig.req
    rej = rig.events(wire.EV_REJECT, at)
    eq([(r[3], r[4], r[5]) for r in rej], [(wire.M_ARM, bad, wire.WHY_AUTH_MISSING)])
    cmd = rig.events(wire.EV_CMD, at)
    eq([(r[3], r[4], r[5]) for r in cmd], [(wire.M_ARM, good, wire.HUB_ARMED)])
    st = rig.events(wire.EV_STATE, at)
    eq([(r[3], r[4]) for r in st], [(wire.HUB_ARMED, wire.HUB_SAFE)])
    al = [r for r in rig.events(wire.EV_ALARM, at) if r[3] == wire.ALARM_UNAUTHORIZED]
    eq(len(al), 1)
    accepted(rig.alarm_ack(wire.ALARM_UNAUTHORIZED))
    eq(rig.events(wire.EV_ALARM_ACK, at)[-1][3], wire.ALARM_UNAUTHORIZED)
    eq(rig.events(wire.EV_CONSENT)[-1][5], rig.hub.state_store.pseudonym(4242))
    ok, first_bad = rig.hub.log.verify()
    true(ok, "log verifies (%d)" % first_bad)


def test_refused_state_commands_are_logged_with_their_reason():
    rig = Rig()
    at = rig.log_next()
    refused(rig.pause(), wire.WHY_STATE)
    rej = rig.events(wire.EV_REJECT, at)
    eq([(r[3], r[5]) for r in rej], [(wire.M_TREAT_PAUSE, wire.WHY_STATE)])


def test_malformed_frames_are_dropped_counted_and_logged():
    rig = Rig()
    req, data = rig.frame(wire.M_HOLD, b"\xff")
    broken = bytearray(data)
    broken[3] ^= 0x55                    # CRC no longer matches
    rig.send_raw(b"\x01\x02\x03\x00")    # too short
    rig.send_raw(bytes(broken))
    rig.poll()
    eq(rig.acks.get(req), None, "nothing acted on")
    rig.run(1100)
    classes = sorted(r[3] for r in rig.events(wire.EV_RX_BAD))
    true(wire.ERR_CRC in classes or wire.ERR_COBS in classes, "bad frame classes logged: %r" % classes)
    true(rig.statuses[-1]["rx_bad"] >= 2)
    accepted(rig.cmd(wire.M_HOLD, b"\xff"))  # and the link still works


def _plan():
    return plan_payload(((SITE, 100, 4),))
