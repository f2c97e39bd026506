"""STM32 boards on the stm32 port (pyboard, STM32F4DISC, Nucleo-F4...).

Host link: the REPL console (USB VCP, or the board's REPL UART). Bot bus:
UART2 (USART2, PA2/PA3). Watchdog: machine.WDT (the IWDG). LED: LED_GREEN.
Store: /flash/nanohub (the internal flash FAT filesystem; the store's
atomic replace copes with FAT's rename). The keys of ``WIRING`` are
described in ``boards/console.py``.
"""
from boards.console import McuBoard

STORE = "/flash/nanohub"  # the hub's files (nanohub flash writes hub.key here)

# no "bus_tx"/"bus_rx" (the UART's fixed pins) and no "bus_txbuf" (the stm32
# port's UART has none)
WIRING = {
    "bus_uart": 2,        # USART2: PA2 TX, PA3 RX (STM32F4DISC, Nucleo-F4, pyboard X3/X4)
    "led": "LED_GREEN",
    "store": STORE,
}


class Board(McuBoard):
    name = "stm32"
    arch = "armv7emsp"          # mpy-cross -march: viper code runs native here
    wiring = WIRING
