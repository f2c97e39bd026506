"""Start the hub: make the board, run the loop.

On the unix port (SITL): micropython main.py --host 127.0.0.1:7700
    --bus 127.0.0.1:7701 --store hubdata --bots 16 --hub-id 1
On a board, boot runs this file without arguments: the board is the one
``board.py`` names (written by ``nanohub flash``), else the port's default
(``hub/config.py``).
"""
import sys

from hub.config import make


def main(argv):
    board, hub = make(argv)
    hub.run()


main(sys.argv[1:] if len(sys.argv) > 1 else [])
