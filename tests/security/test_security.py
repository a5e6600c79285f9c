"""Security end-to-end tests: TLS, mutual TLS, agent and client tokens,
forged responses, client scopes, CURVE between edge and router.

Real tether-edge / tether-router / tether processes on loopback, driven by
Debian's python3-grpcio.  Throwaway certificates are made at start with
`openssl req`/`openssl x509` in a temporary directory; token keys with
os.urandom; CURVE keys with `tether keygen`.

Run: /usr/bin/python3 test_security.py --edge E --router R --tether T
"""

import argparse
import base64
import hashlib
import hmac
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))

import grpc  # noqa: E402
import tether_e2e as e2e  # noqa: E402

TETHER_BIN = None
TMP = None          # certificates, keys, tokens
PROCS = []          # every Proc started, for logs on failure


# --------------------------------------------------------------------------
#  Material

def run(*argv, **kw):
    return subprocess.run(list(argv), check=True, capture_output=True, **kw)


def make_ca(name):
    key = os.path.join(TMP, name + ".key")
    crt = os.path.join(TMP, name + ".crt")
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
        "-keyout", key, "-out", crt, "-days", "2", "-subj", "/CN=" + name)
    return crt, key


def make_cert(name, cn, ca, san):
    key = os.path.join(TMP, name + ".key")
    csr = os.path.join(TMP, name + ".csr")
    crt = os.path.join(TMP, name + ".crt")
    ext = os.path.join(TMP, name + ".ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=%s\n" % san)
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
        "-out", csr, "-subj", "/CN=" + cn)
    run("openssl", "x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1],
        "-CAcreateserial", "-out", crt, "-days", "2", "-extfile", ext)
    return crt, key


def read(path):
    with open(path, "rb") as f:
        return f.read()


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge_token(key, kind, subject, expiry):
    """A token made here, independently of token.c, so the format is
    checked from outside (and expired tokens need no waiting)."""
    signed = "tt1." + b64(("%s|%d|%s" % (kind, expiry, subject)).encode())
    mac = hmac.new(key, signed.encode(), hashlib.sha256).digest()
    return signed + "." + b64(mac)


def mint(kind_args, key_file, ttl="1h"):
    out = run(TETHER_BIN, "token", *kind_args, "--key-file", key_file,
              "--ttl", ttl)
    return out.stdout.decode().strip()


class Material:
    def __init__(self):
        self.ca = make_ca("ca")
        self.rogue_ca = make_ca("rogue-ca")
        self.server = make_cert("server", "localhost", self.ca,
                                "IP:127.0.0.1,DNS:localhost")
        self.dev1 = make_cert("dev-1", "dev-1", self.ca, "DNS:dev-1")
        self.dev2 = make_cert("dev-2", "dev-2", self.ca, "DNS:dev-2")
        self.operator = make_cert("operator", "operator", self.ca,
                                  "DNS:operator")
        self.rogue = make_cert("rogue", "dev-1", self.rogue_ca, "DNS:dev-1")
        self.agent_key = os.urandom(32).hex().encode()
        self.client_key = os.urandom(32).hex().encode()
        self.agent_key_file = os.path.join(TMP, "agent.key")
        self.client_key_file = os.path.join(TMP, "client.key")
        with open(self.agent_key_file, "wb") as f:
            f.write(self.agent_key + b"\n")
        with open(self.client_key_file, "wb") as f:
            f.write(self.client_key + b"\n")


M = None


# --------------------------------------------------------------------------
#  Processes and channels

def start_edge(args, router=None):
    argv = [e2e.EDGE_BIN, "--listen", "127.0.0.1:0"] + list(args)
    if router:
        argv += ["--router", router]
    else:
        argv += ["--monitor", ""]
    proc = e2e.Proc("edge-%d" % len(PROCS), argv, TMP)
    PROCS.append(proc)
    m = proc.wait_line(r'msg="edge listening".*listen=\S*:(\d+)', 20)
    return proc, "127.0.0.1:%s" % m.group(1)


def creds(ca=True, cert=None):
    return grpc.ssl_channel_credentials(
        root_certificates=read(M.ca[0]) if ca else None,
        private_key=read(cert[1]) if cert else None,
        certificate_chain=read(cert[0]) if cert else None)


CHANNELS = []


def channel(target, tls=False, cert=None):
    opts = [("grpc.use_local_subchannel_pool", 1),
            ("grpc.enable_http_proxy", 0)]
    if tls:
        ch = grpc.secure_channel(target, creds(cert=cert), options=opts)
    else:
        ch = grpc.insecure_channel(target, options=opts)
    CHANNELS.append(ch)
    return ch


def stub(ch):
    return e2e.pb_grpc.AgentGatewayStub(ch)


def bearer(token):
    return (("authorization", "Bearer " + token),) if token else ()


def list_ids(st, token=None, prefix="", limit=0):
    resp = st.ListAgents(e2e.pb.ListAgentsRequest(prefix=prefix, limit=limit),
                         metadata=bearer(token), timeout=5,
                         wait_for_ready=True)
    return [a.agent_id for a in resp.agents]


def publish(st, agent_id, token=None, rid="", timeout=10):
    """Returns (payloads, code)."""
    req = e2e.pb.AgentRequest(id=rid, agent_id=agent_id, call="echo",
                              payload=b"hello")
    out = []
    try:
        for msg in st.AgentRequestPublish(req, metadata=bearer(token),
                                          timeout=timeout):
            out.append(msg.payload)
        return out, grpc.StatusCode.OK
    except grpc.RpcError as e:
        return out, e.code()


class Agent:
    """A subscription that answers echo requests on its own response call.
    `answer` False: requests are only recorded (in `requests`)."""

    def __init__(self, ch, agent_id, token=None, answer=True):
        self.stub = stub(ch)
        self.agent_id = agent_id
        self.token = token
        self.answer = answer
        self.requests = queue.Queue()
        self.code = None
        self.up = threading.Event()
        self.ended = threading.Event()
        self.call = self.stub.AgentRequestSubscribe(
            e2e.pb.SubscriberInfo(agent_id=agent_id),
            metadata=bearer(token))
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            self.call.initial_metadata()
            self.up.set()
            for req in self.call:
                self.requests.put(req)
                if self.answer and not req.cancel:
                    self.respond(req.id, req.payload)
            self.code = grpc.StatusCode.OK
        except grpc.RpcError as e:
            self.code = e.code()
        finally:
            self.up.set()
            self.ended.set()

    def respond(self, rid, payload):
        """Answer `rid` on a new response call.  Returns the status code."""
        md = (("x-request-id", rid),) + bearer(self.token)
        try:
            self.stub.AgentResponsePublish(
                iter([e2e.pb.AgentResponse(payload=payload)]), metadata=md,
                timeout=10)
            return grpc.StatusCode.OK
        except grpc.RpcError as e:
            return e.code()

    def wait_result(self, timeout=10):
        """Wait until the stream is up (returns None) or ended (returns its
        code)."""
        self.up.wait(timeout)
        if self.ended.wait(0.0):
            return self.code
        return None

    def wait_end(self, timeout=10):
        assert self.ended.wait(timeout), "subscription did not end"
        return self.code

    def close(self):
        self.call.cancel()
        self.ended.wait(5)


def wait_listed(st, agent_id, token=None):
    e2e.wait_until(lambda: agent_id in list_ids(st, token), 10,
                   what="%s listed" % agent_id)


# --------------------------------------------------------------------------
#  Tests

class Base(unittest.TestCase):
    def setUp(self):
        self.procs_before = len(PROCS)
        self.agents = []

    def tearDown(self):
        for a in self.agents:
            a.close()
        for ch in CHANNELS:
            ch.close()
        del CHANNELS[:]
        unclean = []
        for proc in PROCS[self.procs_before:]:
            proc.stop()
            if not proc.clean_exit():
                unclean.append(proc)
        if unclean or getattr(self, "_failed", False):
            for proc in PROCS[self.procs_before:]:
                sys.stderr.write("----- %s -----\n" % proc.name)
                for line in proc.tail(60):
                    sys.stderr.write("  %s\n" % line)
        self.assertEqual([], [p.name for p in unclean], "unclean exits")

    def agent(self, *args, **kw):
        a = Agent(*args, **kw)
        self.agents.append(a)
        return a


class TlsTest(Base):
    def test_tls_happy_path_and_plaintext_refused(self):
        proc, target = start_edge(["--tls-cert", M.server[0],
                                   "--tls-key", M.server[1]])
        st = stub(channel(target, tls=True))
        a = self.agent(channel(target, tls=True), "dev-1")
        self.assertIsNone(a.wait_result())
        wait_listed(st, "dev-1")
        payloads, code = publish(st, "dev-1")
        self.assertEqual(grpc.StatusCode.OK, code)
        self.assertEqual([b"hello"], payloads)
        #   A plaintext client cannot talk to a TLS listener.
        plain = stub(channel(target))
        with self.assertRaises(grpc.RpcError) as cm:
            plain.ListAgents(e2e.pb.ListAgentsRequest(), timeout=3)
        self.assertEqual(grpc.StatusCode.UNAVAILABLE, cm.exception.code())

    def test_plaintext_warning_only_off_loopback(self):
        proc, target = start_edge([])
        proc.wait_line(r'msg="edge security".*tls=off', 5)
        self.assertFalse(any("listening without TLS" in line
                             for line in proc.tail(50)))


class MutualTlsTest(Base):
    """Client certificates verified when sent; agents must authenticate;
    clients must present client tokens."""

    def setUp(self):
        super().setUp()
        self.proc, self.target = start_edge([
            "--tls-cert", M.server[0], "--tls-key", M.server[1],
            "--tls-client-ca", M.ca[0],
            "--client-token-key-file", M.client_key_file])
        self.admin = mint(["--client", "--scope", "*"], M.client_key_file)
        self.st = stub(channel(self.target, tls=True))

    def test_agent_identity_from_certificate(self):
        a = self.agent(channel(self.target, tls=True, cert=M.dev1), "dev-1")
        self.assertIsNone(a.wait_result())
        wait_listed(self.st, "dev-1", self.admin)
        payloads, code = publish(self.st, "dev-1", self.admin)
        self.assertEqual((grpc.StatusCode.OK, [b"hello"]), (code, payloads))
        #   The same certificate may not subscribe as another agent.
        b = self.agent(channel(self.target, tls=True, cert=M.dev1), "dev-2")
        self.assertEqual(grpc.StatusCode.PERMISSION_DENIED, b.wait_end())
        #   No certificate, no token: refused by the application.
        c = self.agent(channel(self.target, tls=True), "dev-3")
        self.assertEqual(grpc.StatusCode.UNAUTHENTICATED, c.wait_end())

    def test_untrusted_certificate_fails_the_handshake(self):
        rogue = stub(channel(self.target, tls=True, cert=M.rogue))
        with self.assertRaises(grpc.RpcError) as cm:
            rogue.ListAgents(e2e.pb.ListAgentsRequest(), timeout=3,
                             metadata=bearer(self.admin))
        self.assertEqual(grpc.StatusCode.UNAVAILABLE, cm.exception.code())

    def test_forged_response_refused(self):
        victim = self.agent(channel(self.target, tls=True, cert=M.dev1),
                            "dev-1", answer=False)
        self.assertIsNone(victim.wait_result())
        forger = self.agent(channel(self.target, tls=True, cert=M.dev2),
                            "dev-2")
        self.assertIsNone(forger.wait_result())
        wait_listed(self.st, "dev-1", self.admin)
        result = {}
        t = threading.Thread(target=lambda: result.update(
            r=publish(self.st, "dev-1", self.admin, rid="req-guessable")))
        t.start()
        req = victim.requests.get(timeout=10)
        self.assertEqual("req-guessable", req.id)
        #   dev-2 knows (guesses) the id and tries to answer it.
        self.assertEqual(grpc.StatusCode.PERMISSION_DENIED,
                         forger.respond("req-guessable", b"forged"))
        #   The request is untouched: the real agent still answers it.
        self.assertEqual(grpc.StatusCode.OK,
                         victim.respond("req-guessable", b"genuine"))
        t.join(10)
        self.assertEqual(([b"genuine"], grpc.StatusCode.OK), result["r"])

    def test_client_tokens_and_scope(self):
        for agent_id, cert in (("dev-1", M.dev1), ("dev-2", M.dev2)):
            a = self.agent(channel(self.target, tls=True, cert=cert),
                           agent_id)
            self.assertIsNone(a.wait_result())
        wait_listed(self.st, "dev-2", self.admin)
        #   No token, a bad one, an expired one, an agent token.
        _, code = publish(self.st, "dev-1", None)
        self.assertEqual(grpc.StatusCode.UNAUTHENTICATED, code)
        _, code = publish(self.st, "dev-1", self.admin[:-2] + "AA")
        self.assertEqual(grpc.StatusCode.UNAUTHENTICATED, code)
        expired = forge_token(M.client_key, "client", "*",
                              int(time.time()) - 10)
        _, code = publish(self.st, "dev-1", expired)
        self.assertEqual(grpc.StatusCode.UNAUTHENTICATED, code)
        wrong_kind = forge_token(M.client_key, "agent", "dev-1",
                                 int(time.time()) + 60)
        _, code = publish(self.st, "dev-1", wrong_kind)
        self.assertEqual(grpc.StatusCode.UNAUTHENTICATED, code)
        with self.assertRaises(grpc.RpcError) as cm:
            list_ids(self.st, None)
        self.assertEqual(grpc.StatusCode.UNAUTHENTICATED, cm.exception.code())
        #   A client scoped to dev-2 (and a prefix nobody has).
        scoped = mint(["--client", "--scope", "dev-2,site-a/"],
                      M.client_key_file)
        _, code = publish(self.st, "dev-1", scoped)
        self.assertEqual(grpc.StatusCode.PERMISSION_DENIED, code)
        payloads, code = publish(self.st, "dev-2", scoped)
        self.assertEqual((grpc.StatusCode.OK, [b"hello"]), (code, payloads))
        self.assertEqual(["dev-2"], list_ids(self.st, scoped))
        self.assertEqual(["dev-2"], list_ids(self.st, scoped, prefix="dev"))
        self.assertEqual([], list_ids(self.st, scoped, prefix="dev-1"))
        self.assertEqual(["dev-1", "dev-2"], list_ids(self.st, self.admin))
        one = mint(["--client", "--scope", "dev-1"], M.client_key_file)
        self.assertEqual(["dev-1"], list_ids(self.st, one, prefix="d"))

    def test_cli_over_mutual_tls(self):
        """The C library and CLI: an agent with a client certificate, a
        call with a CA and a client token."""
        env = dict(os.environ, TETHER_TLS_CA=M.ca[0])
        agent = e2e.Proc("cli-agent-%d" % len(PROCS),
                         [TETHER_BIN, "agent", "--id", "dev-1", "--edge",
                          self.target, "--tls-ca", M.ca[0],
                          "--tls-cert", M.dev1[0],
                          "--tls-key", M.dev1[1]], TMP)
        PROCS.append(agent)
        wait_listed(self.st, "dev-1", self.admin)
        out = subprocess.run(
            [TETHER_BIN, "call", "dev-1", "echo", "--data", "over-tls",
             "--edge", self.target, "--token", self.admin, "--timeout", "10s"],
            env=env, capture_output=True, timeout=30)
        self.assertEqual(0, out.returncode, out.stderr)
        self.assertEqual(b"over-tls", out.stdout)
        out = subprocess.run(
            [TETHER_BIN, "agents", "--edge", self.target, "--timeout", "5s"],
            env=env, capture_output=True, timeout=30)
        self.assertEqual(10 + 16, out.returncode, out.stderr)


class RequireClientCertTest(Base):
    def test_handshake_without_certificate_refused(self):
        proc, target = start_edge([
            "--tls-cert", M.server[0], "--tls-key", M.server[1],
            "--tls-client-ca", M.ca[0], "--tls-require-client-cert"])
        with self.assertRaises(grpc.RpcError) as cm:
            stub(channel(target, tls=True)).ListAgents(
                e2e.pb.ListAgentsRequest(), timeout=3)
        self.assertEqual(grpc.StatusCode.UNAVAILABLE, cm.exception.code())
        self.assertEqual([], list_ids(stub(channel(target, tls=True,
                                                   cert=M.operator))))


class AgentTokenTest(Base):
    """Agent tokens on a plaintext loopback edge (TLS is independent)."""

    def setUp(self):
        super().setUp()
        self.proc, self.target = start_edge([
            "--agent-token-key-file", M.agent_key_file])
        self.st = stub(channel(self.target))

    def test_agent_tokens(self):
        good = mint(["--agent", "dev-1"], M.agent_key_file)
        a = self.agent(channel(self.target), "dev-1", token=good)
        self.assertIsNone(a.wait_result())
        wait_listed(self.st, "dev-1")
        payloads, code = publish(self.st, "dev-1")
        self.assertEqual((grpc.StatusCode.OK, [b"hello"]), (code, payloads))
        refused = [
            ("dev-2", good, grpc.StatusCode.PERMISSION_DENIED),
            ("dev-1", None, grpc.StatusCode.UNAUTHENTICATED),
            ("dev-1", "garbage", grpc.StatusCode.UNAUTHENTICATED),
            ("dev-1", good[:-3] + "abc", grpc.StatusCode.UNAUTHENTICATED),
            ("dev-1", forge_token(M.agent_key, "agent", "dev-1",
                                  int(time.time()) - 1),
             grpc.StatusCode.UNAUTHENTICATED),
            ("dev-1", forge_token(b"another key of 32 bytes.........",
                                  "agent", "dev-1", int(time.time()) + 60),
             grpc.StatusCode.UNAUTHENTICATED),
            ("dev-1", mint(["--client", "--scope", "*"], M.agent_key_file),
             grpc.StatusCode.UNAUTHENTICATED),
        ]
        for agent_id, token, expected in refused:
            b = self.agent(channel(self.target), agent_id, token=token)
            self.assertEqual(expected, b.wait_end(), (agent_id, token))
        #   A forged response from a token holder of another id.
        other = mint(["--agent", "dev-9"], M.agent_key_file)
        forger = Agent(channel(self.target), "dev-9", token=other)
        self.agents.append(forger)
        self.assertIsNone(forger.wait_result())
        a.answer = False
        while not a.requests.empty():
            a.requests.get_nowait()
        result = {}
        t = threading.Thread(target=lambda: result.update(
            r=publish(self.st, "dev-1", rid="r-2")))
        t.start()
        self.assertEqual("r-2", a.requests.get(timeout=10).id)
        self.assertEqual(grpc.StatusCode.PERMISSION_DENIED,
                         forger.respond("r-2", b"forged"))
        #   Without a token the response call is not even bound.
        anonymous = Agent.__new__(Agent)
        anonymous.stub, anonymous.token = self.st, None
        self.assertEqual(grpc.StatusCode.UNAUTHENTICATED,
                         anonymous.respond("r-2", b"forged"))
        self.assertEqual(grpc.StatusCode.OK, a.respond("r-2", b"genuine"))
        t.join(10)
        self.assertEqual(([b"genuine"], grpc.StatusCode.OK), result["r"])


class CurveTest(Base):
    """Edge <-> router over CURVE: only edges whose key the router allows
    get in."""

    def keygen(self, name):
        path = os.path.join(TMP, name)
        out = run(TETHER_BIN, "keygen", "--out", path)
        return path, out.stdout.decode().strip()

    def test_only_allowed_edges_reach_the_router(self):
        router_cert, router_public = self.keygen("router.cert")
        edge_cert, _ = self.keygen("edge.cert")
        stranger_cert, _ = self.keygen("stranger.cert")
        allow = os.path.join(TMP, "allowed-edges")
        os.makedirs(allow, exist_ok=True)
        shutil.copy(edge_cert, allow)
        router = e2e.Proc("router-%d" % len(PROCS), [
            e2e.ROUTER_BIN, "--bind", "tcp://127.0.0.1:*",
            "--monitor", "", "--curve-secret-key-file",
            router_cert + "_secret", "--curve-allow-dir", allow], TMP)
        PROCS.append(router)
        router.wait_line(r'msg="router requires CURVE"', 20)
        m = router.wait_line(r'msg="router listening".*router_port=(\d+)', 20)
        endpoint = "tcp://127.0.0.1:%s" % m.group(1)
        _, good = start_edge(["--router-public-key", router_public,
                              "--curve-cert-file", edge_cert + "_secret"],
                             router=endpoint)
        self.assertEqual([], list_ids(stub(channel(good))))
        #   The router's public key may also be given as its cert file.
        _, good2 = start_edge(["--router-public-key", router_cert,
                               "--curve-cert-file", edge_cert + "_secret"],
                              router=endpoint)
        self.assertEqual([], list_ids(stub(channel(good2))))
        #   A key the router does not know, and no key at all: the edge
        #   never hears from the router.
        for args in (["--router-public-key", router_public,
                      "--curve-cert-file", stranger_cert + "_secret",
                      "--heartbeat", "100ms", "--router-liveness", "300ms"],
                     ["--heartbeat", "100ms", "--router-liveness", "300ms"]):
            proc, target = start_edge(args, router=endpoint)
            proc.wait_line(r'msg="router lost"', 10)
            with self.assertRaises(grpc.RpcError) as cm:
                list_ids(stub(channel(target)))
            self.assertEqual(grpc.StatusCode.UNAVAILABLE,
                             cm.exception.code())


def main():
    global TETHER_BIN, TMP, M
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--tether", required=True)
    args, rest = parser.parse_known_args()
    TETHER_BIN = args.tether
    sys.argv = [sys.argv[0]] + rest
    argv = e2e.parse_args()
    if not shutil.which("openssl"):
        sys.stderr.write("test_security: openssl is not installed "
                         "(scripts/deps.sh)\n")
        sys.exit(1)
    TMP = tempfile.mkdtemp(prefix="tether-security-")
    ok = False
    try:
        M = Material()
        prog = unittest.main(argv=argv, verbosity=2, exit=False)
        ok = prog.result.wasSuccessful()
    finally:
        if not os.environ.get("TETHER_E2E_KEEP"):
            shutil.rmtree(TMP, True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
