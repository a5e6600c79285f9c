"""faultlib - helpers for Tether's fault tests.

Builds on tests/e2e/tether_e2e.py (processes, stubs, agents, calls) and
adds what the fault tests need on top:

- Monitor: a SUB on the router's monitor PUB (through libzmq with ctypes,
  so no Python ZeroMQ binding is needed) that keeps the latest `stats`
  event; wait_stats() waits for a fresh one that satisfies a predicate.
- rss_kib(): a process's resident set (VmRSS in /proc/PID/status).
- Load: N client threads, each making a bounded number of calls with a
  deadline; it records every call's status and duration, and join() says
  which threads are still running when they should all be done, so a hang
  is a test failure with a message, not a CTest timeout.
- BigAgent: an agent that also answers `big` (count messages of size
  bytes), for the flow-control test.
- FaultTestCase: one fresh external-router gateway per test, with short
  liveness windows, a monitor, and end-of-test checks (router tables
  empty, processes exit cleanly).
"""

import ctypes
import ctypes.util
import json
import os
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))

import grpc  # noqa: E402

import tether_e2e as e2e  # noqa: E402

#   Timing used by every fault fixture: edges ping every 250 ms and either
#   side declares the other lost after LIVENESS_S of silence.  SLACK_S is
#   what we allow on top of any bound for a loaded two-core machine.
HEARTBEAT = "250ms"
LIVENESS = "1500ms"
LIVENESS_S = 1.5
SLACK_S = 4.0
STATS_INTERVAL = "200ms"


# --------------------------------------------------------------------------
#  Monitor (libzmq through ctypes)

_ZMQ_SUB = 2
_ZMQ_SUBSCRIBE = 6
_ZMQ_LINGER = 17
_ZMQ_RCVTIMEO = 27


class _ZmqMsg(ctypes.Structure):
    _fields_ = [("_", ctypes.c_ubyte * 64)]


def _libzmq():
    name = ctypes.util.find_library("zmq") or "libzmq.so.5"
    lib = ctypes.CDLL(name, use_errno=True)
    lib.zmq_ctx_new.restype = ctypes.c_void_p
    lib.zmq_ctx_term.argtypes = [ctypes.c_void_p]
    lib.zmq_socket.restype = ctypes.c_void_p
    lib.zmq_socket.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.zmq_setsockopt.argtypes = [ctypes.c_void_p, ctypes.c_int,
                                   ctypes.c_void_p, ctypes.c_size_t]
    lib.zmq_connect.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    lib.zmq_close.argtypes = [ctypes.c_void_p]
    lib.zmq_msg_init.argtypes = [ctypes.POINTER(_ZmqMsg)]
    lib.zmq_msg_recv.argtypes = [ctypes.POINTER(_ZmqMsg), ctypes.c_void_p,
                                 ctypes.c_int]
    lib.zmq_msg_data.restype = ctypes.c_void_p
    lib.zmq_msg_data.argtypes = [ctypes.POINTER(_ZmqMsg)]
    lib.zmq_msg_size.restype = ctypes.c_size_t
    lib.zmq_msg_size.argtypes = [ctypes.POINTER(_ZmqMsg)]
    lib.zmq_msg_more.argtypes = [ctypes.POINTER(_ZmqMsg)]
    lib.zmq_msg_close.argtypes = [ctypes.POINTER(_ZmqMsg)]
    return lib


class Monitor:
    """Subscribes to `stats` on tcp://127.0.0.1:PORT.  libzmq reconnects
    on its own, so the monitor survives a router restart on the same
    port."""

    def __init__(self, port):
        self.zmq = _libzmq()
        self.cond = threading.Condition()
        self.latest = None          # the last stats dict
        self.count = 0              # stats events received
        self.stopped = False
        self.ctx = self.zmq.zmq_ctx_new()
        self.sock = self.zmq.zmq_socket(self.ctx, _ZMQ_SUB)
        for opt, value in ((_ZMQ_RCVTIMEO, 100), (_ZMQ_LINGER, 0)):
            v = ctypes.c_int(value)
            self.zmq.zmq_setsockopt(self.sock, opt, ctypes.byref(v), 4)
        self.zmq.zmq_setsockopt(self.sock, _ZMQ_SUBSCRIBE, b"stats", 5)
        rc = self.zmq.zmq_connect(self.sock,
                                  ("tcp://127.0.0.1:%d" % port).encode())
        assert rc == 0, "zmq_connect failed"
        self.thread = threading.Thread(target=self._run, daemon=True,
                                       name="monitor")
        self.thread.start()

    def _recv(self):
        """One multipart message as a list of bytes, or None on timeout."""
        frames = []
        while True:
            msg = _ZmqMsg()
            self.zmq.zmq_msg_init(ctypes.byref(msg))
            n = self.zmq.zmq_msg_recv(ctypes.byref(msg), self.sock, 0)
            if n < 0:
                self.zmq.zmq_msg_close(ctypes.byref(msg))
                if frames:
                    continue    # the rest of a message arrives at once
                return None
            size = self.zmq.zmq_msg_size(ctypes.byref(msg))
            frames.append(ctypes.string_at(
                self.zmq.zmq_msg_data(ctypes.byref(msg)), size))
            more = self.zmq.zmq_msg_more(ctypes.byref(msg))
            self.zmq.zmq_msg_close(ctypes.byref(msg))
            if not more:
                return frames

    def _run(self):
        while not self.stopped:
            frames = self._recv()
            if not frames or len(frames) < 2 or frames[0] != b"stats":
                continue
            try:
                body = json.loads(frames[1].decode("utf-8"))
            except ValueError:
                continue
            with self.cond:
                self.latest = body
                self.count += 1
                self.cond.notify_all()

    def wait_stats(self, predicate, timeout, what="stats"):
        """Wait for a stats event received after this call that satisfies
        `predicate`; returns it.  Raises AssertionError with the last
        event seen on timeout."""
        deadline = time.monotonic() + timeout
        with self.cond:
            seen = self.count
            while True:
                if self.count > seen:
                    seen = self.count
                    if predicate(self.latest):
                        return self.latest
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        "no stats event with %s within %.1fs; last: %s" % (
                            what, timeout, self.brief(self.latest)))
                self.cond.wait(remaining)

    @staticmethod
    def brief(stats):
        if not stats:
            return None
        keys = ("agents", "requests", "waiting", "edges", "timers",
                "requests_started", "requests_finished", "malformed",
                "unexpected", "unknown_edge")
        return {k: stats.get(k) for k in keys}

    def close(self):
        self.stopped = True
        self.thread.join(5)
        self.zmq.zmq_close(self.sock)
        self.zmq.zmq_ctx_term(self.ctx)


def tables_idle(agents=0, edges=None):
    """A stats predicate: no request in flight or waiting, `agents` agents
    and (when given) `edges` edges."""
    def pred(s):
        return (s["requests"] == 0 and s["waiting"] == 0
                and s["agents"] == agents
                and (edges is None or s["edges"] == edges))
    return pred


# --------------------------------------------------------------------------
#  Memory

def rss_kib(pid):
    """VmRSS of process `pid` in KiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


def assert_no_growth(test, name, rss_round1, rss_round2, slack_kib):
    """Two rounds of the same load: the second must not need more memory
    than the first plus `slack_kib` (glibc keeps freed memory, so "back to
    the start" is not the test; "no growth per round" is)."""
    grew = rss_round2 - rss_round1
    sys.stderr.write("  rss %s: %d -> %d KiB\n" % (name, rss_round1,
                                                   rss_round2))
    test.assertLessEqual(
        grew, slack_kib,
        "%s: RSS grew by %d KiB between two rounds of the same load "
        "(%d -> %d KiB, tolerance %d KiB)" % (name, grew, rss_round1,
                                               rss_round2, slack_kib))


# --------------------------------------------------------------------------
#  Load

class Load:
    """`threads` client threads; thread i calls targets[i % len(targets)]
    `calls` times through stubs[i % len(stubs)], each call with `deadline`
    seconds.  `on_call(i, j)` may return a dict of extra keyword arguments
    for tether_e2e.call (call, payload, metadata, headers)."""

    def __init__(self, stubs, targets, threads=50, calls=10, deadline=10.0,
                 call="echo", payload=b"ping", on_call=None):
        self.stubs = stubs
        self.targets = targets
        self.threads_n = threads
        self.calls = calls
        self.deadline = deadline
        self.call = call
        self.payload = payload
        self.on_call = on_call
        self.lock = threading.Lock()
        self.results = []           # (target, Result)
        self.errors = []            # exceptions raised in threads
        self.threads = []
        self.started_at = None

    def start(self):
        self.started_at = time.monotonic()
        for i in range(self.threads_n):
            t = threading.Thread(target=self._run, args=(i,), daemon=True,
                                 name="client-%d" % i)
            self.threads.append(t)
            t.start()
        return self

    def _run(self, i):
        stub = self.stubs[i % len(self.stubs)]
        target = self.targets[i % len(self.targets)]
        for j in range(self.calls):
            kwargs = {"call": self.call, "payload": self.payload}
            if self.on_call:
                kwargs.update(self.on_call(i, j) or {})
            try:
                r = e2e.call(stub, target, timeout=self.deadline,
                             wait_for_ready=False, **kwargs)
            except Exception as e:  # noqa: BLE001 - reported by join()
                with self.lock:
                    self.errors.append(repr(e))
                return
            with self.lock:
                self.results.append((target, r))

    def join(self, test, bound):
        """Wait at most `bound` seconds (from now) for every thread; fail
        `test` naming the threads still running.  Then check that no call
        outlived its deadline by more than SLACK_S."""
        end = time.monotonic() + bound
        for t in self.threads:
            t.join(max(0.0, end - time.monotonic()))
        hung = [t.name for t in self.threads if t.is_alive()]
        sys.stderr.write("\n  load: %d calls in %.1fs, %s, slowest %.2fs\n" % (
            len(self.results), time.monotonic() - self.started_at,
            {c.name: n for c, n in self.codes().items()},
            max([r.elapsed for _, r in self.results] or [0])))
        test.assertEqual(hung, [], "client threads still running %.1fs "
                         "after the bound: calls hang" % bound)
        test.assertEqual(self.errors, [], "client threads raised")
        late = [r for _, r in self.results
                if r.elapsed > self.deadline + SLACK_S]
        test.assertEqual(late, [], "calls outlived their deadline")
        test.assertEqual(len(self.results), self.threads_n * self.calls)
        return self

    def codes(self):
        out = {}
        for _, r in self.results:
            out[r.code] = out.get(r.code, 0) + 1
        return out

    def assert_codes(self, test, allowed):
        bad = [r for _, r in self.results if r.code not in allowed]
        test.assertEqual(bad[:5], [], "unexpected statuses (%d in all; "
                         "histogram %s)" % (len(bad), self.codes()))


# --------------------------------------------------------------------------
#  Agents

class BigAgent(e2e.Agent):
    """An agent that also answers `big`: headers count (messages) and size
    (bytes per message)."""

    def _answer(self, req):
        if req.call == "big":
            count = int(req.headers.get("count", "1"))
            size = int(req.headers.get("size", "1024"))
            chunk = b"x" * size
            return (e2e.pb.AgentResponse(payload=chunk)
                    for _ in range(count))
        return super()._answer(req)


# --------------------------------------------------------------------------
#  Test case

class FaultTestCase(e2e.GatewayTestCase):
    """A fresh external router (with a monitor) and EDGES edges per test.
    Ends by checking that the router's tables hold no request, and that
    every process exits cleanly."""

    EXTERNAL = True
    EDGES = 2
    CORE_ARGS = ("--heartbeat", HEARTBEAT, "--edge-liveness", LIVENESS)
    EDGE_ARGS = ("--heartbeat", HEARTBEAT, "--router-liveness", LIVENESS)
    ROUTER_ARGS = ("--stats-interval", STATS_INTERVAL)

    @classmethod
    def setUpClass(cls):
        e2e.load_stubs()

    @classmethod
    def tearDownClass(cls):
        pass

    def setUp(self):
        super().setUp()
        self.gw = self.make_gateway()
        self.monitor = Monitor(self.gw.monitor_port)
        #   The first stats event proves the monitor is connected.
        self.monitor.wait_stats(lambda s: True, 10, "anything")

    def tearDown(self):
        try:
            super().tearDown()      # closes the agents
        finally:
            self.monitor.close()
            unclean = self.gw.close()
        self.assertEqual(unclean, [], "processes did not exit cleanly")

    def agent(self, agent_id=None, edge=0, labels=None, subscribe=True,
              cls=BigAgent):
        a = cls(self.gw.edges[edge], agent_id or self.unique("dev"), labels)
        self.agents.append(a)
        if subscribe:
            a.subscribe()
        return a

    def wait_idle(self, agents=0, edges=None, timeout=None):
        """Wait for the router to report no request in flight or waiting,
        `agents` agents (and `edges` edges); returns the stats."""
        timeout = timeout or (LIVENESS_S + SLACK_S)
        return self.monitor.wait_stats(
            tables_idle(agents, edges), timeout,
            "requests=0 waiting=0 agents=%d edges=%s" % (agents, edges))
