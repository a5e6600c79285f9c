#!/usr/bin/python3
"""e2e_cli - end-to-end tests of the `tether` command line and libtether.

Real processes only: an edge (tether-edge from the build tree, or
fake_edge.py with --fake), `tether agent` and `tether call` /
`tether agents` / `tether health`.  Every wait is on an event: a log line,
a process ending (a pidfd), a line of output, or the gateway itself
parking a call until an agent subscribes (x-wait-for-agent-ms); nothing
sleeps or polls to order events.

    e2e_cli.py --tether PATH (--edge-bin PATH | --fake fake_edge.py) [unittest args]
"""

import argparse
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

TETHER = None
EDGE_CMD = None
EXAMPLE = None


#   Every Proc announces each line of output here, so a test can wait for
#   a condition over the output of several processes at once.
LINES = threading.Condition()


def wait_lines(predicate, timeout, what="condition"):
    """Wait until predicate() (over process output) holds; returns it."""
    with LINES:
        if not LINES.wait_for(predicate, timeout):
            raise AssertionError("timed out after %.1fs waiting for %s"
                                 % (timeout, what))
        return predicate()


def wait_exit(pid, timeout):
    """Wait for process `pid` (any, not only a child) to end; True if it
    did within timeout seconds.  A pidfd turns readable when it exits."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], timeout)[0])
    finally:
        os.close(fd)


class Proc:
    """A child process whose stderr is collected line by line."""

    def __init__(self, argv, name):
        self.name = name
        self.lines = []
        self.cond = LINES
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if os.environ.get("TETHER_E2E_VERBOSE"):
                sys.stderr.write("[%s] %s\n" % (self.name, line))
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()

    def wait_line(self, pattern, timeout=10.0, start=0):
        """Wait for a stderr line matching pattern; returns the match."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for line in self.lines[start:]:
                    m = regex.search(line)
                    if m:
                        return m
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None
                                 and not self.thread.is_alive()):
                    raise AssertionError("%s: no line matching %r in:\n%s" % (
                        self.name, pattern, "\n".join(self.lines[-30:])))
                self.cond.wait(left)

    def count(self, pattern):
        regex = re.compile(pattern)
        with self.cond:
            return sum(1 for line in self.lines if regex.search(line))

    def stop(self, timeout=10.0):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.thread.join(5)
        self.proc.stderr.close()
        return self.proc.returncode


class Edge:
    def __init__(self, port=0):
        self.proc = Proc(EDGE_CMD + ["--listen", "127.0.0.1:%d" % port], "edge")
        m = self.proc.wait_line(r"listen=(\S+):(\d+)", timeout=20)
        self.port = int(m.group(2))
        self.address = "127.0.0.1:%d" % self.port

    def stop(self):
        return self.proc.stop()


def tether(*args, timeout=20, stdin=None):
    """Run the CLI; returns (exit code, stdout bytes, stderr text)."""
    p = subprocess.run([TETHER] + list(args), input=stdin,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")


def listed(edge, agent_id):
    rc, out, _ = tether("agents", "--json", "--prefix", agent_id,
                        "--edge", edge.address)
    if rc != 0:
        return None
    for line in out.decode().splitlines():
        entry = json.loads(line)
        if entry["agent_id"] == agent_id:
            return entry
    return None


HANDLERS = {
    #   Streams three chunks, each after the test says go: one line on
    #   the FIFO $dir/go per chunk (read blocks until the test writes).
    "stream": """#!/bin/sh
dir=$(cat)
exec 3<"$dir/go"
for i in 1 2 3; do
    echo "chunk $i"
    read -r _ <&3 || exit 1
done
""",
    #   Records its pid and its child's, then waits forever.
    "slow": """#!/bin/sh
dir=$(cat)
sleep 600 &
echo $! > "$dir/child.pid"
echo $$ > "$dir/shell.pid"
wait
""",
    "fail": "#!/bin/sh\necho failing\nexit 15\n",
    "env": "#!/bin/sh\necho \"$TETHER_CALL $TETHER_HEADER_X_MODE\"\n",
}


class CliTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="tether-cli-e2e-")
        os.mkfifo(os.path.join(self.tmp, "go"))
        self.handlers = os.path.join(self.tmp, "handlers")
        os.mkdir(self.handlers)
        for name, text in HANDLERS.items():
            path = os.path.join(self.handlers, name)
            with open(path, "w") as f:
                f.write(text)
            os.chmod(path, 0o755)
        self.procs = []
        self.edge = Edge()
        self.procs.append(self.edge)

    def tearDown(self):
        problems = []
        for p in reversed(self.procs):
            rc = p.stop()
            if isinstance(p, Proc):     # our agents: clean exit, no reports
                bad = [x for x in p.lines if "Sanitizer" in x
                       or "runtime error" in x]
                if rc != 0 or bad:
                    problems.append("%s exited %s %s" % (p.name, rc, bad[:5]))
        shutil.rmtree(self.tmp, True)
        self.assertEqual(problems, [])

    def agent(self, agent_id, *extra, edge=None):
        argv = [TETHER, "agent", "--id", agent_id, "--edge",
                edge or self.edge.address, "--handlers", self.handlers,
                "--backoff-initial", "100ms", "--backoff-max", "1s",
                "--label", "role=test"] + list(extra)
        p = Proc(argv, "agent " + agent_id)
        self.procs.append(p)
        return p

    def connected(self, agent_id, edge=None):
        """Wait until agent_id is routable, then return its ListAgents entry.

        The gateway itself parks a call until the agent subscribes
        (--wait-for-agent); any answer from the agent, even UNIMPLEMENTED
        for this unknown call, proves the router routes to it."""
        address = (edge or self.edge).address
        rc, _, err = tether("call", agent_id, "probe", "--wait-for-agent",
                            "15s", "--timeout", "20s", "--edge", address,
                            timeout=30)
        self.assertNotIn(rc, (14, 15, 24),     # DEADLINE, NOT_FOUND, UNAVAILABLE
                         "agent %s never became routable: %s" % (agent_id, err))
        entry = listed(edge or self.edge, agent_id)
        self.assertIsNotNone(entry, "agent %s routable but not listed" % agent_id)
        return entry

    def new_id(self):
        return "dev-" + uuid.uuid4().hex[:8]

    def test_health(self):
        rc, out, _ = tether("health", "--edge", self.edge.address)
        self.assertEqual(rc, 0)
        self.assertEqual(out.strip(), b"SERVING")

    def test_echo_and_agents(self):
        aid = self.new_id()
        self.agent(aid)
        entry = self.connected(aid)
        self.assertEqual(entry["labels"], {"role": "test"})
        self.assertGreater(entry["session"], 0)
        rc, out, err = tether("call", aid, "echo", "--data", "hello world",
                              "--edge", self.edge.address)
        self.assertEqual((rc, out), (0, b"hello world"), err)
        rc, out, err = tether("call", aid, "echo", "-", "--edge",
                              self.edge.address, stdin=b"\x00\x01binary")
        self.assertEqual((rc, out), (0, b"\x00\x01binary"), err)
        rc, out, _ = tether("call", aid, "ping", "--json", "--edge",
                            self.edge.address)
        lines = [json.loads(x) for x in out.decode().splitlines()]
        self.assertEqual(lines[0]["payload"], "pong")
        self.assertEqual(lines[-1]["status"], "OK")
        rc, out, _ = tether("agents", "--edge", self.edge.address)
        self.assertEqual(rc, 0)
        self.assertIn(aid, out.decode())

    def test_agents_in_pages(self):
        stem = self.new_id() + "-"
        ids = [stem + c for c in "edcba"]
        for aid in ids:
            self.agent(aid)
        for aid in ids:
            self.connected(aid)

        def listing(*args):
            rc, out, err = tether("agents", "--json", "--prefix", stem,
                                  "--edge", self.edge.address, *args)
            self.assertEqual(rc, 0, err)
            return [json.loads(x)["agent_id"] for x in out.decode().split()]
        every = sorted(ids)
        self.assertEqual(listing(), every)
        for size in ("1", "2", "5", "6"):
            self.assertEqual(listing("--page-size", size), every, size)
        self.assertEqual(listing("--limit", "3"), every[:3])
        self.assertEqual(listing("--limit", "3", "--page-size", "2"),
                         every[:3])
        self.assertEqual(listing("--limit", "9", "--page-size", "2"), every)
        rc, out, _ = tether("agents", "--prefix", stem, "--page-size", "2",
                            "--edge", self.edge.address)
        lines = out.decode().splitlines()
        self.assertEqual(rc, 0)
        self.assertEqual(len(lines), 6)         # one header, five agents
        self.assertTrue(lines[0].startswith("ID"))
        rc, _, err = tether("agents", "--page-size", "x", "--edge",
                            self.edge.address)
        self.assertEqual(rc, 2, err)

    def test_status_mapping(self):
        aid = self.new_id()
        self.agent(aid)
        self.connected(aid)
        rc, _, err = tether("call", aid, "no-such-call", "--edge",
                            self.edge.address)
        self.assertEqual(rc, 22, err)               # 10 + UNIMPLEMENTED
        self.assertIn("UNIMPLEMENTED", err)
        rc, out, err = tether("call", aid, "fail", "--edge", self.edge.address)
        self.assertEqual((rc, out), (15, b"failing\n"), err)  # exit 15 -> NOT_FOUND
        rc, _, err = tether("call", "nobody-" + aid, "echo", "--edge",
                            self.edge.address)
        self.assertEqual(rc, 15, err)               # agent not connected
        rc, out, err = tether("call", aid, "env", "--header", "x-mode=fast",
                              "--edge", self.edge.address)
        self.assertEqual((rc, out), (0, b"env fast\n"), err)

    def test_stream_three_chunks(self):
        aid = self.new_id()
        self.agent(aid)
        self.connected(aid)
        call = subprocess.Popen(
            [TETHER, "call", aid, "stream", "--json", "--data", self.tmp,
             "--edge", self.edge.address, "--timeout", "30s"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            #   Opening the FIFO waits for the handler to open its end.
            with open(os.path.join(self.tmp, "go"), "w") as go:
                for i in (1, 2, 3):
                    line = json.loads(call.stdout.readline())
                    self.assertEqual(line["payload"], "chunk %d\n" % i)
                    go.write("go %d\n" % i)
                    go.flush()
            last = json.loads(call.stdout.readline())
            self.assertEqual(last["status"], "OK")
            self.assertEqual(call.wait(20), 0)
        finally:
            if call.poll() is None:
                call.kill()
            call.wait()
            call.stdout.close()
            call.stderr.close()

    def test_cancel_kills_handler(self):
        aid = self.new_id()
        agent = self.agent(aid)
        self.connected(aid)
        rc, _, err = tether("call", aid, "slow", "--data", self.tmp,
                            "--timeout", "1s", "--edge", self.edge.address)
        self.assertEqual(rc, 14, err)               # 10 + DEADLINE_EXCEEDED
        agent.wait_line(r"killing handler.*reason=cancelled")
        #   The handler wrote both pids when it started, before the kill.
        shell_pid = int(_read(self.tmp, "shell.pid"))
        child_pid = int(_read(self.tmp, "child.pid"))
        self.assertTrue(wait_exit(shell_pid, 10), "handler shell still runs")
        self.assertTrue(wait_exit(child_pid, 10), "handler child still runs")

    def test_max_handlers(self):
        #   Two slow handlers fill --max-handlers 2: two more calls are
        #   answered RESOURCE_EXHAUSTED at once; the agent keeps serving.
        aid = self.new_id()
        agent = self.agent(aid, "--max-handlers", "2")
        self.connected(aid)
        calls = [subprocess.Popen(
            [TETHER, "call", aid, "slow", "--data", self.tmp, "--timeout",
             "8s", "--edge", self.edge.address],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            for _ in range(4)]
        try:
            codes = []
            for c in calls:
                c.wait(30)
                codes.append(c.returncode)
        finally:
            for c in calls:
                if c.poll() is None:
                    c.kill()
                c.wait()
                c.stderr.close()
        self.assertEqual(sorted(codes), [14, 14, 18, 18])  # DEADLINE, RESOURCE_EXHAUSTED
        self.assertEqual(agent.count(r"too many handlers running"), 2)
        wait_lines(lambda: agent.count(r"handler done") == 2, 15,
                   "slow handlers killed")
        rc, out, err = tether("call", aid, "fail", "--edge", self.edge.address)
        self.assertEqual((rc, out), (15, b"failing\n"), err)
        rc, out, err = tether("call", aid, "echo", "--data", "still here",
                              "--edge", self.edge.address)
        self.assertEqual((rc, out), (0, b"still here"), err)

    def test_reconnect_after_edge_restart(self):
        aid = self.new_id()
        agent = self.agent(aid)
        self.connected(aid)
        port = self.edge.port
        self.edge.stop()
        self.procs.remove(self.edge)
        self.edge = Edge(port)
        self.procs.append(self.edge)
        self.connected(aid)
        rc, out, err = tether("call", aid, "echo", "--data", "again",
                              "--edge", self.edge.address)
        self.assertEqual((rc, out), (0, b"again"), err)
        self.assertGreaterEqual(agent.count(r"msg=connecting"), 2)

    def test_superseded_backs_off(self):
        aid = self.new_id()
        first = self.agent(aid, "--superseded-delay", "5s")
        self.connected(aid)
        second = self.agent(aid, "--superseded-delay", "5s")
        first.wait_line(r"superseded.*retry_ms=(\d+)")
        before = first.count(r"msg=connecting") + second.count(r"msg=connecting")
        #   Watch for 3 s: agents fighting in a loop would reconnect many
        #   times; backing off, each tries at most once in that window.
        try:
            wait_lines(lambda: first.count(r"msg=connecting")
                       + second.count(r"msg=connecting") > before + 2,
                       3.0, "reconnect loop")
            self.fail("agents with one id reconnect in a tight loop")
        except AssertionError as e:
            if "tight loop" in str(e):
                raise
        for line in first.lines + second.lines:
            m = re.search(r"superseded.*retry_ms=(\d+)", line)
            if m:
                self.assertGreaterEqual(int(m.group(1)), 2500)


    def test_rotation_across_edges(self):
        #   A dead address first: the agent moves on to the live one.
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            dead = "127.0.0.1:%d" % s.getsockname()[1]
        other = Edge()
        self.procs.append(other)
        aid = self.new_id()
        agent = self.agent(aid, edge="%s,%s,%s" % (dead, self.edge.address,
                                                 other.address))
        self.connected(aid)
        #   Stable (it carried a request), then its edge shuts down: the
        #   agent goes to the next edge after a short random wait (at most
        #   --rotate-delay, default 1 s), without a backoff.
        rc, out, err = tether("call", aid, "echo", "--data", "x", "--edge",
                              self.edge.address)
        self.assertEqual((rc, out), (0, b"x"), err)
        self.edge.stop()
        self.procs.remove(self.edge)
        self.connected(aid, other)
        m = agent.wait_line(r"edge went away.*retry_ms=(\d+)")
        self.assertLessEqual(int(m.group(1)), 1000)
        rc, out, err = tether("call", aid, "echo", "--data", "y", "--edge",
                              other.address)
        self.assertEqual((rc, out), (0, b"y"), err)
        self.edge = other

    def test_example_agent(self):
        if not EXAMPLE:
            self.skipTest("no --example given")
        aid = self.new_id()
        self.procs.append(Proc([EXAMPLE, aid, self.edge.address], "example"))
        entry = self.connected(aid)
        self.assertEqual(entry["labels"], {"example": "yes"})
        rc, out, err = tether("call", aid, "upper", "--data", "quiet",
                              "--edge", self.edge.address)
        self.assertEqual((rc, out), (0, b"QUIET"), err)
        rc, out, err = tether("call", aid, "count", "--data", "3", "--json",
                              "--edge", self.edge.address)
        payloads = [json.loads(x).get("payload") for x in out.decode().splitlines()]
        self.assertEqual((rc, payloads), (0, ["1\n", "2\n", "3\n", None]), err)


def _read(directory, name):
    try:
        with open(os.path.join(directory, name)) as f:
            text = f.read().strip()
            return text or None
    except OSError:
        return None


def main():
    global TETHER, EDGE_CMD, EXAMPLE
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--tether", required=True)
    parser.add_argument("--edge-bin")
    parser.add_argument("--fake")
    parser.add_argument("--example")
    args, rest = parser.parse_known_args()
    TETHER = args.tether
    EXAMPLE = args.example
    if args.edge_bin:
        #   No monitor socket: its fixed default port would collide when
        #   two copies of the tests run at once.
        EDGE_CMD = [args.edge_bin, "--monitor", ""]
    else:
        EDGE_CMD = ["/usr/bin/python3", args.fake]
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
