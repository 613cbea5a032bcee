"""Shared helpers for the hostile-server scripts in this folder (Python 3 standard library only).

Each script starts scripted servers on 127.0.0.1 port 0 (plain TCP or TLS with a throwaway CA)
and runs `EventStreamDemo listen` against them, one client per scenario and transport. Every
blocking operation has a timeout; every child process is killed at exit (and when the script
dies: PR_SET_PDEATHSIG).

A scenario is a function `fn(ctx)` registered with `@suite.scenario(...)`. It starts servers
with `ctx.server(handler)`, clients with `ctx.listen(url, flags...)`, records what it asserts
with `ctx.expect(condition, text)`, and returns the figure to print. After it returns, every
client it started is checked for a crash (death by a signal the script did not send, or a
Swift runtime error on stderr) and for standard output that is not one JSON object per line.
"""

import argparse
import atexit
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HOST = "127.0.0.1"
# The client's transports for http:// URLs. On Linux there is one, the built-in client (it also
# serves https://, with the system's OpenSSL; URLSession is offered on Apple platforms only).
TRANSPORTS = ("builtin",)
TICKS = os.sysconf("SC_CLK_TCK")
ATTEMPT = re.compile(r"attempt (\d+) failed: (.*?)(?:; retrying in ([0-9.eE+\-]+|inf|nan) ?s)?\s*$")

SSE_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\r\n"
NO_CONTENT = b"HTTP/1.1 204 No Content\r\n\r\n"


def die_with_parent():
    """In a child process: SIGKILL it when the script dies (PR_SET_PDEATHSIG)."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)
    except Exception:
        pass


_spawn_queue = None


def spawn(argv, **kw):
    """subprocess.Popen from one long-lived thread: PR_SET_PDEATHSIG fires when the thread that
    forked the child ends, so children are never forked from a scenario's own thread."""
    global _spawn_queue
    import queue
    if _spawn_queue is None:
        _spawn_queue = queue.Queue()

        def spawner():
            while True:
                job, box, done = _spawn_queue.get()
                try:
                    box["proc"] = subprocess.Popen(job[0], **job[1])
                except Exception as e:
                    box["error"] = e
                done.set()

        threading.Thread(target=spawner, daemon=True, name="spawner").start()
    box = {}
    done = threading.Event()
    _spawn_queue.put(((argv, kw), box, done))
    done.wait()
    if "error" in box:
        raise box["error"]
    return box["proc"]


class Skip(Exception):
    """The scenario cannot run here (said why); counted apart from passes and failures."""


# ---------------------------------------------------------------------------------------
# Servers


class Request:
    def __init__(self, head, body, t):
        self.raw_head = head
        self.body = body
        self.t = t
        text = head.decode("latin-1")
        lines = re.split(r"\r?\n", text)
        parts = lines[0].split(" ")
        self.method = parts[0] if parts else ""
        self.target = parts[1] if len(parts) > 1 else ""
        self.version = parts[2] if len(parts) > 2 else ""
        self.headers = []
        for line in lines[1:]:
            if not line:
                continue
            name, _, value = line.partition(":")
            self.headers.append((name.strip(), value.strip()))

    def header(self, name):
        for n, v in self.headers:
            if n.lower() == name.lower():
                return v
        return None

    def all(self, name):
        return [v for n, v in self.headers if n.lower() == name.lower()]

    def names(self):
        return [n.lower() for n, _ in self.headers]


class Conn:
    """One accepted connection, handed to the scenario's handler in its own thread."""

    def __init__(self, server, sock, index):
        self.server = server
        self.sock = sock
        self.index = index
        self.t_accept = time.monotonic()
        self.request = None
        self.sent = 0
        self.buffer = b""
        self.closed_at = None  # when the handler saw the client go (EOF/reset), if it looked

    def recv_request(self, timeout=5.0, answer_expect=True):
        """Reads one request head and its body (Content-Length or chunked). Returns a Request,
        or None on EOF/timeout. Answers `Expect: 100-continue` with a 100 unless told not to."""
        deadline = time.monotonic() + timeout
        holder = [self.buffer]
        while True:
            m = re.search(rb"\r?\n\r?\n", holder[0])
            if m:
                break
            if len(holder[0]) > 4 << 20 or not self._recv_into(deadline, holder):
                self.buffer = holder[0]
                return None
        buf = holder[0]
        head, rest = buf[:m.start()], buf[m.end():]
        req = Request(head, b"", time.monotonic())
        if answer_expect and (req.header("Expect") or "").lower() == "100-continue":
            self.send(b"HTTP/1.1 100 Continue\r\n\r\n")
        length = req.header("Content-Length")
        if length is not None and length.isdigit():
            n = int(length)
            while len(rest) < n:
                holder = [rest]
                if not self._recv_into(deadline, holder):
                    break
                rest = holder[0]
            req.body, rest = rest[:n], rest[n:]
        elif (req.header("Transfer-Encoding") or "").lower() == "chunked":
            body = b""
            while True:
                while b"\r\n" not in rest:
                    holder = [rest]
                    if not self._recv_into(deadline, holder):
                        break
                    rest = holder[0]
                line, _, rest = rest.partition(b"\r\n")
                try:
                    size = int(line.split(b";")[0].strip() or b"0", 16)
                except ValueError:
                    break
                while len(rest) < size + 2:
                    holder = [rest]
                    if not self._recv_into(deadline, holder):
                        break
                    rest = holder[0]
                body += rest[:size]
                rest = rest[size + 2:]
                if size == 0:
                    break
            req.body = body
            req.chunked = True
        self.buffer = rest
        self.request = req
        self.server._record(req)
        return req

    def _recv_into(self, deadline, holder):
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        try:
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
        except (socket.timeout, OSError, ssl.SSLError):
            return False
        if not chunk:
            return False
        holder[0] = holder[0] + chunk
        return True

    def send(self, data, timeout=10.0):
        """Sends everything or returns False (client gone, or `timeout` s blocked)."""
        try:
            self.sock.settimeout(timeout)
            self.sock.sendall(data)
            self.sent += len(data)
            return True
        except (OSError, ssl.SSLError):
            return False

    def dribble(self, data, interval, stop=None):
        """One byte every `interval` s; False as soon as the client is gone."""
        for i in range(len(data)):
            if stop is not None and stop.is_set():
                return False
            if not self.send(data[i:i + 1]):
                return False
            if self.wait_gone(interval):
                return False
        return True

    def wait_gone(self, timeout):
        """Waits up to `timeout` s for the client to close (EOF or reset); True if it did.
        Bytes that arrive meanwhile are kept for recv_request."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                self.sock.settimeout(min(left, 0.2))
                chunk = self.sock.recv(65536)
            except socket.timeout:
                if self.server.stopping.is_set():
                    return True
                continue
            except (OSError, ssl.SSLError):
                self.closed_at = time.monotonic()
                return True
            if not chunk:
                self.closed_at = time.monotonic()
                return True
            self.buffer += chunk

    def hold(self, timeout=30.0):
        """Keeps the connection open, saying nothing, until the client goes or `timeout`."""
        return self.wait_gone(timeout)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def reset(self):
        """Closes with an RST (SO_LINGER 0)."""
        try:
            raw = self.sock
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            raw.close()
        except OSError:
            pass


class ScriptedServer:
    """Listens on 127.0.0.1 port 0; runs handler(conn) in a thread per connection and closes the
    connection when the handler returns. `tls` is an ssl.SSLContext (server side) or None."""

    def __init__(self, handler, tls=None, name="server", backlog=128, accept=True):
        self.handler = handler
        self.tls = tls
        self.name = name
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((HOST, 0))
        self.listener.listen(backlog)
        self.port = self.listener.getsockname()[1]
        self.connections = []
        self.requests = []
        self.errors = []
        self.t0 = time.monotonic()
        self.cond = threading.Condition()
        self.stopping = threading.Event()
        self.conn_socks = []
        if accept:
            threading.Thread(target=self._accept_loop, daemon=True).start()

    def url(self, path="/events", scheme=None, host=HOST):
        scheme = scheme or ("https" if self.tls else "http")
        return f"{scheme}://{host}:{self.port}{path}"

    def _accept_loop(self):
        try:
            self.listener.settimeout(0.2)
        except OSError:
            return
        while not self.stopping.is_set():
            try:
                sock, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.cond:
                conn = Conn(self, sock, len(self.connections))
                self.connections.append(conn)
                self.conn_socks.append(sock)
                self.cond.notify_all()
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn):
        try:
            if self.tls is not None:
                conn.sock.settimeout(5)
                conn.sock = self.tls.wrap_socket(conn.sock, server_side=True)
                with self.cond:
                    self.conn_socks.append(conn.sock)
            self.handler(conn)
        except Exception as e:  # the handler's own trouble is recorded, not raised
            self.errors.append(f"{type(e).__name__}: {e}")
        finally:
            conn.close()

    def _record(self, req):
        with self.cond:
            self.requests.append(req)
            self.cond.notify_all()

    def wait_connections(self, n, timeout):
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.connections) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
            return True

    def wait_requests(self, n, timeout):
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.requests) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
            return True

    def accept_times(self):
        return [c.t_accept for c in self.connections]

    def close_listener(self):
        """Stops listening: the port refuses connections from now on."""
        self.stopping.set()
        try:
            self.listener.close()
        except OSError:
            pass

    def stop(self):
        self.stopping.set()
        try:
            self.listener.close()
        except OSError:
            pass
        with self.cond:
            socks = list(self.conn_socks)
        for s in socks:
            try:
                s.close()
            except OSError:
                pass


def serve_sequence(*handlers, rest=None):
    """A handler that gives the k-th connection handlers[k] (which reads the request itself or
    not) and every later one `rest` (default: read the request, answer 204)."""

    def handler(conn):
        if conn.index < len(handlers):
            return handlers[conn.index](conn)
        return (rest or answer_204)(conn)

    return handler


def answer_204(conn):
    conn.recv_request()
    conn.send(NO_CONTENT)


def answer(data, then="close", hold=30.0):
    """A handler: read the request, send `data` (bytes or list of bytes with no pause), then
    `then`: "close", "reset" or "hold"."""

    def handler(conn):
        conn.recv_request()
        for part in (data if isinstance(data, list) else [data]):
            if not conn.send(part):
                return
        if then == "reset":
            conn.reset()
        elif then == "hold":
            conn.hold(hold)

    return handler


def chunked(*pieces, ext=b"", trailers=b""):
    out = b""
    for p in pieces:
        out += b"%x%s\r\n%s\r\n" % (len(p), ext, p)
    return out + b"0\r\n" + trailers + b"\r\n"


def closed_port():
    """A 127.0.0.1 port that nothing listens on (bound, then closed)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ---------------------------------------------------------------------------------------
# TLS: a throwaway CA, and a way to make one client process (only) trust it


class TestCA:
    """A CA and a server certificate for 127.0.0.1/localhost in a temporary folder."""

    _instance = None

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="hostile-servers-ca-")
        atexit.register(shutil.rmtree, self.dir, True)
        d = self.dir

        def run(*argv):
            subprocess.run(argv, check=True, capture_output=True, timeout=30, cwd=d)

        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        run("openssl", "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=EventStreamKit hostile-servers throwaway CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        run("openssl", "req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
        with open(os.path.join(d, "ext.cnf"), "w") as f:
            f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                    "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n")
        run("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf")
        self.ca_pem = os.path.join(d, "ca.pem")
        # An empty folder for SSL_CERT_DIR, so that a trusting client trusts this CA alone.
        self.empty_dir = os.path.join(d, "no-certs")
        os.mkdir(self.empty_dir)
        # A second certificate from the same CA, for another name only (DNS:other.example).
        with open(os.path.join(d, "other.cnf"), "w") as f:
            f.write("subjectAltName=DNS:other.example\nbasicConstraints=CA:FALSE\n"
                    "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n")
        run("openssl", "req", *ec, "-keyout", "other.key", "-out", "other.csr", "-subj", "/CN=other.example")
        run("openssl", "x509", "-req", "-in", "other.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "other.pem", "-days", "2", "-extfile", "other.cnf")
        self.context = self.server_context()

    def server_context(self, certificate="server", server_names=None):
        """A server context with `certificate` ("server": 127.0.0.1 and localhost; "other":
        other.example only); the SNI names clients send are appended to `server_names`."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(os.path.join(self.dir, certificate + ".pem"), os.path.join(self.dir, certificate + ".key"))
        if server_names is not None:
            context.sni_callback = lambda sock, name, ctx: server_names.append(name)
        return context

    @classmethod
    def get(cls):
        if cls._instance is None:
            if shutil.which("openssl") is None:
                raise Skip("openssl is not installed")
            cls._instance = cls()
        return cls._instance

    def trust_env(self, env=None):
        """The environment of a client that trusts this CA and nothing else: the client's
        OpenSSL reads its trust store from SSL_CERT_FILE and SSL_CERT_DIR (OpenSSL's default
        paths), so only that process is affected."""
        env = dict(os.environ if env is None else env)
        env["SSL_CERT_FILE"] = self.ca_pem
        env["SSL_CERT_DIR"] = self.empty_dir
        return env


# ---------------------------------------------------------------------------------------
# The client under test


LEGACY = False  # --legacy-flags: drive a binary from before the listen rewrite (see README)


def legacy_argv(flags):
    out = []
    i = 0
    while i < len(flags):
        f = flags[i]
        if f == "-H":
            out += ["--header", flags[i + 1]]
            i += 2
        elif f == "--transport":
            if flags[i + 1] != "builtin":
                raise Skip("--legacy-flags: the old binary has no foundation transport for http://")
            i += 2
        elif f == "--max-attempts":
            i += 2
        elif f in ("--connect-timeout", "--read-timeout", "--method", "--data", "--data-file"):
            raise Skip(f"--legacy-flags: the old binary has no {f}")
        else:
            out.append(f)
            i += 1
    return out


class Listener:
    """`BINARY listen URL FLAGS...`: stdout lines parsed as JSON events, stderr lines kept,
    both with the time they arrived; peak RSS sampled every 50 ms."""

    _all = []

    def __init__(self, binary, url, flags, read_stdout=True, env=None):
        flags = list(flags)
        if LEGACY:
            flags = legacy_argv(flags)
        self.argv = [binary, "listen", url, *flags]
        self.t0 = time.monotonic()
        self.proc = spawn(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, bufsize=0, preexec_fn=die_with_parent, env=env)
        Listener._all.append(self)
        self.pid = self.proc.pid
        self.cond = threading.Condition()
        self.events = []  # (t, dict or None, raw line)
        self.stderr = []  # (t, text)
        self.stderr_bytes = b""
        self.stdout_bytes = 0
        self.peak_rss_kib = 0
        self.signalled = None  # the signal the script sent, if it did
        self.exit_t = None
        self.stdout_gate = threading.Event()
        if read_stdout:
            self.stdout_gate.set()
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()
        threading.Thread(target=self._monitor, daemon=True).start()

    # -- readers
    def _read_stdout(self):
        self.stdout_gate.wait()
        partial = b""
        while True:
            try:
                chunk = os.read(self.proc.stdout.fileno(), 1 << 20)
            except OSError:
                chunk = b""
            if not chunk:
                break
            self.stdout_bytes += len(chunk)
            partial += chunk
            *lines, partial = partial.split(b"\n")
            if lines:
                now = time.monotonic() - self.t0
                parsed = []
                for line in lines:
                    try:
                        obj = json.loads(line.decode("utf-8"))
                        if not isinstance(obj, dict):
                            obj = None
                    except (ValueError, UnicodeDecodeError):
                        obj = None
                    parsed.append((now, obj, line[:300]))
                with self.cond:
                    self.events.extend(parsed)
                    self.cond.notify_all()
        if partial:
            with self.cond:
                self.events.append((time.monotonic() - self.t0, None, partial[:300]))
                self.cond.notify_all()

    def _read_stderr(self):
        partial = b""
        while True:
            try:
                chunk = os.read(self.proc.stderr.fileno(), 65536)
            except OSError:
                chunk = b""
            if not chunk:
                break
            if len(self.stderr_bytes) < 1 << 20:
                self.stderr_bytes += chunk
            partial += chunk
            *lines, partial = partial.split(b"\n")
            now = time.monotonic() - self.t0
            with self.cond:
                for line in lines:
                    if len(self.stderr) < 100000:
                        self.stderr.append((now, line.decode("utf-8", "replace")))
                self.cond.notify_all()
        if partial:
            with self.cond:
                self.stderr.append((time.monotonic() - self.t0, partial.decode("utf-8", "replace")))
                self.cond.notify_all()

    def _monitor(self):
        while self.proc.poll() is None:
            kib = self.status("VmHWM")
            if kib:
                self.peak_rss_kib = max(self.peak_rss_kib, kib)
            time.sleep(0.05)
        with self.cond:
            self.exit_t = time.monotonic() - self.t0
            self.cond.notify_all()

    # -- /proc
    def status(self, field):
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith(field + ":"):
                        return int(line.split()[1])
        except (OSError, ValueError):
            return None
        return None

    def peak_rss_mib(self):
        kib = self.status("VmHWM")
        if kib:
            self.peak_rss_kib = max(self.peak_rss_kib, kib)
        return round(self.peak_rss_kib / 1024, 1)

    def cpu_s(self):
        """utime + stime of the process so far, seconds (None once it is reaped)."""
        try:
            with open(f"/proc/{self.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / TICKS
        except (OSError, IndexError, ValueError):
            return None

    # -- waiting
    def wait_for(self, predicate, timeout):
        """Waits until predicate(self) is true, the process exits (then one last look) or
        `timeout` s; returns the predicate's last value."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                value = predicate(self)
                if value:
                    return value
                if self.exit_t is not None:
                    # let the readers finish what the process wrote before it exited
                    self.cond.wait(0.2)
                    return predicate(self)
                left = deadline - time.monotonic()
                if left <= 0:
                    return value
                self.cond.wait(min(left, 0.1))

    def wait_events(self, n, timeout):
        return self.wait_for(lambda s: len(s.good_events()) >= n, timeout)

    def wait_stderr(self, pattern, timeout):
        rx = re.compile(pattern, re.I)
        return self.wait_for(lambda s: any(rx.search(line) for _, line in s.stderr), timeout)

    def wait_exit(self, timeout):
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        self.wait_for(lambda s: False, 0.3)
        return self.proc.returncode

    # -- what it printed
    def good_events(self):
        return [obj for _, obj, _ in self.events if obj is not None]

    def data(self):
        return [e.get("data") for e in self.good_events()]

    def bad_lines(self):
        return [raw for _, obj, raw in self.events if obj is None]

    def attempts(self):
        """(t, number, reason, delay or None) for each 'attempt N failed' line."""
        out = []
        for t, line in list(self.stderr):
            m = ATTEMPT.search(line)
            if m:
                out.append((t, int(m.group(1)), m.group(2), m.group(3)))
        return out

    def first_stderr_t(self):
        return self.stderr[0][0] if self.stderr else None

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.signalled = signal.SIGTERM
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.signalled = signal.SIGKILL
                self.proc.kill()
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
            except ProcessLookupError:
                pass
        return self.proc.returncode

    def crash(self):
        """A description of a crash, or None: death by a signal the script did not send, or a
        Swift runtime error / fatal error line on stderr."""
        rc = self.proc.poll()
        if rc is not None and rc < 0 and self.signalled is None:
            fatal = [l for _, l in self.stderr if re.search(r"Fatal error|runtime failure", l)]
            return f"killed by signal {signal.Signals(-rc).name}" + (f" ({fatal[0][:200]})" if fatal else "")
        for _, line in self.stderr:
            if re.search(r"Fatal error|Swift runtime failure|Illegal instruction|Segmentation fault|"
                         r"Trace/breakpoint|Current stack trace", line):
                return f"runtime error on stderr: {line[:200]}"
        return None

    def observed(self):
        """A short account of what the client did, for FAIL lines."""
        rc = self.proc.poll()
        if rc is None:
            how = "still running"
        elif rc < 0:
            how = f"signal {signal.Signals(-rc).name}" + (" (sent by the script)" if self.signalled else "")
        else:
            how = f"exit {rc} at {self.exit_t:.2f} s" if self.exit_t is not None else f"exit {rc}"
        lines = [line for _, line in self.stderr]
        fatal = [l for l in lines if re.search(r"Fatal error|runtime failure", l)]
        shown = fatal[:1] if fatal else [l for l in lines if l.strip()][-2:]
        tail = " | ".join(l[:200] for l in shown) if shown else "(nothing)"
        return f"client {how}; {len(self.good_events())} events; stderr {len(lines)} lines: {tail}"

    @classmethod
    def kill_all(cls):
        for c in cls._all:
            try:
                if c.proc.poll() is None:
                    c.proc.kill()
            except Exception:
                pass


atexit.register(Listener.kill_all)


# ---------------------------------------------------------------------------------------
# Scenarios


class Ctx:
    def __init__(self, suite, transport):
        self.suite = suite
        self.binary = suite.binary
        self.transport = transport  # "builtin", or None (https, or not transport-specific)
        self.failures = []
        self.servers = []
        self.listeners = []
        self.closers = []

    def server(self, handler, tls=False, **kw):
        """A scripted server; tls=True serves the CA's 127.0.0.1/localhost certificate, or
        tls=an ssl.SSLContext (TestCA.server_context) serves that."""
        context = (TestCA.get().context if tls is True else tls) if tls else None
        s = ScriptedServer(handler, tls=context, **kw)
        self.servers.append(s)
        return s

    def listen(self, url, *flags, trust=False, read_stdout=True, transport=True, env=None):
        """Starts the client; adds --transport for this scenario's transport unless
        transport=False (https URLs, and scenarios that are not transport-specific)."""
        flags = list(flags)
        if transport and self.transport is not None:
            flags += ["--transport", self.transport]
        if trust:
            env = TestCA.get().trust_env(env)
        c = Listener(self.binary, url, flags, read_stdout=read_stdout, env=env)
        self.listeners.append(c)
        return c

    def expect(self, condition, text):
        if not condition:
            self.failures.append(text)
        return condition

    def cleanup(self):
        for c in self.listeners:
            c.stop()
        for s in self.servers:
            s.stop()
        for f in self.closers:
            try:
                f()
            except Exception:
                pass


class Suite:
    def __init__(self, name, description):
        self.name = name
        self.description = description
        self.scenarios = []  # (name, fn, transports, cap)
        self.results = []

    def scenario(self, name, transports=TRANSPORTS, cap=20.0):
        """Registers fn(ctx) for each transport in `transports` (or once with ctx.transport None
        when transports is None); `cap` s is its time limit."""

        def register(fn):
            self.scenarios.append((name, fn, transports, cap, fn.__doc__))
            return fn

        return register

    def parse(self):
        global LEGACY
        p = argparse.ArgumentParser(description=self.description)
        p.add_argument("binary", help="path to the EventStreamDemo executable")
        p.add_argument("--only", help="run only the scenarios whose name matches this regular expression")
        p.add_argument("--transport", choices=["builtin", "both"], default="both",
                       help="the http:// transports to run (on Linux only builtin exists)")
        p.add_argument("--serial", action="store_true", help="run the transports of a scenario one after the other")
        p.add_argument("--legacy-flags", action="store_true",
                       help="drive a binary from before the listen rewrite: --header for -H, no --max-attempts "
                            "or --transport builtin; scenarios needing other new flags are skipped")
        p.add_argument("--list", action="store_true", help="list the scenarios and exit")
        p.add_argument("--timeout", type=float, default=170.0, help="hard overall timeout, seconds")
        args = p.parse_args()
        LEGACY = args.legacy_flags
        return args

    def run(self):
        args = self.parse()
        if args.list:
            for name, _, transports, cap, doc in self.scenarios:
                print(f"{name} [{', '.join(transports) if transports else '-'}] (cap {cap:.0f} s): "
                      f"{' '.join((doc or '').split())}")
            return 0
        self.binary = os.path.abspath(args.binary)
        if not os.access(self.binary, os.X_OK):
            print(f"{self.name}: not an executable: {self.binary}", file=sys.stderr)
            return 2
        install_hard_timeout(args.timeout)
        start = time.monotonic()
        counts = {"PASS": 0, "FAIL": 0, "SKIP": 0}
        try:
            for name, fn, transports, cap, _ in self.scenarios:
                if args.only and not re.search(args.only, name):
                    continue
                variants = list(transports) if transports else [None]
                if args.transport != "both":
                    variants = [v for v in variants if v in (None, args.transport)]
                if LEGACY:
                    variants = [v for v in variants if v != "foundation"]
                if not variants:
                    continue
                results = {}
                threads = []
                for v in variants:
                    t = threading.Thread(target=self._run_one, args=(name, fn, v, cap, results), daemon=True)
                    threads.append(t)
                    t.start()
                    if args.serial:
                        t.join(cap + 15)
                for t in threads:
                    t.join(cap + 15)
                for v in variants:
                    verdict, line = results.get(v, ("FAIL", f"{name} [{v or '-'}]: the scenario did not return "
                                                            f"within {cap + 15:.0f} s"))
                    counts[verdict] += 1
                    print(f"{verdict} {line}", flush=True)
        except HardTimeout as e:
            counts["FAIL"] += 1
            print(f"FAIL {self.name}: {e}", flush=True)
        Listener.kill_all()
        elapsed = time.monotonic() - start
        print(f"{self.name}: {counts['PASS']} passed, {counts['FAIL']} failed, {counts['SKIP']} skipped "
              f"({elapsed:.0f} s)", flush=True)
        return 1 if counts["FAIL"] else 0

    def _run_one(self, name, fn, transport, cap, results):
        ctx = Ctx(self, transport)
        label = f"{name} [{transport or '-'}]"
        figure = ""
        done = threading.Event()
        box = {}

        def body():
            try:
                box["figure"] = fn(ctx) or ""
            except Skip as e:
                box["skip"] = str(e)
            except Exception as e:
                box["error"] = f"{type(e).__name__}: {e}"
                box["trace"] = traceback.format_exc(limit=3)
            finally:
                done.set()

        threading.Thread(target=body, daemon=True).start()
        if not done.wait(cap):
            ctx.failures.append(f"scenario exceeded its {cap:.0f} s cap")
        if "skip" in box:
            ctx.cleanup()
            results[transport] = ("SKIP", f"{label}: {box['skip']}")
            return
        figure = box.get("figure", "")
        if "error" in box:
            ctx.failures.append(f"scenario error {box['error']}")
        # universal checks, before the clients are stopped (a crash is the client's own death)
        for c in ctx.listeners:
            crash = c.crash()
            if crash:
                ctx.failures.append(f"CRASH: {crash}")
            if c.proc.poll() == 2 and not getattr(c, "usage_error_expected", False):
                ctx.failures.append(f"usage error (exit 2): {c.stderr[-1][1][:160] if c.stderr else ''}")
            bad = c.bad_lines()
            if bad:
                ctx.failures.append(f"stdout not JSON lines: {bad[0][:120]!r} ({len(bad)} such)")
        observed = "; ".join(c.observed() for c in ctx.listeners[:2])
        ctx.cleanup()
        if ctx.failures:
            results[transport] = ("FAIL", f"{label}: {figure}; failed: {'; '.join(ctx.failures)}; observed: {observed}")
        else:
            results[transport] = ("PASS", f"{label}: {figure}")


class HardTimeout(Exception):
    pass


def install_hard_timeout(seconds):
    def first(signum, frame):
        signal.signal(signal.SIGALRM, last)
        signal.alarm(10)
        raise HardTimeout(f"hard timeout of {seconds:.0f} s reached")

    def last(signum, frame):
        Listener.kill_all()
        os._exit(3)

    signal.signal(signal.SIGALRM, first)
    signal.alarm(max(1, int(seconds)))

    def on_term(signum, frame):
        Listener.kill_all()
        os._exit(4)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)


def fmt(x, unit="", digits=2):
    return "-" if x is None else f"{x:.{digits}f}{unit}"
