#!/usr/bin/python3
"""Bad input at every door of the public API, over real gRPC.

Messages are built byte by byte (protobuf wire format) and sent with
identity serializers, so that bytes a well-behaved client library would
refuse to produce (invalid UTF-8 in a proto3 string, an embedded NUL, a
message that is not a protobuf at all) reach the edge.  Each case expects
a clear gRPC status, and no change of state: ListAgents and the router's
tables (monitor `stats`: agents, requests, waiting, edges) are the same
before and after, and the well-behaved agent that is connected throughout
still answers.

Usage: test_bad_input.py --edge PATH --router PATH [unittest args]
"""

import threading
import time

import grpc

import faultlib
from faultlib import FaultTestCase
import tether_e2e as e2e

S = grpc.StatusCode
METHOD = "/tether.v1.AgentGateway/"
#   No call may take longer than this to end (they all end at once).
BOUND_S = 5.0


# --------------------------------------------------------------------------
#  Protobuf wire format, by hand

def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(number, data):
    """A length-delimited field (string, bytes, message)."""
    if isinstance(data, str):
        data = data.encode()
    return varint(number << 3 | 2) + varint(len(data)) + data


def field_varint(number, value):
    return varint(number << 3) + varint(value)


def map_entry(number, key, value):
    return field(number, field(1, key) + field(2, value))


def subscriber_info(agent_id, labels=()):
    return field(1, agent_id) + b"".join(map_entry(2, k, v)
                                         for k, v in labels)


def agent_request(agent_id, id=b"", call=b"echo", payload=b"",
                  headers=()):
    out = field(2, agent_id) + field(3, call) + field(4, payload)
    if id:
        out = field(1, id) + out
    return out + b"".join(map_entry(5, k, v) for k, v in headers)


def agent_response(request_id=b"", payload=b"", status=0):
    out = field(2, payload)
    if request_id:
        out = field(1, request_id) + out
    if status:
        out += field_varint(3, status)
    return out


class BadInput(FaultTestCase):
    EDGES = 1
    CORE_ARGS = FaultTestCase.CORE_ARGS + ("--first-response-timeout", "2s")

    def setUp(self):
        super().setUp()
        self.ch = self.gw.channel(0)
        ident = dict(request_serializer=lambda b: b,
                     response_deserializer=lambda b: b)
        self.raw_subscribe = self.ch.unary_stream(
            METHOD + "AgentRequestSubscribe", **ident)
        self.raw_publish = self.ch.unary_stream(
            METHOD + "AgentRequestPublish", **ident)
        self.raw_respond = self.ch.stream_unary(
            METHOD + "AgentResponsePublish", **ident)
        self.raw_list = self.ch.unary_unary(METHOD + "ListAgents", **ident)
        self.keeper = self.agent(self.unique("keeper"))

    #   -- state --

    def snapshot(self):
        agents = [(a.agent_id, a.session, a.edge, a.in_flight,
                   sorted(a.labels.items()))
                  for a in self.gw.edges[0].list_agents()]
        s = self.monitor.wait_stats(lambda s: True, 5)
        tables = {k: s[k] for k in ("agents", "requests", "waiting",
                                    "edges", "agents_per_edge")}
        return agents, tables

    def assert_unchanged(self, before, what):
        after = self.snapshot()
        self.assertEqual(after, before, "%s changed the state" % what)
        r = e2e.call(self.stub(), self.keeper.agent_id, "echo", b"still",
                     timeout=10)
        self.assertEqual(r.code, S.OK, "%s: the keeper agent: %r" % (what, r))

    def ended(self, it):
        """Read a raw streaming call to its end; returns (code, details,
        messages)."""
        messages = []
        try:
            for m in it:
                messages.append(m)
            return it.code(), it.details(), messages
        except grpc.RpcError as e:
            return e.code(), e.details(), messages

    def expect(self, what, start, codes):
        """Run `start()` (returns a call), check it ends with one of
        `codes` within BOUND_S and that nothing changed."""
        if not isinstance(codes, (set, frozenset)):
            codes = {codes}
        before = self.snapshot()
        t0 = time.monotonic()
        call = start()
        #   While the call is open: did it hijack the keeper's stream?
        try:
            call.initial_metadata()
        except grpc.RpcError:
            pass
        try:
            listed = [a.agent_id for a in self.gw.edges[0].list_agents()]
        except grpc.RpcError as e:
            listed = "failed: %s %s" % (e.code(), e.details())
        code, details, _ = self.ended(call)
        elapsed = time.monotonic() - t0
        self.assertIn(code, codes, "%s: ended %s %r; meanwhile ListAgents "
                      "%s, keeper stream ended: %s %s" % (
                          what, code, details, listed, self.keeper.ended,
                          self.keeper.end_details))
        self.assertLessEqual(elapsed, BOUND_S, what)
        self.assertTrue(details, "%s: a status without a message" % what)
        self.assert_unchanged(before, what)

    #   -- AgentRequestSubscribe --

    def subscribe(self, body):
        return lambda: self.raw_subscribe(body, timeout=BOUND_S + 5)

    def test_subscribe_bad_agent_ids(self):
        for what, agent_id in (
                ("empty agent id", b""),
                ("overlong agent id", b"a" * 129),
                ("agent id with a space", b"dev 1"),
                ("agent id with a newline", b"dev\n1"),
                ("invalid UTF-8 agent id", b"dev-\xff\xfe"),
                ("overlong UTF-8 sequence", b"dev-\xc0\xaf")):
            with self.subTest(what):
                self.expect(what, self.subscribe(subscriber_info(agent_id)),
                            S.INVALID_ARGUMENT)

    def test_subscribe_embedded_nul_does_not_hijack(self):
        #   "keeper\0x" must not be taken for "keeper": that would
        #   supersede the connected agent.
        body = subscriber_info(self.keeper.agent_id.encode() + b"\x00evil")
        self.expect("agent id with an embedded NUL", self.subscribe(body),
                    S.INVALID_ARGUMENT)
        self.assertFalse(self.keeper.ended, self.keeper.end_details)

    def test_subscribe_not_a_message(self):
        for what, body in (("garbage", b"\xff\xff\xff\xff"),
                           ("truncated field", b"\x0a\x10abc"),
                           ("wrong wire type", b"\x0d\x00\x00\x00\x00")):
            with self.subTest(what):
                self.expect(what, self.subscribe(body), S.INVALID_ARGUMENT)

    def test_subscribe_bad_labels(self):
        aid = self.unique("lbl").encode()
        for what, labels in (
                ("too many labels",
                 [(b"k%d" % i, b"v") for i in range(33)]),
                ("overlong label value", [(b"k", b"v" * 257)]),
                ("overlong label key", [(b"k" * 257, b"v")]),
                ("invalid UTF-8 label value", [(b"k", b"\xff\xfe")]),
                ("invalid UTF-8 label key", [(b"\xc3\x28", b"v")])):
            with self.subTest(what):
                self.expect(what, self.subscribe(subscriber_info(aid,
                                                                 labels)),
                            S.INVALID_ARGUMENT)

    def test_duplicate_agent_id_supersedes(self):
        aid = self.unique("twin")
        old = self.agent(aid)
        old_info = old.wait_listed()
        new = self.agent(aid)
        code, details = old.wait_ended(BOUND_S)
        self.assertEqual(code, S.ABORTED, details)
        self.assertIn("superseded", details)
        info = new.wait_listed()
        self.assertGreater(info.session, old_info.session)
        r = e2e.call(self.stub(), aid, "echo", b"new", timeout=10)
        self.assertEqual(r.code, S.OK, r)

    #   -- AgentRequestPublish --

    def publish(self, body, metadata=None):
        return lambda: self.raw_publish(body, timeout=BOUND_S + 5,
                                        metadata=metadata)

    def test_publish_bad_ids(self):
        k = self.keeper.agent_id.encode()
        for what, body in (
                ("empty agent id", agent_request(b"")),
                ("overlong agent id", agent_request(b"a" * 129)),
                ("invalid UTF-8 agent id", agent_request(b"\xff" + k)),
                ("agent id with a space", agent_request(b"a b")),
                ("overlong request id", agent_request(k, id=b"r" * 129)),
                ("invalid UTF-8 request id", agent_request(k, id=b"r\xff")),
                ("request id with a space", agent_request(k, id=b"r 1")),
                ("request id with an embedded NUL",
                 agent_request(k, id=b"r1\x00evil")),
                ("agent id with an embedded NUL",
                 agent_request(k + b"\x00evil"))):
            with self.subTest(what):
                self.expect(what, self.publish(body), S.INVALID_ARGUMENT)

    def test_publish_invalid_utf8_fields_do_not_reach_agent(self):
        #   The edge forwards the request bytes to the agent unchanged; a
        #   proto3 library on the agent's side rejects a string that is not
        #   UTF-8, so such a request must be refused at the edge, not
        #   break the agent's subscription.
        k = self.keeper.agent_id.encode()
        for what, body in (
                ("invalid UTF-8 call", agent_request(k, call=b"ec\xffho")),
                ("invalid UTF-8 header value",
                 agent_request(k, headers=[(b"h", b"\xfe")])),
                ("invalid UTF-8 header key",
                 agent_request(k, headers=[(b"\xfe", b"v")]))):
            with self.subTest(what):
                self.expect(what, self.publish(body), S.INVALID_ARGUMENT)
                self.assertFalse(self.keeper.ended, "%s: the agent's "
                                 "subscription ended: %s %s" % (
                                     what, self.keeper.end_code,
                                     self.keeper.end_details))

    def test_publish_not_a_message(self):
        for what, body in (("garbage", b"\xff\xff\xff\xff"),
                           ("truncated", b"\x12\x40abc"),
                           ("group wire type", b"\x13\x14")):
            with self.subTest(what):
                self.expect(what, self.publish(body), S.INVALID_ARGUMENT)

    def test_publish_bad_wait_metadata(self):
        k = self.keeper.agent_id.encode()
        for value in ("abc", "-1", "1.5", "", " 5", "99999999999999999999x"):
            with self.subTest(value):
                self.expect("x-wait-for-agent-ms=%r" % value,
                            self.publish(agent_request(k), metadata=[
                                ("x-wait-for-agent-ms", value)]),
                            S.INVALID_ARGUMENT)

    def test_publish_oversize(self):
        k = self.keeper.agent_id.encode()
        body = agent_request(k, payload=b"x" * (4259840 + 1))
        self.expect("oversize request", self.publish(body),
                    S.RESOURCE_EXHAUSTED)

    def test_huge_metadata(self):
        k = self.keeper.agent_id.encode()
        for what, md in (
                ("one 64 KiB header", [("x-big", "v" * 65536)]),
                ("one 1 MiB header", [("x-big", "v" * (1 << 20))]),
                ("2000 headers", [("x-h%d" % i, "v") for i in range(2000)])):
            with self.subTest(what):
                #   gRPC's transport refuses these before the edge sees the
                #   call; any clear status will do, as long as the edge
                #   survives and nothing changed.
                self.expect(what, self.publish(agent_request(k),
                                               metadata=md),
                            {S.RESOURCE_EXHAUSTED, S.INTERNAL,
                             S.UNAVAILABLE, S.INVALID_ARGUMENT,
                             S.UNKNOWN})

    def test_huge_headers_field(self):
        #   Headers in the message (not metadata) are payload: within the
        #   size limit they are relayed, over it they are refused.
        k = self.keeper.agent_id.encode()
        headers = [(b"h%05d" % i, b"v" * 100) for i in range(50000)]
        self.expect("5 MiB of headers", self.publish(agent_request(
            k, headers=headers)), S.RESOURCE_EXHAUSTED)
        headers = [(b"h%05d" % i, b"v" * 10) for i in range(10000)]
        code, details, msgs = self.ended(self.publish(agent_request(
            k, headers=headers))())
        self.assertEqual(code, S.OK, details)

    def test_duplicate_request_id(self):
        rid = self.unique("rid")
        seen = len(self.keeper.order)
        first = self.stub().AgentRequestPublish(
            e2e.request(self.keeper.agent_id, "never", id=rid), timeout=30)
        self.keeper.wait_request(seen + 1)
        self.expect("duplicate request id", self.publish(
            agent_request(self.keeper.agent_id.encode(), id=rid.encode())),
            S.ALREADY_EXISTS)
        first.cancel()

    #   -- AgentResponsePublish --

    def respond(self, messages, metadata=None):
        return self.raw_respond(iter(messages), timeout=BOUND_S + 5,
                                metadata=metadata)

    def expect_respond(self, what, messages, metadata, codes):
        if not isinstance(codes, (set, frozenset)):
            codes = {codes}
        before = self.snapshot()
        t0 = time.monotonic()
        try:
            self.respond(messages, metadata)
            code, details = S.OK, ""
        except grpc.RpcError as e:
            code, details = e.code(), e.details()
        self.assertIn(code, codes, "%s: ended %s %r" % (what, code, details))
        self.assertLessEqual(time.monotonic() - t0, BOUND_S, what)
        self.assertTrue(details, "%s: a status without a message" % what)
        self.assert_unchanged(before, what)

    def test_response_for_finished_request(self):
        rid = self.unique("done")
        r = e2e.call(self.stub(), self.keeper.agent_id, "echo", b"x",
                     id=rid)
        self.assertEqual(r.code, S.OK, r)
        self.keeper.wait_answered(rid)
        self.expect_respond("response for a finished request",
                            [agent_response(payload=b"late")],
                            [("x-request-id", rid)], S.NOT_FOUND)
        self.expect_respond("response naming a finished request in the "
                            "body", [agent_response(rid.encode(), b"late")],
                            None, S.NOT_FOUND)

    def test_response_without_or_with_bad_request_id(self):
        for what, msgs, md, codes in (
                ("no id, no message", [], None, S.INVALID_ARGUMENT),
                ("no id in the first message",
                 [agent_response(payload=b"x")], None, S.INVALID_ARGUMENT),
                ("garbage first message", [b"\xff\xff\xff"], None,
                 S.INVALID_ARGUMENT),
                ("invalid UTF-8 id in the body",
                 [agent_response(b"r\xff", b"x")], None,
                 {S.INVALID_ARGUMENT, S.NOT_FOUND}),
                ("overlong id", [agent_response(payload=b"x")],
                 [("x-request-id", "r" * 200)],
                 {S.INVALID_ARGUMENT, S.NOT_FOUND})):
            with self.subTest(what):
                self.expect_respond(what, msgs, md, codes)

    def test_second_response_stream(self):
        rid = self.unique("twice")
        seen = len(self.keeper.order)
        client = self.stub().AgentRequestPublish(
            e2e.request(self.keeper.agent_id, "never", id=rid), timeout=30)
        self.keeper.wait_request(seen + 1)
        #   The first response call binds and stays open.
        gate = threading.Event()

        def first_messages():
            yield agent_response(payload=b"one")
            gate.wait(20)
        fut = self.raw_respond.future(first_messages(), timeout=30,
                                      metadata=[("x-request-id", rid)])
        self.assertEqual(next(client).payload, b"one")
        self.expect_respond("second response stream",
                            [agent_response(payload=b"two")],
                            [("x-request-id", rid)], S.ALREADY_EXISTS)
        gate.set()
        fut.result(10)
        rest = list(client)
        self.assertEqual(rest, [])
        self.assertEqual(client.code(), S.OK)

    #   -- ListAgents --

    def test_list_agents_bad_input(self):
        for what, body, codes in (
                ("garbage", b"\xff\xff\xff\xff", {S.INVALID_ARGUMENT}),
                ("invalid UTF-8 prefix", field(1, b"\xff"),
                 {S.INVALID_ARGUMENT, S.OK}),
                ("huge limit", field_varint(2, 0xFFFFFFFF), {S.OK})):
            with self.subTest(what):
                before = self.snapshot()
                try:
                    self.raw_list(body, timeout=BOUND_S)
                    code = S.OK
                except grpc.RpcError as e:
                    code = e.code()
                self.assertIn(code, codes, what)
                self.assert_unchanged(before, what)


if __name__ == "__main__":
    e2e.main()
