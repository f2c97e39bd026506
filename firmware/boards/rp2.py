"""Raspberry Pi RP2040/RP2350 boards (Pico, Pico W, Pico 2) on the rp2 port.

Host link: the USB CDC console. Bot bus: UART0 on GP0/GP1. Watchdog:
machine.WDT (at most 8.3 s on the RP2040). LED: the on-board "LED" pin.
Store: /nanohub on the littlefs filesystem. The keys of ``WIRING`` are
described in ``boards/console.py``.
"""
from boards.console import McuBoard

STORE = "/nanohub"      # the hub's files (nanohub flash writes hub.key here)

WIRING = {
    "bus_uart": 0,
    "bus_tx": 0,          # GP0 (Pico pin 1)
    "bus_rx": 1,          # GP1 (Pico pin 2)
    "bus_txbuf": 1024,    # IRQ-driven: a bus write never waits for the wire
    "led": "LED",         # Pico and Pico W on-board LED
    "store": STORE,
}


class Board(McuBoard):
    name = "rp2"
    arch = "armv6m"          # mpy-cross -march: viper code runs native here
    wiring = WIRING
