"""Bot-bus health: frame loss from the gateway's sequence numbers.

Loss is counted from gaps in the sequence plus frames dropped as bad; late
(reordered) frames are credited back, duplicates ignored. ``safety`` turns
the counts into ``link`` and ``loss_now`` once per window.
"""


class BusHealth:
    def __init__(self):
        self.seq = -1               # last sequence number taken, -1 none
        self.ok = 0                 # good frames in this window
        self.lost = 0
        self.bad = 0                # bad frames since the last good one (a gap may explain them)
        self.window = 0             # when the window started
        self.link = 100             # percent of frames received, last window
        self.loss_now = 0           # percent lost, last window (0 under 5 frames)
        self.held = -1              # unread bus data waits since this poll, or -1

    def frame(self, seq):
        """Count a good frame: 0 new, 1 late (older than one taken), -1 a duplicate."""
        last = self.seq
        late = 0
        if last >= 0:
            if seq == last:
                return -1                       # already acted on
            gap = (seq - last - 1) & 0xFFFF
            if gap < 1000:
                # a corrupted frame is also a gap in the sequence: count it once
                self.lost += gap if gap > self.bad else self.bad
                self.bad = 0
                self.seq = seq
            else:
                late = 1
                if self.lost:
                    self.lost -= 1              # a late frame, counted lost before
        else:
            self.seq = seq
        self.ok += 1
        return late

    def hello(self, bots):
        """The gateway (re)started (announcing ``bots``): its sequence starts anew."""
        self.seq = -1
