#!/bin/sh
# Install the 32-bit MicroPython VM the tests/wasm rung runs on: the official
# WebAssembly port from npm, at a pinned version, into build/mpwasm (git-ignored).
# Needs Node (18 or later) and npm; otherwise it says why and exits 1 (the 32-bit
# VM tests then skip with that reason). Safe to run again: an installed copy of
# the pinned version is left alone.
PKG="@micropython/micropython-webassembly-pyscript"
VERSION="1.27.0"
DIR="$(cd "$(dirname "$0")/.." && pwd)/build/mpwasm"
if ! command -v node >/dev/null 2>&1; then
    echo "ensure-mpwasm: Node is missing (node not on PATH): the 32-bit VM tests (tests/wasm) will skip"
    exit 1
fi
if ! command -v npm >/dev/null 2>&1; then
    echo "ensure-mpwasm: npm is missing: cannot install $PKG@$VERSION; the 32-bit VM tests (tests/wasm) will skip"
    exit 1
fi
have=$(node -e "try{console.log(require('$DIR/node_modules/$PKG/package.json').version)}catch(e){}" 2>/dev/null)
if [ "$have" = "$VERSION" ]; then
    echo "ensure-mpwasm: $PKG@$VERSION already installed"
    exit 0
fi
mkdir -p "$DIR"
[ -f "$DIR/package.json" ] || echo '{"private": true}' >"$DIR/package.json"
echo "ensure-mpwasm: installing $PKG@$VERSION"
if ! (cd "$DIR" && npm install --no-audit --no-fund --save-exact "$PKG@$VERSION" >npm.log 2>&1); then
    echo "ensure-mpwasm: npm install $PKG@$VERSION failed (log: build/mpwasm/npm.log); the 32-bit VM tests will skip"
    tail -n 5 "$DIR/npm.log"
    exit 1
fi
echo "ensure-mpwasm: installed $PKG@$VERSION"
