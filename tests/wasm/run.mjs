// Run a MicroPython script on the 32-bit WebAssembly VM under Node.
//
//   node tests/wasm/run.mjs [--heap 256k] [--path DIR:DIR...] [--board DIR] [--file FILE]...
//                           [--root DIR] SCRIPT [ARGS...]
//
// Loads the official MicroPython WebAssembly port (installed into build/mpwasm
// by scripts/ensure-mpwasm.sh, or NANOHUB_MPWASM=DIR holding its node_modules)
// with the given GC heap, copies each --path directory (its .py, .mpy and .json
// files) and each --file onto the VM's in-memory filesystem at the same absolute
// path, puts the directories on sys.path, sets sys.argv and runs SCRIPT. Output goes to stdout/stderr.
// --board DIR copies DIR's tree to the root of the VM's filesystem instead, where
// `nanohub flash` puts the firmware on a board (hub/core.mpy, ...), and puts "/"
// on sys.path: module file names are then a board's, not the host's.
//
// The VM's garbage collector only takes effect once control is back in
// JavaScript, so a script may hand the loop to the runner: if it defines
// ``wasm_step()``, that is called again and again, each call a separate
// top-level run, until it returns a false value.
//
// Exit status: 0 when the script finished, 1 on an uncaught Python exception
// (its traceback is printed), the script's own status on SystemExit, 2 on usage.
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const root0 = path.resolve(here, "..", "..");
const PKG = "@micropython/micropython-webassembly-pyscript";

function usage(msg) {
    process.stderr.write("run.mjs: " + msg + "\n");
    process.exit(2);
}

function size(s) {
    const m = /^(\d+)([kKmM]?)$/.exec(s);
    if (!m) usage("bad heap size " + s);
    return parseInt(m[1], 10) * ({ "": 1, k: 1024, K: 1024, m: 1 << 20, M: 1 << 20 })[m[2]];
}

let heap = 256 * 1024, dirs = [], files = [], board = null, root = process.env.NANOHUB_ROOT || root0;
const argv = process.argv.slice(2);
while (argv.length && argv[0].startsWith("--")) {
    const opt = argv.shift();
    if (opt === "--heap") heap = size(argv.shift() || "");
    else if (opt === "--path") dirs = (argv.shift() || "").split(":").filter(Boolean);
    else if (opt === "--root") root = argv.shift();
    else if (opt === "--board") board = path.resolve(argv.shift() || "");
    else if (opt === "--file") files.push(path.resolve(argv.shift() || ""));
    else usage("unknown option " + opt);
}
if (!argv.length) usage("no script given");
const script = path.resolve(argv[0]);

const base = process.env.NANOHUB_MPWASM || path.join(root0, "build", "mpwasm");
let entry;
try {
    entry = createRequire(path.join(base, "package.json")).resolve(PKG);
} catch (e) {
    process.stderr.write(`run.mjs: ${PKG} is not installed under ${base} (run scripts/ensure-mpwasm.sh)\n`);
    process.exit(3);
}
const { loadMicroPython } = await import(entry);

const mp = await loadMicroPython({
    heapsize: heap,
    linebuffer: false,
    stdout: (b) => process.stdout.write(b),
    stderr: (b) => process.stderr.write(b),
});
const FS = mp.FS;

function mkdirs(p) {
    let cur = "";
    for (const part of p.split("/").filter(Boolean)) {
        cur += "/" + part;
        try { FS.mkdir(cur); } catch (e) { /* exists */ }
    }
}

function copyTree(src, dst = src) {
    for (const ent of fs.readdirSync(src, { withFileTypes: true })) {
        if (ent.name.startsWith(".") || ent.name === "__pycache__" || ent.name === "node_modules") continue;
        const p = path.join(src, ent.name);
        if (ent.isDirectory()) copyTree(p, path.join(dst, ent.name));
        else if (/\.(py|mpy|json)$/.test(ent.name)) {
            mkdirs(dst);
            FS.writeFile(path.join(dst, ent.name), fs.readFileSync(p));
        }
    }
}

const absDirs = dirs.map((d) => path.resolve(d));
for (const d of absDirs) copyTree(d);
if (board) { copyTree(board, "/"); absDirs.push("/"); }
mkdirs(path.dirname(script));
FS.writeFile(script, fs.readFileSync(script));
for (const p of [path.join(root, "protocol/vectors.json"), ...files]) {
    if (fs.existsSync(p)) { mkdirs(path.dirname(p)); FS.writeFile(p, fs.readFileSync(p)); }
}
FS.chdir(root.startsWith("/") ? (mkdirs(root), root) : "/");

const setup = [
    "import sys, os",
    "sys.path[:] = " + JSON.stringify([path.dirname(script), ...absDirs, ""]),
    "sys.argv[:] = " + JSON.stringify(argv.map((a, i) => (i === 0 ? script : a))),
    // the port has no environment: the few variables the tests read
    "_env = " + JSON.stringify({ NANOHUB_ROOT: root, TMPDIR: "/tmp" }),
    "if not hasattr(os, 'getenv'):\n    os.getenv = lambda k, d=None: _env.get(k, d)",
].join("\n");

function run(code) {
    try {
        mp.runPython(code);
        return null;
    } catch (e) {
        const text = String(e && e.message !== undefined ? e.message : e);
        const m = /SystemExit: ?(-?\d+)?/.exec(text);
        if (m) return m[1] === undefined ? 0 : parseInt(m[1], 10);
        process.stderr.write(text.endsWith("\n") ? text : text + "\n");
        return 1;
    }
}

let rc = run(setup);
if (rc === null) rc = run("__file__ = " + JSON.stringify(script) + "\nexec(open(__file__).read())");
if (rc === null && mp.globals.get("wasm_step") !== undefined) {
    for (;;) {
        rc = run("_wasm_more = wasm_step()");
        if (rc !== null) break;
        if (!mp.globals.get("_wasm_more")) break;
    }
}
process.exit(rc === null ? 0 : rc);
