#!/usr/bin/env python3
"""atheris: the firmware's command dispatcher, a whole hub on the null board.

    python fuzz/fuzz_dispatch.py fuzz/corpus/dispatch -max_total_time=60

Input: byte 0 picks the starting state (SAFE, ready, ARMED, TREATING, PAUSED,
ESTOP), then actions (see ``props.run_actions``).
"""
import _harness

one = _harness.props.dispatch_input

if __name__ == "__main__":
    _harness.main(one)
