#!/usr/bin/python3
"""The docker-compose.yml topology, without Docker.

Reads docker-compose.yml and starts the services built from the Tether
image (router, the edge replicas, the exporter, the demo agents) as
separate processes, with the same commands and the same environment
entries, through the same entry point (deploy/entrypoint.sh) with the
binaries on PATH, as the image does.  Then it checks what docs/deploy.md
promises:

1. an agent on edge 1 and an agent on edge 2 are both reachable from a
   client on either edge;
2. a third edge started at runtime (`--scale edge=3`) serves at once;
3. draining edge 1 (SIGTERM) moves its agent to another edge, and no
   request fails beyond those in flight on edge 1;
4. the exporter (when built) follows: agents connected, edges up.

Network: when the machine allows it, each service runs in a network
namespace of its own (like a container), all joined by a bridge that lives
in one more namespace, on the private subnet 10.77.0.0/24, which exists
only on interfaces this test creates inside those namespaces.  So every
edge listens on 0.0.0.0:50051 and the router on tcp://*:7100 exactly as
in the compose file, and two runs at once cannot clash.  Service names are
resolved the way Docker's DNS does: `router` to its address, `edge` to
every edge (in a rotated order per agent, as Docker's DNS shuffles it).
Namespace names carry the test's pid and are deleted at the end (and
leftovers of killed runs, whose pid is gone, at the start).  When
namespaces cannot be made, every service runs on 127.0.0.1 with ports
picked at runtime instead, and the test says so.

Usage: test_topology.py --compose FILE --edge BIN --router BIN --tether BIN
                        [--exporter BIN] [unittest args]
Exit code 77 (skipped) when PyYAML is missing.
"""

import argparse
import json
import os
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

try:
    import yaml
except ImportError:     # python3-yaml (scripts/deps.sh installs it)
    print("SKIP: PyYAML (python3-yaml) is not installed")
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
SUBNET = "10.77.0"
NS_PREFIX = "tdeploy-"
#   Exporter metric names (docs/monitoring.md).
M_AGENTS = "tether_agents_connected"
M_EDGES = "tether_edges_up"
M_ROUTER_UP = "tether_router_up"
M_BY_EDGE = "tether_agents_by_edge"
#   Bounded waits, seconds.  Generous: the machine may be loaded.
START_S = 30
MOVE_S = 20
CALL_TIMEOUT = "20s"

ARGS = None


def note(text):
    sys.stderr.write("tests/deploy: %s\n" % text)
    sys.stderr.flush()


def wait_until(predicate, timeout, what, interval=0.05):
    """Poll `predicate` until it returns a true value, at most `timeout`
    seconds.  Used only where there is no event to wait for."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError("timed out after %ss waiting for %s"
                                 % (timeout, what))
        threading.Event().wait(min(interval, remaining))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------
#  The compose file

def interpolate(value):
    """Compose's ${VAR:-default} and ${VAR}, with defaults only: the test
    runs the file as shipped, whatever the caller's environment holds."""
    if not isinstance(value, str):
        return value

    def sub(m):
        return m.group(2) if m.group(2) is not None else ""
    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}", sub,
                  value).replace("$$", "$")


def load_compose(path):
    with open(path, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    services = {}
    for name, svc in doc["services"].items():
        image = interpolate(svc.get("image", ""))
        if "build" not in svc and not image.startswith("tether"):
            continue            # not ours (prometheus, lb)
        if "lb" in svc.get("profiles", []):
            continue
        env = svc.get("environment") or {}
        if isinstance(env, list):
            env = dict(e.split("=", 1) for e in env)
        mounts = {}
        for vol in svc.get("volumes") or []:
            parts = vol.split(":")
            src = os.path.normpath(os.path.join(os.path.dirname(path),
                                                parts[0]))
            mounts[parts[1]] = src
        services[name] = {
            "command": [interpolate(str(c)) for c in svc["command"]],
            "env": {k: interpolate(str(v)) for k, v in env.items()},
            "mounts": mounts,
            "replicas": (svc.get("deploy") or {}).get("replicas", 1),
            "depends_on": list(svc.get("depends_on") or []),
        }
    return services


# --------------------------------------------------------------------------
#  Networks: one namespace per service, or loopback

def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Netns:
    """A bridge in a hub namespace, and one namespace per host with an
    eth0 on the bridge.  Nothing is added to the caller's namespace."""

    mode = "netns"

    def __init__(self):
        self.run = "%s%d-" % (NS_PREFIX, os.getpid())
        self.names = []
        self.ips = {}
        self.next_ip = 2
        self.sweep()
        self.hub = self._ns_add("hub")
        self._ip(["-n", self.hub, "link", "add", "br0", "type", "bridge"])
        self._ip(["-n", self.hub, "link", "set", "br0", "up"])

    @staticmethod
    def _ip(argv):
        subprocess.run(["ip"] + argv, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)

    @staticmethod
    def sweep():
        """Delete namespaces left by runs that were killed (their pid is
        gone).  Only names of this test's own pattern are touched."""
        out = subprocess.run(["ip", "netns", "list"], capture_output=True,
                             text=True).stdout
        for line in out.splitlines():
            m = re.match(r"(%s(\d+)-\S+)" % re.escape(NS_PREFIX), line)
            if m and not pid_alive(int(m.group(2))):
                subprocess.run(["ip", "netns", "del", m.group(1)],
                               stderr=subprocess.DEVNULL)

    def _ns_add(self, name):
        ns = self.run + name
        self._ip(["netns", "add", ns])
        self.names.append(ns)
        return ns

    def add_host(self, name):
        ns = self._ns_add(name)
        ip = "%s.%d" % (SUBNET, self.next_ip)
        port = "v%d" % self.next_ip
        self.next_ip += 1
        self._ip(["-n", self.hub, "link", "add", port, "type", "veth",
                  "peer", "name", "eth0", "netns", ns])
        self._ip(["-n", self.hub, "link", "set", port, "master", "br0", "up"])
        self._ip(["-n", ns, "addr", "add", ip + "/24", "dev", "eth0"])
        self._ip(["-n", ns, "link", "set", "eth0", "up"])
        self._ip(["-n", ns, "link", "set", "lo", "up"])
        self.ips[name] = ip
        return ip

    def prefix(self, host):
        return ["ip", "netns", "exec", self.run + host]

    def listen_port(self, host, port):
        return port             # every host has its own ports

    def address(self, host, port):
        return "%s:%d" % (self.ips[host], port)

    def teardown(self):
        for ns in reversed(self.names):
            subprocess.run(["ip", "netns", "del", ns],
                           stderr=subprocess.DEVNULL)
        self.names = []

    @staticmethod
    def usable():
        """Can this process make namespaces and veth pairs?  Tries once,
        with a throw-away pair of namespaces."""
        if not shutil.which("ip"):
            return "no `ip` command"
        probe = Netns.__new__(Netns)
        probe.run = "%s%d-probe-" % (NS_PREFIX, os.getpid())
        probe.names, probe.ips, probe.next_ip = [], {}, 2
        try:
            probe.hub = probe._ns_add("hub")
            probe._ip(["-n", probe.hub, "link", "add", "br0", "type",
                       "bridge"])
            probe.add_host("a")
            subprocess.run(probe.prefix("a") + ["true"], check=True,
                           stderr=subprocess.PIPE)
            return None
        except (subprocess.CalledProcessError, OSError) as e:
            err = getattr(e, "stderr", b"") or b""
            return "%s %s" % (e, err.decode(errors="replace").strip())
        finally:
            probe.teardown()


class Loopback:
    """Every host is 127.0.0.1; each (host, port) gets a free port."""

    mode = "loopback"

    def __init__(self):
        self.ports = {}

    def add_host(self, name):
        return "127.0.0.1"

    def prefix(self, host):
        return []

    def listen_port(self, host, port):
        key = (host, port)
        if key not in self.ports:
            self.ports[key] = free_port()
        return self.ports[key]

    def address(self, host, port):
        return "127.0.0.1:%d" % self.listen_port(host, port)

    def teardown(self):
        pass


# --------------------------------------------------------------------------
#  Processes

class Proc:
    """A long-lived service process.  Its output goes line by line to a
    log file and to memory, so a test can wait for a log line."""

    def __init__(self, name, argv, env, logdir):
        self.name = name
        self.lines = []
        self.cond = threading.Condition()
        self.log = open(os.path.join(logdir, name + ".log"), "w",
                        encoding="utf-8")
        self.log.write("$ %s\n" % " ".join(argv))
        for k in sorted(env):
            self.log.write("# %s=%s\n" % (k, env[k]))
        self.log.flush()
        #   --pdeathsig: the service dies with this test, even if it is
        #   killed.  Started from the main thread only (the signal follows
        #   the thread that forked).
        pre = ["setpriv", "--pdeathsig", "KILL"] if shutil.which(
            "setpriv") else []
        self.proc = subprocess.Popen(pre + argv, env=env,
                                     stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self.cond:
                self.lines.append(line)
                self.log.write(line + "\n")
                self.log.flush()
                self.cond.notify_all()
        with self.cond:
            self.lines.append(None)     # end of output
            self.cond.notify_all()

    def wait_line(self, pattern, timeout, start=0):
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        index = start
        with self.cond:
            while True:
                while index < len(self.lines):
                    line = self.lines[index]
                    index += 1
                    if line is None:
                        raise AssertionError("%s ended before logging %r"
                                             % (self.name, pattern))
                    m = rx.search(line)
                    if m:
                        return m
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError("%s: no line %r within %ss"
                                         % (self.name, pattern, timeout))
                self.cond.wait(remaining)

    def stop(self, sig=signal.SIGTERM, timeout=15):
        """Signal the process and wait for it.  Returns its exit code;
        SIGKILLs it (and fails later checks) when it does not stop."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.reader.join(5)
        return self.proc.returncode

    def close(self):
        self.stop()
        self.log.close()


# --------------------------------------------------------------------------
#  The topology

class Topology:

    def __init__(self, compose, bins, net, logdir):
        self.compose = compose
        self.net = net
        self.logdir = logdir
        self.procs = {}         # container name -> Proc
        self.edges = []         # running edge container names, in order
        self.bin_path = ":".join(sorted(
            {os.path.dirname(os.path.abspath(b)) for b in bins.values()}))
        self.entrypoint = os.path.join(ARGS.root, "deploy", "entrypoint.sh")

    # --- resolving names the way the compose network does

    def _resolve(self, value, service, host, order=0):
        """Rewrite one environment value or argument for `host`:
        mounted paths to the source tree, listen addresses to this
        network's, and service names to addresses (`edge` to every
        running edge, rotated by `order`)."""
        for target, src in self.compose[service]["mounts"].items():
            value = value.replace(target, src)

        def listen(m):
            port = self.net.listen_port(host, int(m.group(2)))
            bind = m.group(1) if self.net.mode == "netns" else "127.0.0.1"
            return "%s:%d" % (bind, port)
        value = re.sub(r"(?<![\w.])(\*|0\.0\.0\.0):(\d+)", listen, value)

        def name(m):
            svc, port = m.group(1), int(m.group(2))
            hosts = self.replicas(svc)
            if len(hosts) > 1:
                k = order % len(hosts)
                hosts = hosts[k:] + hosts[:k]
            return ",".join(self.net.address(h, port) for h in hosts)
        names = "|".join(re.escape(s) for s in self.compose)
        return re.sub(r"(?<![\w.-])(%s):(\d+)" % names, name, value)

    def replicas(self, service):
        if service == "edge":
            return list(self.edges)
        return [service]

    # --- starting services

    def start(self, service, host=None, order=0, hostname=None):
        """Start one container of `service` as host `host`: its command
        through the entry point, its environment, nothing else of ours."""
        spec = self.compose[service]
        host = host or service
        self.net.add_host(host)
        env = {"PATH": self.bin_path + ":/usr/sbin:/usr/bin:/sbin:/bin",
               "HOSTNAME": hostname or host}
        for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
            if k in os.environ:
                env[k] = os.environ[k]
        for k, v in spec["env"].items():
            env[k] = self._resolve(v, service, host, order)
        argv = [self._resolve(a, service, host, order)
                for a in spec["command"]]
        proc = Proc(host, self.net.prefix(host)
                    + ["/bin/sh", self.entrypoint] + argv, env, self.logdir)
        self.procs[host] = proc
        return proc

    def start_router(self):
        p = self.start("router")
        p.wait_line(r'msg="router listening"', START_S)

    def start_edge(self):
        host = "edge-%d" % (len(self.procs_of("edge")) + 1)
        p = self.start("edge", host, hostname="tether-" + host)
        p.wait_line(r'msg="edge listening"', START_S)
        self.edges.append(host)
        #   SERVING once the router welcomed it.
        wait_until(lambda: self.tether(["health", "--timeout", "2s"],
                                       edge=host).returncode == 0,
                   START_S, "%s SERVING" % host)
        return host

    def procs_of(self, service):
        if service == "edge":
            return [h for h in self.procs if h.startswith("edge-")]
        return [h for h in self.procs if h == service]

    def start_agent(self, service, order):
        p = self.start(service, order=order)
        p.wait_line(r"msg=subscribed", START_S)
        return p

    def edge_name(self, host):
        return "tether-" + host

    # --- clients (each in a client namespace, like `docker compose run`)

    def tether(self, argv, edge, timeout=60):
        """Run the `tether` CLI from the client host against `edge`."""
        cmd = self.net.prefix("client") + [
            "tether"] + argv + ["--edge", self.net.address(edge, 50051)]
        env = {"PATH": self.bin_path + ":/usr/sbin:/usr/bin:/sbin:/bin"}
        return subprocess.run(cmd, env=env, capture_output=True, text=True,
                              timeout=timeout)

    def call(self, agent, edge, data, wait=None):
        argv = ["call", agent, "echo", "--data", data, "--timeout",
                CALL_TIMEOUT]
        if wait:
            argv += ["--wait-for-agent", wait]
        return self.tether(argv, edge)

    def agents(self, edge):
        r = self.tether(["agents", "--json", "--timeout", "5s"], edge)
        if r.returncode != 0:
            return None
        return {a["agent_id"]: a["edge"] for a in
                (json.loads(line) for line in r.stdout.splitlines() if line)}

    def metrics(self):
        """Scrape the exporter from the client host: {sample: value},
        keyed `name` or `name{labels}` as written."""
        url = "http://%s/metrics" % self.net.address("exporter", 9464)
        code = ("import sys, urllib.request; sys.stdout.write("
                "urllib.request.urlopen(%r, timeout=5).read().decode())" % url)
        r = subprocess.run(self.net.prefix("client") + ["/usr/bin/python3",
                                                        "-c", code],
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            return None
        samples = {}
        for line in r.stdout.splitlines():
            m = re.match(r"^([a-zA-Z_:][\w:]*(?:\{[^}]*\})?) (\S+)", line)
            if m:
                samples[m.group(1)] = float(m.group(2))
        return samples

    def teardown(self):
        for host in reversed(list(self.procs)):
            self.procs[host].close()
        self.net.teardown()


# --------------------------------------------------------------------------
#  The checks, in order: each builds on the state the previous one left.

class ComposeTopology(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        compose = load_compose(ARGS.compose)
        bins = {"edge": ARGS.edge, "router": ARGS.router,
                "tether": ARGS.tether}
        cls.exporter = bool(ARGS.exporter and os.access(ARGS.exporter,
                                                        os.X_OK))
        if cls.exporter:
            bins["exporter"] = ARGS.exporter
        else:
            note("tether-exporter is not built: exporter checks skipped")
        if os.environ.get("TETHER_DEPLOY_LOOPBACK"):
            why = "TETHER_DEPLOY_LOOPBACK is set"
        else:
            why = Netns.usable()
        if why is None:
            net = Netns()
            note("network namespaces: one per service, bridged on "
                 "%s.0/24 (names %s*)" % (SUBNET, net.run))
        else:
            net = Loopback()
            note("NOTE: network namespaces unavailable (%s); every service "
                 "runs on 127.0.0.1 with ports picked at runtime" % why)
        cls.logdir = tempfile.mkdtemp(prefix="tether-deploy-")
        cls.topo = Topology(compose, bins, net, cls.logdir)
        cls.agents = sorted(s for s, spec in compose.items()
                            if spec["command"][:2] == ["tether", "agent"])
        cls.agent_ids = [compose[s]["command"][3] for s in cls.agents]
        try:
            cls.topo.net.add_host("client")
            cls.topo.start_router()
            for _ in range(compose["edge"]["replicas"]):
                cls.topo.start_edge()
            if cls.exporter:
                cls.topo.start("exporter").wait_line(
                    r'msg="exporter listening"', START_S)
            for i, svc in enumerate(cls.agents):
                cls.topo.start_agent(svc, order=i)
        except BaseException:
            cls._result_ok = False
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.topo.teardown()
        failed = not cls._result_ok
        if failed:
            for name in sorted(os.listdir(cls.logdir)):
                with open(os.path.join(cls.logdir, name),
                          encoding="utf-8", errors="replace") as f:
                    lines = f.readlines()
                sys.stderr.write("---- %s (last 25 lines)\n%s" % (
                    name, "".join(lines[-25:])))
        if failed or os.environ.get("TETHER_DEPLOY_KEEP"):
            note("process logs kept in %s" % cls.logdir)
        else:
            shutil.rmtree(cls.logdir, True)

    _result_ok = True

    def run(self, result=None):
        result = super().run(result)
        if result is not None and not result.wasSuccessful():
            ComposeTopology._result_ok = False
        return result

    # --- helpers

    def where(self, edge):
        """{agent_id: edge name} as edge `edge` lists them."""
        return self.topo.agents(edge) or {}

    def assert_call(self, agent, edge, wait=None):
        data = "via %s to %s" % (edge, agent)
        r = self.topo.call(agent, edge, data, wait)
        self.assertEqual(r.returncode, 0, "call %s via %s: %s"
                         % (agent, edge, r.stderr.strip()))
        self.assertEqual(r.stdout, data)

    def wait_metrics(self, agents, edges, by_edge=None):
        """Wait for the exporter to show these counts; `by_edge` maps an
        edge host to its agent count (0: not listed, or 0)."""
        if not self.exporter:
            return
        want = {M_AGENTS: agents, M_EDGES: edges, M_ROUTER_UP: 1}
        for host, n in (by_edge or {}).items():
            want['%s{edge="%s"}' % (M_BY_EDGE, self.topo.edge_name(host))] = n
        last = {}

        def ok():
            last.clear()
            last.update(self.topo.metrics() or {})
            return all(last.get(k, 0) == v for k, v in want.items())
        try:
            wait_until(ok, MOVE_S, "exporter metrics %s" % want, 0.2)
        except AssertionError:
            self.fail("exporter shows %s, expected %s" % (
                {k: last.get(k) for k in want}, want))

    # --- the checks

    def test_1_cross_edge(self):
        """Agents on edge 1 and edge 2, reachable from a client on
        either edge."""
        topo = self.topo
        e1, e2 = topo.edges[:2]
        a1, a2 = self.agent_ids[:2]
        want = {a1: topo.edge_name(e1), a2: topo.edge_name(e2)}
        for edge in (e1, e2):
            wait_until(lambda: {k: v for k, v in self.where(edge).items()
                                if k in want} == want, START_S,
                       "%s to list %s" % (edge, want))
        for edge in (e1, e2):
            for agent in (a1, a2):
                self.assert_call(agent, edge)
        self.wait_metrics(agents=2, edges=2, by_edge={e1: 1, e2: 1})

    def test_2_scale_out(self):
        """A third edge started at runtime serves at once: calls through
        it reach the agents of the others, and its own agent is
        reachable through them."""
        topo = self.topo
        e3 = topo.start_edge()      # returns once it answers SERVING
        for agent in self.agent_ids:
            self.assert_call(agent, e3)
        self.assertEqual(set(self.where(e3)) & set(self.agent_ids),
                         set(self.agent_ids))
        #   An agent of its own (like `docker compose run agent-1 tether
        #   agent --id demo-3`), placed on the new edge first.
        topo.compose["agent-3"] = dict(topo.compose[self.agents[0]])
        topo.compose["agent-3"]["command"] = ["tether", "agent", "--id",
                                              "demo-3"]
        topo.start_agent("agent-3", order=2)
        wait_until(lambda: self.where(topo.edges[0]).get("demo-3")
                   == topo.edge_name(e3), START_S, "demo-3 on edge 3")
        for edge in topo.edges:
            self.assert_call("demo-3", edge)
        self.wait_metrics(agents=3, edges=3,
                          by_edge={topo.edges[0]: 1, topo.edges[1]: 1, e3: 1})

    def test_3_drain(self):
        """SIGTERM on edge 1 while clients on edges 2 and 3 keep calling
        every agent: edge 1's agent reconnects to edge 2, and no request
        fails but those in flight on edge 1."""
        topo = self.topo
        e1, e2, e3 = topo.edges[:3]
        a1, a2 = self.agent_ids[:2]
        self.assertEqual(self.where(e2).get(a1), topo.edge_name(e1))
        #   (agent, client's edge) per worker: each loops on calls.
        plan = [(a1, e2), (a1, e3), (a2, e3), ("demo-3", e2)]
        stop = threading.Event()
        lock = threading.Lock()
        cond = threading.Condition(lock)
        calls = []      # (worker, started, ended, returncode, stderr)

        def worker(index, agent, edge):
            n = 0
            while not stop.is_set():
                n += 1
                t0 = time.monotonic()
                #   Waiting for the agent covers its reconnection gap.
                r = topo.call(agent, edge, "%d-%d" % (index, n), wait="15s")
                with cond:
                    calls.append((index, t0, time.monotonic(),
                                  r.returncode, r.stderr.strip()))
                    cond.notify_all()
        threads = [threading.Thread(target=worker, args=(i, a, e))
                   for i, (a, e) in enumerate(plan)]
        for t in threads:
            t.start()
        try:
            with cond:      # every worker got through once before
                warm = cond.wait_for(lambda: {c[0] for c in calls
                                              if c[3] == 0}
                                     == set(range(len(plan))), START_S)
            self.assertTrue(warm, "the calls before the drain failed: %r"
                            % calls[-4:])
            t_term = time.monotonic()
            proc = topo.procs[e1]
            code = proc.stop(signal.SIGTERM)
            t_exit = time.monotonic()
            topo.edges.remove(e1)
            self.assertEqual(code, 0, "edge 1 exit code")
            #   Its agent is on edge 2 (the next address of its list).
            wait_until(lambda: self.where(e3).get(a1) == topo.edge_name(e2),
                       MOVE_S, "%s to move to %s" % (a1, e2))
            t_moved = time.monotonic()
            #   Every worker completes calls started after the move.
            with cond:
                done = cond.wait_for(lambda: all(
                    sum(1 for c in calls if c[0] == i and c[1] > t_moved
                        and c[3] == 0) >= 3 for i in range(len(plan))),
                    START_S)
            self.assertTrue(done, "calls after the move did not complete")
        finally:
            stop.set()
            for t in threads:
                t.join()
        failed = [c for c in calls if c[3] != 0]
        note("drain: %d calls, %d failed; edge 1 stopped in %.2fs, agent "
             "moved %.2fs after SIGTERM" % (len(calls), len(failed),
                                             t_exit - t_term,
                                             t_moved - t_term))
        #   A failure is allowed only for a call that was already running
        #   when edge 1 went away, and only UNAVAILABLE (exit 24), at most
        #   one per worker.
        for c in failed:
            self.assertLess(c[1], t_exit, "call started after edge 1 was "
                            "gone failed: %r" % (c,))
            self.assertEqual(c[3], 24, "unexpected failure: %r" % (c,))
        self.assertLessEqual(len(failed), len(plan), failed)
        self.wait_metrics(agents=3, edges=2, by_edge={e1: 0, e2: 2, e3: 1})

    def test_4_health_after_drain(self):
        """The remaining edges are still SERVING and list every agent."""
        topo = self.topo
        for edge in topo.edges:
            r = topo.tether(["health", "--timeout", "2s"], edge)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout.strip(), "SERVING")
            self.assertEqual(set(self.where(edge)),
                             set(self.agent_ids) | {"demo-3"})


def main():
    global ARGS
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--compose", required=True)
    parser.add_argument("--edge", required=True)
    parser.add_argument("--router", required=True)
    parser.add_argument("--tether", required=True)
    parser.add_argument("--exporter", default="")
    ARGS, rest = parser.parse_known_args()
    ARGS.root = os.path.dirname(os.path.abspath(ARGS.compose))
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
