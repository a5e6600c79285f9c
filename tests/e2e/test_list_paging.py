#!/usr/bin/python3
"""End-to-end: ListAgents in pages (page_token / next_page_token), seen by
a Debian grpcio client.

- every agent appears exactly once, in id order, when a client follows
  next_page_token with a small limit;
- a page_token that cannot be a next_page_token is INVALID_ARGUMENT (and
  the edge logs the refusal);
- a client whose token has a scope pages through its own agents only,
  including across router pages that hold none of them.

Each runs against the embedded router and an external one
(-k Embedded / -k External).

Usage: test_list_paging.py --edge PATH --router PATH [unittest args]
"""

import base64
import hashlib
import hmac
import os
import random
import shutil
import tempfile
import time

import grpc

import tether_e2e as e2e

INVALID = grpc.StatusCode.INVALID_ARGUMENT


def open_streams(edge, ids):
    """Subscribe every id in `ids` on one channel (a stream each, no
    reader thread: the agents only need to be listed).  Returns the
    channel and the calls, to cancel at the end."""
    channel = edge.new_channel()
    stub = e2e.pb_grpc.AgentGatewayStub(channel)
    calls = [stub.AgentRequestSubscribe(e2e.pb.SubscriberInfo(agent_id=i),
                                        wait_for_ready=True)
             for i in ids]
    return channel, calls


def close_streams(channel, calls):
    for c in calls:
        c.cancel()
    channel.close()


def walk(stub, prefix, limit, metadata=None):
    """Follow next_page_token from the first page.  Returns the list of
    pages, each a (ids, next_page_token) pair."""
    pages, token = [], ""
    while True:
        resp = stub.ListAgents(
            e2e.pb.ListAgentsRequest(prefix=prefix, limit=limit,
                                     page_token=token),
            timeout=10, wait_for_ready=True, metadata=metadata)
        pages.append(([a.agent_id for a in resp.agents],
                      resp.next_page_token))
        if not resp.next_page_token:
            return pages
        if len(pages) > 1000:
            raise AssertionError("pages do not end: %r" % pages[-3:])
        token = resp.next_page_token


class PagingChecks:
    """What every walk must satisfy."""

    def check_walk(self, pages, expected, limit):
        seen = []
        for index, (ids, token) in enumerate(pages):
            last = index == len(pages) - 1
            if limit:
                self.assertLessEqual(len(ids), limit, pages)
            if not last:
                #   A page that says "more" shows something, and its token
                #   is its last agent.
                self.assertTrue(ids, pages)
                self.assertEqual(token, ids[-1], pages)
            else:
                self.assertEqual(token, "", pages)
            seen += ids
        self.assertEqual(seen, sorted(expected), pages)
        self.assertEqual(len(seen), len(set(seen)))


class PagingScenarios(PagingChecks):

    COUNT = 23

    def test_every_agent_once_in_order(self):
        stem = self.unique("pg") + "-"
        ids = ["%s%03d" % (stem, i) for i in range(self.COUNT)]
        random.shuffle(ids)         # subscription order is not id order
        edge = self.gw.edges[0]
        channel, calls = open_streams(edge, ids)
        try:
            e2e.wait_until(
                lambda: len(edge.list_agents(prefix=stem)) == self.COUNT,
                20, what="%d agents listed" % self.COUNT)
            stub = edge.stub
            for limit in (1, 4, 5, self.COUNT, self.COUNT + 1):
                pages = walk(stub, stem, limit)
                self.check_walk(pages, ids, limit)
                expected = -(-self.COUNT // limit)
                if limit == self.COUNT:
                    #   The last agent filled the page: one more, empty
                    #   page may say so, or the token may be empty at once.
                    self.assertIn(len(pages), (expected, expected + 1))
                else:
                    self.assertEqual(len(pages), expected, (limit, pages))
            #   limit 0: everything fits one page.
            pages = walk(stub, stem, 0)
            self.assertEqual(len(pages), 1)
            self.check_walk(pages, ids, 0)
            #   A token from the middle: strictly after it, and agents that
            #   joined before or after it meanwhile are placed by id.
            ordered = sorted(ids)
            middle = ordered[10]
            late = [stem + "000a", stem + "999"]
            ch2, calls2 = open_streams(edge, late)
            try:
                e2e.wait_until(
                    lambda: len(edge.list_agents(prefix=stem))
                    == self.COUNT + 2, 20, what="late agents listed")
                resp = stub.ListAgents(
                    e2e.pb.ListAgentsRequest(prefix=stem, page_token=middle),
                    timeout=10)
                self.assertEqual([a.agent_id for a in resp.agents],
                                 ordered[11:] + [stem + "999"])
                self.assertEqual(resp.next_page_token, "")
            finally:
                close_streams(ch2, calls2)
        finally:
            close_streams(channel, calls)

    def test_token_outside_prefix_and_past_the_end(self):
        stem = self.unique("pe") + "-"
        ids = [stem + s for s in ("a", "b", "c")]
        edge = self.gw.edges[0]
        channel, calls = open_streams(edge, ids)
        try:
            e2e.wait_until(lambda: len(edge.list_agents(prefix=stem)) == 3,
                           20, what="3 agents listed")
            ask = lambda token: [a.agent_id for a in edge.stub.ListAgents(
                e2e.pb.ListAgentsRequest(prefix=stem, page_token=token),
                timeout=10).agents]
            self.assertEqual(ask(stem + "c"), [])
            self.assertEqual(ask(stem + "zzz"), [])
            self.assertEqual(ask(stem), ids)        # before every match
            self.assertEqual(ask("0"), ids)         # before the prefix
            self.assertEqual(ask("zz"), [])         # after the prefix
        finally:
            close_streams(channel, calls)

    def test_bad_page_token_is_invalid_argument(self):
        edge = self.gw.edges[0]
        for token in ("has space", "semi;colon", "x" * 129, "tab\t",
                      "caf\u00e9"):
            start = edge.proc.line_count()
            with self.assertRaises(grpc.RpcError) as cm:
                edge.stub.ListAgents(
                    e2e.pb.ListAgentsRequest(page_token=token), timeout=10,
                    wait_for_ready=True)
            self.assertEqual(cm.exception.code(), INVALID, token)
            self.assertIn("page_token", cm.exception.details())
            edge.proc.wait_line(r'msg="list refused".*page_token', 10,
                                start=start)
        #   The longest valid id is a valid token.
        resp = edge.stub.ListAgents(
            e2e.pb.ListAgentsRequest(page_token="x" * 128), timeout=10)
        self.assertEqual(resp.next_page_token, "")


class EmbeddedPaging(PagingScenarios, e2e.GatewayTestCase):
    EXTERNAL = False


class ExternalPaging(PagingScenarios, e2e.GatewayTestCase):
    EXTERNAL = True


# --------------------------------------------------------------------------
#  Scoped clients: the edge filters the router's pages.

def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def client_token(key, scope, ttl=3600):
    """A client token in the documented format (docs/security.md), made
    here independently of the gateway's code."""
    signed = "tt1." + b64(("client|%d|%s" % (int(time.time()) + ttl,
                                             scope)).encode())
    mac = hmac.new(key, signed.encode(), hashlib.sha256).digest()
    return signed + "." + b64(mac)


class TokenGateway(e2e.Gateway):
    """A Gateway whose edges want client tokens: readiness is checked with
    an admin token."""

    admin = None

    def start_edge(self, extra=()):
        argv = [e2e.EDGE_BIN, "--listen", "127.0.0.1:0"] + self.edge_args \
            + list(extra)
        if self.external:
            argv += ["--router", "tcp://127.0.0.1:%d" % self.router_port]
        else:
            argv += ["--monitor", ""] + self.core_args
        proc = e2e.Proc("edge-%d" % len(self.procs), argv, self.logdir)
        self.procs.append(proc)
        m = proc.wait_line(r'msg="edge listening".*listen=\S*:(\d+)', 20)
        edge = e2e.Edge(proc, int(m.group(1)))
        self.edges.append(edge)
        self.channels.append(edge.channel)
        md = (("authorization", "Bearer " + self.admin),)
        e2e.wait_until(lambda: edge.stub.ListAgents(
            e2e.pb.ListAgentsRequest(), timeout=2, wait_for_ready=True,
            metadata=md) is not None, 20, what="ListAgents answering")
        return edge


class ScopedScenarios(PagingChecks):
    """Router pages of at most 5 agents (--max-list 5), so a scoped walk
    crosses router pages with none of its agents in them."""

    CORE_ARGS = ("--max-list", "5")

    @classmethod
    def make_gateway(cls):
        cls.keydir = tempfile.mkdtemp(prefix="tether-e2e-key-")
        cls.key = os.urandom(32).hex().encode()
        key_file = os.path.join(cls.keydir, "client.key")
        with open(key_file, "wb") as f:
            f.write(cls.key + b"\n")
        TokenGateway.admin = client_token(cls.key, "*")
        return TokenGateway(external=cls.EXTERNAL, edges=1,
                            core_args=cls.CORE_ARGS,
                            edge_args=("--client-token-key-file", key_file))

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            shutil.rmtree(cls.keydir, True)

    def test_scoped_walk_sees_its_agents_once(self):
        stem = self.unique("ps") + "-"
        groups = {"a": 4, "b": 12, "c": 3, "d": 7}
        ids = ["%s%s%02d" % (stem, g, i) for g, n in groups.items()
               for i in range(n)]
        edge = self.gw.edges[0]
        admin = (("authorization", "Bearer " + TokenGateway.admin),)
        channel, calls = open_streams(edge, ids)
        try:
            e2e.wait_until(
                lambda: sum(len(p[0]) for p in walk(edge.stub, stem, 0, admin))
                == len(ids), 20, what="%d agents listed" % len(ids))
            #   Unscoped, the router's pages of 5 show through.
            self.check_walk(walk(edge.stub, stem, 0, admin), ids, 5)
            #   Two scope prefixes under the asked prefix: the edge filters.
            scope = "%sa,%sc,%sd01" % (stem, stem, stem)
            md = (("authorization", "Bearer " + client_token(self.key,
                                                             scope)),)
            mine = [i for i in ids if i.startswith((stem + "a", stem + "c",
                                                     stem + "d01"))]
            for limit in (0, 1, 2, 3, 100):
                pages = walk(edge.stub, stem, limit, md)
                self.check_walk(pages, mine, limit)
                for ids_, token in pages:
                    #   No token names an agent outside the scope.
                    if token:
                        self.assertIn(token, mine)
            #   One scope prefix under the asked prefix: LIST narrows to it
            #   and the router's pages pass through.
            md = (("authorization", "Bearer " + client_token(
                self.key, stem + "b")),)
            self.check_walk(walk(edge.stub, stem, 3, md),
                            [i for i in ids if i.startswith(stem + "b")], 3)
            #   Nothing in scope at all: one empty page, no token.
            md = (("authorization", "Bearer " + client_token(
                self.key, stem + "x," + stem + "y")),)
            self.assertEqual(walk(edge.stub, stem, 2, md), [([], "")])
        finally:
            close_streams(channel, calls)


class EmbeddedScoped(ScopedScenarios, e2e.GatewayTestCase):
    EXTERNAL = False


class ExternalScoped(ScopedScenarios, e2e.GatewayTestCase):
    EXTERNAL = True


if __name__ == "__main__":
    e2e.main()
