"""Wiring as data: which UART carries the bot bus, the status LED, the store.

One dict per board module; a board variant changes numbers here, not code.
``bus_uart`` None: no bot bus wired (the bots then read as LOST, the hub stays
SAFE). ``bus_tx``/``bus_rx`` are GPIO numbers where the port lets pins be
chosen (rp2); None keeps the UART's fixed pins (stm32: USART2 = PA2/PA3).
``led`` is a ``machine.Pin`` name (None: no LED). ``store`` is the absolute
directory of the hub's files on the board filesystem (``nanohub flash``
writes ``hub.key`` there, so keep ``host/flash.py``'s table in step: a test
checks). ``wdt_ms``: watchdog timeout, started at the first feed.
"""

RP2 = {
    "bus_uart": 0,
    "bus_tx": 0,          # GP0 (Pico pin 1)
    "bus_rx": 1,          # GP1 (Pico pin 2)
    "bus_baud": 460800,
    "bus_rxbuf": 2048,
    "bus_txbuf": 1024,    # IRQ-driven: a bus write never waits for the wire
    "led": "LED",         # Pico and Pico W on-board LED
    "wdt_ms": 2000,
    "store": "/nanohub",
}

STM32 = {
    "bus_uart": 2,        # USART2: PA2 TX, PA3 RX (STM32F4DISC, Nucleo-F4, pyboard X3/X4)
    "bus_tx": None,
    "bus_rx": None,
    "bus_baud": 460800,
    "bus_rxbuf": 2048,
    "bus_txbuf": None,    # not supported by the stm32 port's UART
    "led": "LED_GREEN",
    "wdt_ms": 2000,
    "store": "/flash/nanohub",
}
