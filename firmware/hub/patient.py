"""The patient monitor, read through the swarm gateway (``PATIENT`` frames).

``safety`` turns the sensitivity index into ``factor`` (percent of the
planned rate) and sets ``adverse`` at the pause limit; an acknowledged
SENS_PAUSE alarm clears it.
"""


class Patient:
    def __init__(self):
        self.sens = 0               # sensitivity index, permille
        self.at = 0                 # when it was read
        self.heard = False          # read at least once since boot
        self.events = 0             # adverse events the monitor counted
        self.adverse = False        # an adverse reaction: blocks arming until acknowledged
        self.factor = 100           # percent of the planned rate the index allows

    def take(self, b, now):
        """A PATIENT frame in ``b`` (payload at offset 5)."""
        self.sens = b[5] | (b[6] << 8)
        self.events = b[7]
        self.at = now
        self.heard = True
