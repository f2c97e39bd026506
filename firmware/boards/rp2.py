"""Raspberry Pi RP2040/RP2350 boards (Pico, Pico W, Pico 2) on the rp2 port.

Host link: the USB CDC console. Bot bus: UART0 on GP0/GP1. Watchdog:
machine.WDT (at most 8.3 s on the RP2040). LED: the on-board "LED" pin.
Store: /nanohub on the littlefs filesystem. Wiring: ``boards/pins.py``.
"""
from boards import pins
from boards.console import McuBoard


class Board(McuBoard):
    name = "rp2"
    arch = "armv6m"          # mpy-cross -march: viper code runs native here
    wiring = pins.RP2
