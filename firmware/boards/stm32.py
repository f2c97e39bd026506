"""STM32 boards on the stm32 port (pyboard, STM32F4DISC, Nucleo-F4...).

Host link: the REPL console (USB VCP, or the board's REPL UART). Bot bus:
UART2 (USART2, PA2/PA3). Watchdog: machine.WDT (the IWDG). LED: LED_GREEN.
Store: /flash/nanohub (the internal flash FAT filesystem; the store's
atomic replace copes with FAT's rename). Wiring: ``boards/pins.py``.
"""
from boards import pins
from boards.console import McuBoard


class Board(McuBoard):
    name = "stm32"
    arch = "armv7emsp"          # mpy-cross -march: viper code runs native here
    wiring = pins.STM32
