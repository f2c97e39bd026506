"""Keeping a hub's audit log as a clinic does: pull it, verify it, acknowledge it.

The hub never rotates away a record no signed ``LOG_ACK`` acknowledged; when
its log is full of such records it writes nothing more, counts what it could
not write and latches the HIGH alarm ``LOG_FULL``. ``nanohub log pull`` ends
with that acknowledgement. A host that runs a hub for a long time (a study's
sessions, the soak) does the same here: it pulls the new records from where
its last pull ended, checks that they continue what it already holds (chain
and indexes), and acknowledges them with the hub key, so the hub may rotate
them away.

    keeper = LogKeeper(hub)               # hub: an open, keyed nanohub.host.client.Hub
    keeper.keep(status["log_next"])       # pulls and acknowledges when due
    raw = keeper.pull()                   # the rest, now
    keeper.raw                            # every record since the first pull, as bytes

Only records that were stored and verified are acknowledged: a pull that does
not verify acknowledges nothing, so the hub keeps holding them.
"""
import time

from nanohub.protocol import auditlog

from . import logs

# Unacknowledged records that make a pull due: well under the hub's hold of
# 9 segments of 256 records, so a busy hub is acknowledged long before full.
BACKLOG = 1024
EVERY_S = 120.0     # and at least this often while records come in


class LogKeeper:
    def __init__(self, hub, start=0, backlog=BACKLOG, every_s=EVERY_S, clock=time.monotonic):
        self.hub = hub
        self.next = start           # the index the next pull starts at
        self.head = None            # the chain of the record before it (None at 0)
        self.backlog, self.every_s, self.clock = backlog, every_s, clock
        self.last_pull = clock()
        self.acked = None           # acknowledged up to here (the hub accepted it)
        self.pulls = self.acks = 0
        self.not_acked = ""         # why the last pull was not acknowledged
        self.result = None          # the verification of everything held
        self._raw = []

    @property
    def raw(self):
        """Every record pulled so far, in order, as the hub's raw bytes."""
        return b"".join(self._raw)

    def due(self, log_next):
        """Whether a hub whose next record index is ``log_next`` should be pulled now."""
        if log_next is None or log_next <= self.next:
            return False
        return (log_next - self.next >= self.backlog
                or self.clock() - self.last_pull >= self.every_s)

    def keep(self, log_next):
        """Pull and acknowledge if due (see :meth:`due`); returns the new bytes or None."""
        if not self.due(log_next):
            return None
        return self.pull()

    def pull(self, ack=True):
        """The records from :attr:`next` to the hub's newest (bytes); with ``ack``
        they are acknowledged once they verify as the continuation of what is held.

        A pull that does not verify is kept out of :attr:`raw`, acknowledges
        nothing and leaves the finding in :attr:`result`. Link errors
        (NanohubError) propagate: a pull cut short starts again at the same
        index, and an acknowledgement lost on the way is covered by the next."""
        self.last_pull = self.clock()
        self.pulls += 1
        raw = self.hub.log_pull(self.next)
        recs = auditlog.parse_records(raw)
        if self._raw:       # must continue what is held, record for record
            res = auditlog.verify(recs, anchor=self.head, expect_start=self.next)
        else:               # the first pull starts at the oldest record the hub keeps
            res = auditlog.verify(recs)
        if not res.ok:
            self.result = res
            self.not_acked = "does not verify: %s" % res
            return raw
        if not recs:
            return raw
        self._raw.append(raw)
        self.next, self.head = res.last_index + 1, res.head
        self.result = res
        if ack:
            self.not_acked = self._ack()
        return raw

    def _ack(self):
        """``nanohub log pull``'s acknowledgement (:func:`nanohub.host.logs.ack`);
        without the key, or refused, the hub keeps holding the records. A link
        error propagates: the next pull acknowledges again."""
        upto, why = logs.ack(self.hub, logs.holder_key(self.hub), self.result)
        if upto is not None:
            self.acks += 1
            self.acked = upto
        return why
