#!/usr/bin/env python3
"""atheris: the firmware's streaming frame parser against the host codec.

    python fuzz/fuzz_rx.py fuzz/corpus/rx -max_total_time=60

Input: byte 0 picks how the stream is cut into reads (low 7 bits) and whether
every chunk gets a correct CRC first (top bit: reaches the checks behind the
CRC); the rest is the stream.
"""
import _harness

one = _harness.props.rx_input

if __name__ == "__main__":
    _harness.main(one)
