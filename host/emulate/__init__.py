"""The emulated hub and the proxies that test a link with it.

- :mod:`.hub`: :class:`~nanohub.host.emulate.hub.EmulatedHub`, the firmware on
  the MicroPython VM with the simulated swarm (also ``nanohub.host.EmulatedHub``);
- :mod:`.faultproxy`: a TCP proxy that loses, corrupts, duplicates, reorders and
  delays the frames of a link, or cuts it;
- :mod:`.pace`: a TCP proxy that paces the link at a serial port's baud rate;
- :mod:`.operator`: the operator's side of a faulty link (reconnect, resend the
  same bytes, UNKNOWN when it cannot tell) and the exactly-once checks.

Both proxies are :class:`~nanohub.host.link.relay.Relay` subclasses.
"""
