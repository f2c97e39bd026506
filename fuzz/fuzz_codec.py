#!/usr/bin/env python3
"""atheris: the host codec (decode, stream decode, rebuild) on arbitrary bytes.

    python fuzz/fuzz_codec.py fuzz/corpus/codec -max_total_time=60

Input: byte 0 picks where the stream is split in two reads and (top bit)
whether chunks get correct CRCs first; the rest is the stream.
"""
import _harness

one = _harness.props.codec_input

if __name__ == "__main__":
    _harness.main(one)
