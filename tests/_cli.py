"""The ``nanohub`` command as a user runs it, for the tests."""
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def argv(*args):
    """The command line of ``nanohub ARGS`` under this interpreter."""
    return [sys.executable, "-m", "nanohub.host.cli", *map(str, args)]


def nanohub(*args, env=None, timeout=60, cwd=None):
    """Run ``nanohub ARGS`` to the end (no NANOHUB_PORT from the caller)."""
    full_env = dict(os.environ)
    full_env.pop("NANOHUB_PORT", None)
    full_env.update(env or {})
    return subprocess.run(argv(*args), capture_output=True, text=True, timeout=timeout,
                          env=full_env, cwd=cwd)


def one_line(proc):
    """The single line a failing verb writes to stderr (never a traceback)."""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def stop(proc):
    """End a long-running ``nanohub`` as Ctrl-C does, killing it if it does not end."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()


def terminate(proc, grace=5):
    """End a child process with SIGTERM, killing it if it has not ended within
    ``grace`` seconds (nothing if it has ended already)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(grace)


def short_scenario(tmp_path):
    """The nominal scenario cut to 4 s, 8 bots, only the consent step: a quick real session."""
    text = (ROOT / "sim" / "scenarios" / "nominal.toml").read_text()
    text = text[:text.index("[[operator]]")].replace("duration_s = 60", "duration_s = 4")
    text = text.replace("bots = 64 ", "bots = 8 ")
    path = tmp_path / "short.toml"
    path.write_text(text + '[[operator]]\nat = 0.5\ndo = "consent"\n'
                           'args = { patient = 4711 }\n')
    return path


def serve(server, handle):
    """Hand each connection to the listening socket ``server`` to ``handle(conn)``,
    one after the other, in a thread, until the socket is closed."""
    def loop():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                handle(conn)
    threading.Thread(target=loop, daemon=True).start()


def tcp_peer(each):
    """A TCP server on 127.0.0.1 (the listening socket) that reads each
    connection to its end, calling ``each(conn, data)`` for every chunk."""
    server = socket.create_server(("127.0.0.1", 0))

    def read(conn):
        while True:
            data = conn.recv(65536)
            if not data:
                return
            each(conn, data)
    serve(server, read)
    return server
