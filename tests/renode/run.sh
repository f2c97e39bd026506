#!/bin/sh
# Run the Renode suite (tests/renode/nanohub.robot). Needs renode-test on PATH;
# `make test-renode` checks that and says plainly when the suite was not run.
# Overrides: NANOHUB_RENODE_ELF (a path or URL of the Zephyr MicroPython ELF),
# NANOHUB_RENODE_REPL (its platform description), NANOHUB_RENODE_PORT.
set -eu
cd "$(dirname "$0")/../.."
if ! command -v renode-test >/dev/null 2>&1; then
    echo "tests/renode: NOT RUN: renode-test is not on PATH (see tests/renode/README.md)"
    exit 0
fi
out=build/renode
mkdir -p "$out"
set -- --variable "NANOHUB:$PWD/.venv/bin/nanohub"
if [ -n "${NANOHUB_RENODE_ELF:-}" ]; then
    case "$NANOHUB_RENODE_ELF" in
        http*) set -- "$@" --variable "ELF:@$NANOHUB_RENODE_ELF" ;;
        *) set -- "$@" --variable "ELF:@$(realpath "$NANOHUB_RENODE_ELF")" ;;
    esac
fi
[ -n "${NANOHUB_RENODE_REPL:-}" ] && set -- "$@" --variable "REPL:@$NANOHUB_RENODE_REPL"
[ -n "${NANOHUB_RENODE_PORT:-}" ] && set -- "$@" --variable "PORT:$NANOHUB_RENODE_PORT"
echo "tests/renode: running renode-test (results in $out)"
renode-test -r "$out" "$@" tests/renode/nanohub.robot
