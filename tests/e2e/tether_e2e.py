"""tether_e2e - harness for Tether's end-to-end tests.

The tests drive real tether-edge and tether-router processes with Debian's
python3-grpcio, a gRPC implementation independent of the gateway's, so the
public protocol (proto/tether.proto, docs/protocol.md) is checked from the
outside.

What is here:
- stubs generated at start from proto/tether.proto into a temporary dir;
- Proc: a child process whose stderr is read line by line by a thread, so a
  test can wait for a log line (an event) instead of sleeping;
- Gateway: one fixture = an optional external router plus N edges;
- Agent: subscribes, answers each AgentRequest according to its `call`,
  records cancel notices and how its subscription ended;
- small helpers: call(), list_agents(), wait_until().

Synchronisation is always on events: a log line, a gRPC call completing
(with wait_for_ready and a deadline), a condition variable set by an agent
thread.  Where no event exists (an agent leaving ListAgents), wait_until
polls with a bounded deadline.
"""

import argparse
import atexit
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

if sys.executable != "/usr/bin/python3" and not os.environ.get(
        "TETHER_E2E_ANY_PYTHON"):
    sys.stderr.write("tether e2e: run these tests with /usr/bin/python3 "
                     "(Debian's grpcio)\n")

import grpc  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
PROTO_DIR = os.path.join(ROOT, "proto")

#   Set by parse_args from --edge / --router.
EDGE_BIN = None
ROUTER_BIN = None
#   Keep process logs after the run (TETHER_E2E_KEEP=1).
KEEP = bool(os.environ.get("TETHER_E2E_KEEP"))

pb = None           # tether_pb2
pb_grpc = None      # tether_pb2_grpc


# --------------------------------------------------------------------------
#  Stubs

def load_stubs():
    """Generate the Python stubs for proto/tether.proto into a temporary
    directory and import them.  Sets the module globals pb and pb_grpc."""
    global pb, pb_grpc
    if pb is not None:
        return
    out = tempfile.mkdtemp(prefix="tether-e2e-stubs-")
    atexit.register(shutil.rmtree, out, True)
    plugin = shutil.which("grpc_python_plugin") or "/usr/bin/grpc_python_plugin"
    cmd = ["protoc", "--python_out=" + out, "--grpc_out=" + out,
           "--plugin=protoc-gen-grpc=" + plugin, "-I", PROTO_DIR,
           os.path.join(PROTO_DIR, "tether.proto")]
    subprocess.run(cmd, check=True)
    sys.path.insert(0, out)
    import tether_pb2
    import tether_pb2_grpc
    pb, pb_grpc = tether_pb2, tether_pb2_grpc


def parse_args():
    """Read --edge and --router, leave the rest for unittest.  Returns the
    argv to hand to unittest.main."""
    global EDGE_BIN, ROUTER_BIN
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--edge", default=os.path.join(
        ROOT, "build", "gateway", "tether-edge"))
    parser.add_argument("--router", default=os.path.join(
        ROOT, "build", "router", "tether-router"))
    args, rest = parser.parse_known_args()
    EDGE_BIN, ROUTER_BIN = args.edge, args.router
    load_stubs()
    return [sys.argv[0]] + rest


def main():
    argv = parse_args()
    unittest.main(argv=argv, verbosity=2)


# --------------------------------------------------------------------------
#  Waiting

def wait_until(predicate, timeout, interval=0.02, what="condition"):
    """Poll `predicate` until it returns a true value or `timeout` seconds
    pass.  Returns the value; raises AssertionError on timeout.  Use only
    where no event can be waited for."""
    deadline = time.monotonic() + timeout
    last_error = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except grpc.RpcError as e:      # e.g. edge not ready yet
            last_error = e
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError("timed out after %.1fs waiting for %s%s" % (
                timeout, what,
                " (last error: %s)" % last_error if last_error else ""))
        #   A bounded poll interval, never used to order events.
        threading.Event().wait(min(interval, remaining))


def pick_port():
    """A TCP port on 127.0.0.1 that is free now, chosen at random below the
    kernel's ephemeral range.  A router killed by a test is restarted on
    the same port; outside the ephemeral range no other process's bind to
    port 0 (edges, routers of a test run next to this one) can take it in
    between.  Callers retry when the port was taken anyway."""
    low = 32768
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        pass
    for _ in range(100):
        port = random.randrange(10000, low) if low > 11000 else 0
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise AssertionError("no free port found")


# --------------------------------------------------------------------------
#  Processes

class Proc:
    """A child process.  Its stdout and stderr go to a log file, line by
    line, through a reader thread that also keeps the lines in memory and
    wakes up wait_line()."""

    def __init__(self, name, argv, logdir):
        self.name = name
        self.argv = argv
        self.log_path = os.path.join(logdir, name + ".log")
        self.lines = []
        self.cond = threading.Condition()
        self.eof = False
        self.expected_exit = False  # killed or failed on purpose
        self.forced = False         # stop() had to SIGKILL it
        self.log = open(self.log_path, "a", encoding="utf-8")
        self.log.write("$ %s\n" % " ".join(repr(a) if a == "" else a
                                           for a in argv))
        self.log.flush()
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        self.pid = self.proc.pid
        self.reader = threading.Thread(target=self._read, daemon=True,
                                       name="log-" + name)
        self.reader.start()

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self.cond:
                self.lines.append(line)
                if not self.log.closed:
                    self.log.write(line + "\n")
                    self.log.flush()
                self.cond.notify_all()
        with self.cond:
            self.eof = True
            self.cond.notify_all()

    def wait_line(self, pattern, timeout, start=0):
        """Wait for a line matching the regex `pattern` (from line index
        `start`).  Returns the re.Match.  Raises AssertionError when the
        process ends or `timeout` passes first."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        index = start
        with self.cond:
            while True:
                while index < len(self.lines):
                    m = rx.search(self.lines[index])
                    index += 1
                    if m:
                        return m
                if self.eof:
                    raise AssertionError(
                        "%s exited (%s) before logging /%s/" % (
                            self.name, self.proc.poll(), pattern))
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError("%s: no /%s/ within %.1fs" % (
                        self.name, pattern, timeout))
                self.cond.wait(remaining)

    def line_count(self):
        with self.cond:
            return len(self.lines)

    def alive(self):
        return self.proc.poll() is None

    def signal(self, sig):
        if self.proc.poll() is None:
            if sig == signal.SIGKILL:
                self.expected_exit = True
            self.proc.send_signal(sig)

    def wait(self, timeout):
        """Wait for the process to exit; returns its exit code.  Raises
        subprocess.TimeoutExpired."""
        code = self.proc.wait(timeout)
        self.reader.join(5)
        return code

    def stop(self, timeout=10):
        """SIGTERM, then SIGKILL if it lingers; always reaps.  Returns the
        exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.log_note("did not exit %ds after SIGTERM: SIGKILL" %
                              timeout)
                self.forced = True
                self.proc.kill()
                self.proc.wait()
        self.reader.join(5)
        if not self.reader.is_alive():
            self.proc.stdout.close()
        with self.cond:
            self.log.close()
        return self.proc.returncode

    def clean_exit(self):
        """True when the process exited 0, or died of a SIGKILL the test
        sent on purpose.  A sanitizer report or a crash makes it False."""
        if self.expected_exit:
            return True
        return not self.forced and self.proc.returncode == 0

    def log_note(self, text):
        with self.cond:
            if not self.log.closed:
                self.log.write("## e2e: %s\n" % text)
                self.log.flush()

    def tail(self, n=150):
        with self.cond:
            return self.lines[-n:]


# --------------------------------------------------------------------------
#  Fixture

class Gateway:
    """A running Tether: either one tether-edge with its embedded router
    (external=False), or one tether-router plus `edges` tether-edges
    connected to it (external=True).

    core_args: router core settings (--first-response-timeout ...), given to
    the router when external, else to the edge.  edge_args: given to every
    edge.  router_args: given to the external router only."""

    def __init__(self, external=False, edges=1, core_args=(), edge_args=(),
                 router_args=()):
        if external and edges < 1:
            raise ValueError("need at least one edge")
        self.external = external
        self.core_args = list(core_args)
        self.edge_args = list(edge_args)
        self.router_args = list(router_args)
        self.logdir = tempfile.mkdtemp(prefix="tether-e2e-")
        self.procs = []             # every Proc started, for logs
        self.router = None
        self.router_port = None
        self.monitor_port = None
        self.edges = []             # Edge objects, in start order
        self.channels = []
        try:
            if external:
                self.start_router()
            for _ in range(edges):
                self.start_edge()
        except BaseException:
            self.dump_logs()
            self.close()
            raise

    #   -- router --

    def start_router(self, port=None, monitor_port=None, attempts=10):
        """Start tether-router on `port` and `monitor_port`, or on ports
        picked by pick_port when None (retrying with new ones when a pick
        was taken meanwhile).  Returns the Proc once it logs "router
        listening"."""
        for attempt in range(attempts):
            rport = port or pick_port()
            mport = monitor_port or pick_port()
            argv = [ROUTER_BIN, "--bind", "tcp://127.0.0.1:%d" % rport,
                    "--monitor", "tcp://127.0.0.1:%d" % mport] \
                + self.core_args + self.router_args
            proc = Proc("router-%d" % len(self.procs), argv, self.logdir)
            self.procs.append(proc)
            try:
                proc.wait_line(r'msg="router listening"', 20)
            except AssertionError:
                if proc.alive() or attempt + 1 == attempts:
                    proc.stop()
                    raise
                #   It could not bind: expected when a port was taken.
                proc.stop()
                proc.expected_exit = True
                continue
            self.router = proc
            self.router_port, self.monitor_port = rport, mport
            return proc

    def kill_router(self, sig=signal.SIGKILL):
        self.router.signal(sig)
        self.router.wait(10)

    def restart_router(self):
        """Start the router again on the same ports (the old one must be
        dead)."""
        return self.start_router(self.router_port, self.monitor_port,
                                 attempts=3)

    #   -- edges --

    def start_edge(self, extra=()):
        argv = [EDGE_BIN, "--listen", "127.0.0.1:0"] + self.edge_args \
            + list(extra)
        if self.external:
            argv += ["--router", "tcp://127.0.0.1:%d" % self.router_port]
        else:
            argv += ["--monitor", ""] + self.core_args
        proc = Proc("edge-%d" % len(self.procs), argv, self.logdir)
        self.procs.append(proc)
        m = proc.wait_line(r'msg="edge listening".*listen=\S*:(\d+)', 20)
        edge = Edge(proc, int(m.group(1)))
        self.edges.append(edge)
        self.channels.append(edge.channel)
        #   Ready when a ListAgents, which needs the router, answers.
        wait_until(lambda: edge.list_agents(timeout=2) is not None, 20,
                   what="%s to answer ListAgents" % proc.name)
        return edge

    def channel(self, index=0, **options):
        """A new channel to edge `index` (closed at teardown)."""
        ch = self.edges[index].new_channel(**options)
        self.channels.append(ch)
        return ch

    def stub(self, index=0):
        return self.edges[index].stub

    #   -- teardown --

    def dump_logs(self, out=None):
        out = out or sys.stderr
        for proc in self.procs:
            out.write("----- %s (%s) exit=%s log=%s -----\n" % (
                proc.name, proc.pid, proc.proc.poll(), proc.log_path))
            for line in proc.tail():
                out.write("  " + line + "\n")
        out.flush()

    def close(self):
        """Close channels, stop every process (SIGTERM then SIGKILL) and
        reap it.  Returns a list of "name: exit code" for the processes
        that did not exit cleanly (see Proc.clean_exit); their logs are
        printed."""
        for ch in self.channels:
            ch.close()
        self.channels = []
        unclean = []
        for proc in reversed(self.procs):
            code = proc.stop()
            if not proc.clean_exit():
                unclean.append("%s: exit %s%s" % (
                    proc.name, code, " (SIGKILLed at teardown)"
                    if proc.forced else ""))
        if unclean:
            sys.stderr.write("\n===== unclean exits: %s =====\n" %
                             ", ".join(unclean))
            self.dump_logs()
        if not KEEP:
            shutil.rmtree(self.logdir, True)
        return unclean


class Edge:
    """One tether-edge: its process, port, and a default channel/stub."""

    def __init__(self, proc, port):
        self.proc = proc
        self.port = port
        self.target = "127.0.0.1:%d" % port
        self.channel = self.new_channel()
        self.stub = pb_grpc.AgentGatewayStub(self.channel)

    def new_channel(self, **options):
        opts = [("grpc.max_receive_message_length", 64 << 20),
                ("grpc.max_send_message_length", 64 << 20),
                #   Own connection per channel: agents that must look like
                #   distinct devices do not share one TCP connection.
                ("grpc.use_local_subchannel_pool", 1),
                #   Loopback only, whatever http_proxy says.
                ("grpc.enable_http_proxy", 0)]
        opts += list(options.items())
        return grpc.insecure_channel(self.target, options=opts)

    def list_agents(self, prefix="", limit=0, timeout=5):
        resp = self.stub.ListAgents(
            pb.ListAgentsRequest(prefix=prefix, limit=limit),
            timeout=timeout, wait_for_ready=True)
        return list(resp.agents)


# --------------------------------------------------------------------------
#  Client helpers

class Result:
    """The outcome of one AgentRequestPublish: the response messages, the
    final status code and details, and how long it took."""

    def __init__(self, messages, code, details, elapsed):
        self.messages = messages
        self.code = code
        self.details = details
        self.elapsed = elapsed

    @property
    def payloads(self):
        return [m.payload for m in self.messages]

    def __repr__(self):
        return "Result(code=%s, details=%r, messages=%d, elapsed=%.3f)" % (
            self.code, self.details, len(self.messages), self.elapsed)


def request(agent_id, call="echo", payload=b"", headers=None, id=""):
    return pb.AgentRequest(id=id, agent_id=agent_id, call=call,
                           payload=payload, headers=headers or {})


def call(stub, agent_id, call="echo", payload=b"", headers=None, id="",
         timeout=10, metadata=None, wait_for_ready=True):
    """Call an agent and read the whole response stream.  Returns a
    Result (never raises grpc.RpcError)."""
    start = time.monotonic()
    messages = []
    it = stub.AgentRequestPublish(
        request(agent_id, call, payload, headers, id), timeout=timeout,
        metadata=metadata, wait_for_ready=wait_for_ready)
    try:
        for m in it:
            messages.append(m)
        code, details = it.code(), it.details()
    except grpc.RpcError as e:
        code, details = e.code(), e.details()
    return Result(messages, code, details, time.monotonic() - start)


# --------------------------------------------------------------------------
#  Agent

class Agent:
    """A device agent.  subscribe() opens AgentRequestSubscribe; a thread
    reads AgentRequests and answers each on its own AgentResponsePublish
    call, according to the request's `call`:

      echo          one message with the request's payload
      stream        int(payload) messages, payload b"0", b"1", ...
      fail          headers "data" (optional) as one message, then a
                    message with status_code int(headers["code"]) and
                    status_message headers["message"]
      never         no answer at all
      slow          int(headers["count"]) messages (default unbounded)
                    every int(headers["delay_ms"]) ms, stopping when the
                    gateway cancels the request
      echo-in-body  like echo, but names the request by the first
                    message's request_id instead of x-request-id metadata

    It records every request seen, every cancel notice, the status each
    response call ended with, and how the subscription ended."""

    def __init__(self, edge, agent_id, labels=None):
        self.edge = edge
        self.agent_id = agent_id
        self.labels = dict(labels or {})
        self.channel = edge.new_channel()
        self.stub = pb_grpc.AgentGatewayStub(self.channel)
        self.cond = threading.Condition()
        self.requests = {}          # id -> AgentRequest
        self.order = []             # ids in arrival order
        self.cancelled = set()      # ids with a cancel notice
        self.responses = {}         # id -> grpc.StatusCode of the answer
        self.end_code = None        # subscription's final status
        self.end_details = None
        self.ended = False
        self.sub = None
        self.thread = None

    def subscribe(self, wait=True, timeout=10):
        """Open the subscription.  With `wait`, return once ListAgents on
        the agent's own edge shows it (the router accepted it)."""
        self.sub = self.stub.AgentRequestSubscribe(
            pb.SubscriberInfo(agent_id=self.agent_id, labels=self.labels),
            wait_for_ready=True)
        self.thread = threading.Thread(target=self._run, daemon=True,
                                       name="agent-" + self.agent_id)
        self.thread.start()
        if wait:
            self.wait_listed(timeout)
        return self

    def wait_listed(self, timeout=10, edge=None):
        """Wait until ListAgents (on `edge`, default the agent's own) shows
        this agent; returns its AgentInfo."""
        edge = edge or self.edge

        def listed():
            if self.ended:
                raise AssertionError("subscription of %s ended: %s %s" % (
                    self.agent_id, self.end_code, self.end_details))
            for a in edge.list_agents(prefix=self.agent_id, timeout=2):
                if a.agent_id == self.agent_id:
                    return a
            return None
        return wait_until(listed, timeout, what="%s in ListAgents" %
                          self.agent_id)

    def _run(self):
        code, details = grpc.StatusCode.OK, ""
        try:
            for req in self.sub:
                self._on_request(req)
            code, details = self.sub.code(), self.sub.details()
        except grpc.RpcError as e:
            code, details = e.code(), e.details()
        except Exception as e:      # a broken test helper must be seen
            code, details = None, "agent thread: %r" % e
        with self.cond:
            self.end_code, self.end_details = code, details
            self.ended = True
            self.cond.notify_all()

    def _on_request(self, req):
        with self.cond:
            if req.cancel:
                self.cancelled.add(req.id)
                self.cond.notify_all()
                return
            self.requests[req.id] = req
            self.order.append(req.id)
            self.cond.notify_all()
        if req.call == "never":
            return
        gen = self._answer(req)
        if gen is None:
            return
        body_id = req.call == "echo-in-body"
        metadata = None if body_id else [("x-request-id", req.id)]
        fut = self.stub.AgentResponsePublish.future(
            gen, metadata=metadata, timeout=60)
        fut.add_done_callback(lambda f, rid=req.id: self._on_answered(rid, f))

    def _answer(self, req):
        """The response messages for `req`, as a generator."""
        call = req.call
        if call == "echo":
            return iter([pb.AgentResponse(payload=req.payload)])
        if call == "echo-in-body":
            return iter([pb.AgentResponse(request_id=req.id,
                                          payload=req.payload)])
        if call == "stream":
            n = int(req.payload or b"0")
            return (pb.AgentResponse(payload=str(i).encode())
                    for i in range(n))
        if call == "fail":
            msgs = []
            if "data" in req.headers:
                msgs.append(pb.AgentResponse(
                    payload=req.headers["data"].encode()))
            msgs.append(pb.AgentResponse(
                status_code=int(req.headers.get("code", "2")),
                status_message=req.headers.get("message", "")))
            return iter(msgs)
        if call == "slow":
            return self._slow(req)
        return iter([pb.AgentResponse(status_code=12,
                                      status_message="unknown call")])

    def _slow(self, req):
        count = int(req.headers.get("count", "0")) or None
        delay = int(req.headers.get("delay_ms", "50")) / 1000.0
        i = 0
        while count is None or i < count:
            yield pb.AgentResponse(payload=str(i).encode())
            i += 1
            with self.cond:
                #   The agent's pace, not synchronisation: a cancel notice
                #   wakes it at once.
                if self.cond.wait_for(lambda: req.id in self.cancelled,
                                      delay):
                    return

    def _on_answered(self, rid, fut):
        try:
            fut.result()
            code = grpc.StatusCode.OK
        except grpc.RpcError as e:
            code = e.code()
        except Exception:   # noqa: BLE001 - CancelledError and friends
            code = grpc.StatusCode.CANCELLED
        with self.cond:
            self.responses[rid] = code
            self.cond.notify_all()

    #   -- waiting on the agent --

    def _wait(self, predicate, timeout, what):
        with self.cond:
            if not self.cond.wait_for(predicate, timeout):
                raise AssertionError("agent %s: timed out after %.1fs "
                                     "waiting for %s" % (self.agent_id,
                                                         timeout, what))

    def wait_request(self, count=1, timeout=10):
        """Wait until `count` requests arrived; returns their ids."""
        self._wait(lambda: len(self.order) >= count, timeout,
                   "%d request(s)" % count)
        with self.cond:
            return list(self.order)

    def wait_cancel(self, rid, timeout=10):
        self._wait(lambda: rid in self.cancelled, timeout,
                   "cancel notice for %s" % rid)

    def wait_answered(self, rid, timeout=10):
        """Wait until the response call for `rid` ended; returns its code."""
        self._wait(lambda: rid in self.responses, timeout,
                   "response call of %s to end" % rid)
        with self.cond:
            return self.responses[rid]

    def wait_ended(self, timeout=10):
        """Wait until the subscription ended; returns (code, details)."""
        self._wait(lambda: self.ended, timeout, "the subscription to end")
        return self.end_code, self.end_details

    def close(self):
        """Cancel the subscription and close the channel."""
        if self.sub is not None:
            self.sub.cancel()
        self.channel.close()
        if self.thread is not None:
            self.thread.join(10)


# --------------------------------------------------------------------------
#  Test case base

class GatewayTestCase(unittest.TestCase):
    """One Gateway per test class (cls.gw), made by cls.make_gateway();
    agents made with self.agent() are closed after each test.  On a failure
    the processes' logs are printed."""

    EXTERNAL = False
    EDGES = 1
    CORE_ARGS = ()
    EDGE_ARGS = ()
    ROUTER_ARGS = ()

    gw = None
    _serial = 0

    @classmethod
    def make_gateway(cls):
        return Gateway(external=cls.EXTERNAL, edges=cls.EDGES,
                       core_args=cls.CORE_ARGS, edge_args=cls.EDGE_ARGS,
                       router_args=cls.ROUTER_ARGS)

    @classmethod
    def setUpClass(cls):
        cls.gw = cls.make_gateway()

    @classmethod
    def tearDownClass(cls):
        if cls.gw is not None:
            unclean = cls.gw.close()
            cls.gw = None
            if unclean:
                raise AssertionError("processes did not exit cleanly: " +
                                     ", ".join(unclean))

    def setUp(self):
        self.agents = []

    def tearDown(self):
        for a in self.agents:
            a.close()

    def run(self, result=None):
        before = 0
        if result is not None:
            before = len(result.failures) + len(result.errors)
        outcome = super().run(result)
        if result is not None and self.gw is not None and \
                len(result.failures) + len(result.errors) > before:
            sys.stderr.write("\n===== process logs for %s =====\n" %
                             self.id())
            self.gw.dump_logs()
        return outcome

    def unique(self, stem):
        """An agent id unique within this process."""
        GatewayTestCase._serial += 1
        return "%s-%d-%d" % (stem, os.getpid(), GatewayTestCase._serial)

    def agent(self, agent_id=None, edge=0, labels=None, subscribe=True):
        a = Agent(self.gw.edges[edge], agent_id or self.unique("dev"),
                  labels)
        self.agents.append(a)
        if subscribe:
            a.subscribe()
        return a

    def stub(self, edge=0):
        return self.gw.edges[edge].stub
