"""Shared helpers for the hostile-client scripts in this folder (Python 3 standard library only).

Each script imports this module from its own folder. Everything here targets 127.0.0.1
only, and every blocking operation has a timeout.
"""

import argparse
import atexit
import json
import os
import re
import resource
import select
import signal
import socket
import subprocess
import sys
import threading
import time

HOST = "127.0.0.1"
SERVING = re.compile(rb"serving http://127\.0\.0\.1:(\d+)/")
TICKS = os.sysconf("SC_CLK_TCK")


class HardTimeout(Exception):
    pass


class _Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    pass


class _Parser(argparse.ArgumentParser):
    def add_argument(self, *names, **kwargs):
        if names and names[0].startswith("-") and "help" not in kwargs:
            kwargs["help"] = "default: %(default)s"  # every option shows its default
        return super().add_argument(*names, **kwargs)


def base_parser(description, overall_timeout):
    parser = _Parser(description=description, formatter_class=_Formatter)
    parser.add_argument("binary", help="path to the EventStreamDemo executable")
    parser.add_argument("--measure-only", action="store_true",
                        help="print the figures, never fail on a bound (exit 0 unless the run itself broke)")
    parser.add_argument("--timeout", type=float, default=overall_timeout,
                        help="hard overall timeout of the script, seconds")
    return parser


def install_hard_timeout(seconds):
    """SIGALRM after `seconds` raises HardTimeout in the main thread; a second one, 15 s
    later, kills the server and exits the process whatever it is doing."""

    def first(signum, frame):
        signal.signal(signal.SIGALRM, last)
        signal.alarm(15)
        raise HardTimeout(f"hard timeout of {seconds:.0f} s reached")

    def last(signum, frame):
        Server.kill_all()
        sys.stderr.write("hostile: hard timeout, second stage: exiting\n")
        os._exit(3)

    signal.signal(signal.SIGALRM, first)
    signal.alarm(max(1, int(seconds)))

    def on_term(signum, frame):
        Server.kill_all()
        os._exit(4)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def binary_help(binary):
    try:
        out = subprocess.run([binary, "--help"], capture_output=True, timeout=10)
        return (out.stdout + out.stderr).decode("utf-8", "replace")
    except Exception:
        return ""


def die_with_parent():
    """In a child process: SIGKILL it when the parent dies (Linux prctl PR_SET_PDEATHSIG),
    so that a script killed by SIGKILL leaves no server or flooder behind."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG = 1
    except Exception:
        pass


class Server:
    """The demo, started with --port 0; stopped (SIGTERM, then SIGKILL) at exit."""

    _all = []

    def __init__(self, binary, args=(), drain=True, stderr_lines=True):
        self.binary = binary
        self.args = ["--port", "0", *args]
        self.proc = subprocess.Popen([binary, *self.args], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0,
                                     preexec_fn=die_with_parent)
        Server._all.append(self)
        self.pid = self.proc.pid
        self.started = time.monotonic()
        self.stderr_log = []  # (seconds since start, line)
        self.stdout_rest = b""
        self.port = None
        deadline = time.monotonic() + 15
        buffer = b""
        os.set_blocking(self.proc.stdout.fileno(), False)
        while self.port is None:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                err = b""
                try:
                    err = self.proc.stderr.read1(4096) if self.proc.poll() is not None else b""
                except Exception:
                    pass
                self.stop()
                raise RuntimeError(f"server did not say it is serving: {buffer[-300:]!r} {err[-300:]!r}")
            # Wait for output (or the deadline), then read what is there.
            select.select([self.proc.stdout.fileno()], [], [], max(0.0, min(0.5, deadline - time.monotonic())))
            try:
                chunk = os.read(self.proc.stdout.fileno(), 4096)
            except BlockingIOError:
                chunk = None
            if chunk:
                buffer += chunk
                match = SERVING.search(buffer)
                if match:
                    self.port = int(match.group(1))
                    self.stdout_rest = buffer[match.end():]
        os.set_blocking(self.proc.stdout.fileno(), True)
        if drain:
            threading.Thread(target=self._drain, args=(self.proc.stdout, None), daemon=True).start()
            threading.Thread(target=self._drain, args=(self.proc.stderr, self.stderr_log if stderr_lines else None),
                             daemon=True).start()

    def _drain(self, stream, lines):
        partial = b""
        while True:
            try:
                chunk = stream.read1(65536) if hasattr(stream, "read1") else os.read(stream.fileno(), 65536)
            except Exception:
                return
            if not chunk:
                return
            if lines is not None:
                partial += chunk
                *complete, partial = partial.split(b"\n")
                now = time.monotonic() - self.started
                for line in complete:
                    if len(lines) < 200000:
                        lines.append((round(now, 2), line.decode("utf-8", "replace")))

    def alive(self):
        return self.proc.poll() is None

    def status(self, field):
        """A /proc/PID/status field in KiB (VmRSS, VmHWM), or None once the process is gone."""
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith(field + ":"):
                        return int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError):
            return None
        return None

    def rss_mib(self):
        kib = self.status("VmRSS")
        return None if kib is None else round(kib / 1024, 1)

    def hwm_mib(self):
        kib = self.status("VmHWM")
        return None if kib is None else round(kib / 1024, 1)

    def cpu_ms(self):
        """utime + stime of the whole process (all threads), in ms."""
        try:
            with open(f"/proc/{self.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            # after the ")" field 3 (state) is index 0: utime is field 14 → index 11, stime 15 → 12
            return (int(fields[11]) + int(fields[12])) * 1000.0 / TICKS
        except (FileNotFoundError, ProcessLookupError, IndexError):
            return None

    def threads(self):
        try:
            return len(os.listdir(f"/proc/{self.pid}/task"))
        except FileNotFoundError:
            return None

    def open_fds(self):
        try:
            return len(os.listdir(f"/proc/{self.pid}/fd"))
        except (FileNotFoundError, PermissionError):
            return None

    def stop(self, grace=5.0):
        """SIGTERM, `grace` s, then SIGKILL. Returns how it ended: returncode, how long it took
        to stop, whether SIGKILL was needed."""
        if self.proc.poll() is not None:
            return {"returncode": self.proc.returncode, "stop_s": 0.0, "killed": False, "died_before_stop": True}
        t0 = time.monotonic()
        killed = False
        try:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            killed = True
            self.proc.kill()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        except ProcessLookupError:
            pass
        return {"returncode": self.proc.returncode, "stop_s": round(time.monotonic() - t0, 2), "killed": killed,
                "died_before_stop": False}

    @classmethod
    def kill_all(cls):
        for server in cls._all:
            try:
                if server.proc.poll() is None:
                    server.proc.kill()
            except Exception:
                pass


atexit.register(Server.kill_all)


def kernel_tcp_mib():
    """The kernel's memory for all TCP sockets (socket buffers), from /proc/net/sockstat."""
    try:
        with open("/proc/net/sockstat") as f:
            for line in f:
                if line.startswith("TCP:"):
                    parts = line.split()
                    return round(int(parts[parts.index("mem") + 1]) * os.sysconf("SC_PAGE_SIZE") / 1048576, 1)
    except (OSError, ValueError):
        return None
    return None


def connect(port, timeout=5.0, rcvbuf=None, nodelay=False):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    if nodelay:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.settimeout(timeout)
    try:
        s.connect((HOST, port))
    except BaseException:
        s.close()
        raise
    return s


def close_all(sockets):
    """Closes every socket, ignoring errors (the server may have closed them first)."""
    for s in list(sockets):
        try:
            s.close()
        except OSError:
            pass


def read_response(sock, deadline):
    """Reads one HTTP/1.1 response (Content-Length or until EOF). Returns
    (status, headers dict lower-cased, body bytes, leftover bytes) or raises."""
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        sock.settimeout(max(0.001, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"EOF before the response head ({len(buffer)} bytes)")
        buffer += chunk
    head, rest = buffer.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        length = int(headers["content-length"])
        while len(rest) < length:
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("EOF in the response body")
            rest += chunk
        return status, headers, rest[:length], rest[length:]
    return status, headers, rest, b""


def http_get(port, path, timeout=5.0, close=True):
    """One GET on a fresh connection: (status, body, seconds)."""
    t0 = time.perf_counter()
    deadline = time.monotonic() + timeout
    s = connect(port, timeout)
    try:
        conn = "Connection: close\r\n" if close else ""
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n{conn}\r\n".encode())
        status, _, body, _ = read_response(s, deadline)
        return status, body, time.perf_counter() - t0
    finally:
        s.close()


def health_latency(port, timeout=2.0, errors=None):
    """/health on a fresh connection: seconds, or None when it failed or took over `timeout`
    (then what went wrong is appended to `errors`, if given)."""
    try:
        status, body, seconds = http_get(port, "/health", timeout)
        if status != 200 and errors is not None:
            errors.append(f"status {status}")
        return seconds if status == 200 else None
    except (OSError, ValueError, IndexError) as e:
        if errors is not None:
            errors.append(f"{type(e).__name__}: {e}")
        return None


def percentile(values, p):
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary_ms(seconds_list, failures=0):
    ms = [s * 1000.0 for s in seconds_list]
    out = {"n": len(ms), "failed": failures}
    if ms:
        out.update(p50=round(percentile(ms, 50), 2), p99=round(percentile(ms, 99), 2), max=round(max(ms), 2))
    else:
        out.update(p50=None, p99=None, max=None)
    return out


class EventLatency:
    """Reads one bench stream (GET /events) in a thread and records now − timestamp for
    each `tick` event, in seconds."""

    def __init__(self, port, path="/events"):
        self.port = port
        self.path = path
        self.latencies = []
        self.error = None
        self.closed_by_server = False
        self.recording = False
        self.stop_flag = threading.Event()
        self.first_event = threading.Event()  # set once the stream has delivered an event
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def _run(self):
        try:
            s = connect(self.port, 5)
        except OSError as e:
            self.error = f"connect: {e}"
            return
        try:
            s.sendall(f"GET {self.path} HTTP/1.1\r\nHost: {HOST}\r\nAccept: text/event-stream\r\n\r\n".encode())
            buffer = b""
            head_done = False
            while not self.stop_flag.is_set():
                s.settimeout(0.5)
                try:
                    chunk = s.recv(262144)
                except socket.timeout:
                    continue
                now_ns = time.time_ns()
                if not chunk:
                    self.closed_by_server = True
                    return
                buffer += chunk
                if not head_done:
                    if b"\r\n\r\n" not in buffer:
                        continue
                    head, buffer = buffer.split(b"\r\n\r\n", 1)
                    if b" 200" not in head.split(b"\r\n", 1)[0]:
                        self.error = f"status: {head[:80]!r}"
                        return
                    head_done = True
                # the stream may be chunked; data lines are found whatever the framing
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line.startswith(b"data: ") or line.startswith(b"data:"):
                        payload = line[5:].lstrip()
                        stamp = payload.split(b" ", 1)[0]
                        self.first_event.set()
                        if stamp.isdigit() and len(stamp) >= 18 and self.recording:
                            self.latencies.append((now_ns - int(stamp)) / 1e9)
        except OSError as e:
            if not self.stop_flag.is_set():
                self.error = f"{type(e).__name__}: {e}"
                self.closed_by_server = True
        finally:
            s.close()

    def stop(self):
        self.stop_flag.set()
        self.thread.join(timeout=3)


def emit(figures, violations, measure_only):
    figures["violations"] = violations
    figures["pass"] = not violations
    print(json.dumps(figures, sort_keys=False), flush=True)
    if violations and not measure_only:
        return 1
    return 0


def main_wrapper(run):
    """Runs `run()` (returns an exit status), turning a hard timeout or an error into a JSON
    line with "error" and exit status 2; always stops the server."""
    try:
        status = run()
    except HardTimeout as e:
        Server.kill_all()
        print(json.dumps({"error": str(e), "pass": False}), flush=True)
        status = 2
    except Exception as e:  # noqa: BLE001 - report anything, never hang
        Server.kill_all()
        print(json.dumps({"error": f"{type(e).__name__}: {e}", "pass": False}), flush=True)
        status = 2
    finally:
        signal.alarm(0)
        Server.kill_all()
    sys.stdout.flush()
    os._exit(status)
