#!/usr/bin/python3
"""End-to-end: the public API of one gateway, seen by a Debian grpcio client
and agent.  Every scenario runs against two fixtures: one tether-edge with
its embedded router, and one tether-edge connected to an external
tether-router (-k Embedded / -k External select one).

Usage: test_gateway.py --edge PATH --router PATH [unittest args]
"""

import concurrent.futures
import os
import time

import grpc

import tether_e2e as e2e
from tether_e2e import call, request

OK = grpc.StatusCode.OK
MIB = 1 << 20


class BasicScenarios:
    """Scenarios for a gateway with default timings."""

    CORE_ARGS = ("--max-message-size", "2MiB",
                 "--max-wait-for-agent", "30s",
                 "--max-in-flight-per-agent", "1000")
    EDGE_ARGS = ("--max-message-size", "2MiB")

    def in_flight(self, agent):
        for info in self.gw.edges[0].list_agents(prefix=agent.agent_id):
            if info.agent_id == agent.agent_id:
                return info.in_flight
        return None

    def wait_in_flight_zero(self, agent, timeout=10):
        e2e.wait_until(lambda: self.in_flight(agent) == 0, timeout,
                       what="in_flight of %s back to 0" % agent.agent_id)

    # -- happy path --

    def test_echo_round_trip(self):
        a = self.agent()
        r = call(self.stub(), a.agent_id, "echo", b"hello tether")
        self.assertEqual(r.code, OK, r)
        self.assertEqual(r.payloads, [b"hello tether"])
        ids = a.wait_request(1)
        req = a.requests[ids[0]]
        self.assertEqual(req.call, "echo")
        self.assertEqual(req.agent_id, a.agent_id)
        self.assertTrue(req.id, "the gateway fills in an empty request id")
        self.assertFalse(req.cancel)
        self.assertEqual(a.wait_answered(req.id), OK)

    def test_request_fields_reach_the_agent(self):
        a = self.agent()
        r = call(self.stub(), a.agent_id, "echo", b"x", id="client-id-1",
                 headers={"h1": "v1", "h2": "v2"})
        self.assertEqual(r.code, OK, r)
        req = a.requests[a.wait_request(1)[0]]
        self.assertEqual(req.id, "client-id-1")
        self.assertEqual(dict(req.headers), {"h1": "v1", "h2": "v2"})

    def test_response_named_by_request_id_in_body(self):
        a = self.agent()
        r = call(self.stub(), a.agent_id, "echo-in-body", b"no metadata")
        self.assertEqual(r.code, OK, r)
        self.assertEqual(r.payloads, [b"no metadata"])

    def test_unknown_agent_is_not_found(self):
        r = call(self.stub(), self.unique("nobody"), "echo", b"?")
        self.assertEqual(r.code, grpc.StatusCode.NOT_FOUND, r)
        self.assertEqual(r.messages, [])

    def test_hundred_messages_in_order(self):
        a = self.agent()
        r = call(self.stub(), a.agent_id, "stream", b"100")
        self.assertEqual(r.code, OK, r)
        self.assertEqual(r.payloads, [str(i).encode() for i in range(100)])

    def test_agent_status_propagates(self):
        a = self.agent()
        r = call(self.stub(), a.agent_id, "fail",
                 headers={"code": "7", "message": "no access to /etc",
                          "data": "partial"})
        self.assertEqual(r.code, grpc.StatusCode.PERMISSION_DENIED, r)
        self.assertEqual(r.details, "no access to /etc")
        self.assertGreaterEqual(len(r.messages), 1, r)
        self.assertEqual(r.messages[0].payload, b"partial")

    # -- deadlines and cancellation --

    def test_client_deadline_wins(self):
        a = self.agent()
        r = call(self.stub(), a.agent_id, "never", timeout=0.3)
        self.assertEqual(r.code, grpc.StatusCode.DEADLINE_EXCEEDED, r)
        self.assertLess(r.elapsed, 3.0, r)
        rid = a.wait_request(1)[0]
        #   The gateway judged the deadline too: the agent is told to stop
        #   and the request no longer counts against it.
        a.wait_cancel(rid)
        self.wait_in_flight_zero(a)

    def test_client_cancel_mid_stream(self):
        a = self.agent()
        it = self.stub().AgentRequestPublish(
            request(a.agent_id, "slow", headers={"delay_ms": "20"}),
            timeout=30, wait_for_ready=True)
        got = [next(it).payload for _ in range(3)]
        self.assertEqual(got, [b"0", b"1", b"2"])
        rid = a.wait_request(1)[0]
        self.assertEqual(self.in_flight(a), 1)
        it.cancel()
        a.wait_cancel(rid)
        #   The agent's response call is ended, and the request freed.
        a.wait_answered(rid)
        self.wait_in_flight_zero(a)
        #   The agent is still routable.
        r = call(self.stub(), a.agent_id, "echo", b"after cancel")
        self.assertEqual(r.code, OK, r)

    def test_duplicate_request_id_in_flight(self):
        a = self.agent()
        first = self.stub().AgentRequestPublish(
            request(a.agent_id, "never", id="dup-1"), timeout=30,
            wait_for_ready=True)
        a.wait_request(1)
        r = call(self.stub(), a.agent_id, "echo", id="dup-1")
        self.assertEqual(r.code, grpc.StatusCode.ALREADY_EXISTS, r)
        first.cancel()
        a.wait_cancel("dup-1")

    # -- agents --

    def test_reconnect_race_newer_wins(self):
        agent_id = self.unique("race")
        old = self.agent(agent_id)
        old_info = old.wait_listed()
        new = self.agent(agent_id, subscribe=False)
        new.subscribe(wait=False)
        #   The older stream is told it was superseded...
        code, details = old.wait_ended()
        self.assertEqual(code, grpc.StatusCode.ABORTED, details)
        #   ...and closing it last does not unlist the newer one.
        old.close()
        info = e2e.wait_until(
            lambda: [i for i in self.gw.edges[0].list_agents(prefix=agent_id)
                     if i.agent_id == agent_id and
                     i.session > old_info.session],
            10, what="the newer session in ListAgents")[0]
        self.assertGreater(info.session, old_info.session)
        r = call(self.stub(), agent_id, "echo", b"to the newer")
        self.assertEqual(r.code, OK, r)
        self.assertEqual(r.payloads, [b"to the newer"])
        self.assertEqual(len(new.wait_request(1)), 1)
        self.assertEqual(old.order, [])
        self.assertFalse(new.ended)
        listed = [i for i in self.gw.edges[0].list_agents(prefix=agent_id)
                  if i.agent_id == agent_id]
        self.assertEqual(len(listed), 1)
        self.assertEqual(listed[0].session, info.session)

    def test_superseded_request_survives_and_cancel_goes_to_newer(self):
        agent_id = self.unique("handover")
        old = self.agent(agent_id)
        it = self.stub().AgentRequestPublish(
            request(agent_id, "never", id="handover-1"), timeout=30,
            wait_for_ready=True)
        old.wait_request(1)
        new = self.agent(agent_id, subscribe=False)
        new.subscribe(wait=False)
        code, details = old.wait_ended()
        self.assertEqual(code, grpc.StatusCode.ABORTED, details)
        #   The delivered request stays in flight under the newer session.
        self.assertFalse(it.done(), "the request ended with its stream")
        self.assertEqual(self.in_flight(new), 1)
        #   A cancel notice for it goes to the newer stream.
        it.cancel()
        new.wait_cancel("handover-1")
        self.wait_in_flight_zero(new)

    def test_agent_leaving_fails_waiting_requests_fast(self):
        a = self.agent()
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            fut = pool.submit(call, self.stub(), a.agent_id, "never",
                              timeout=30)
            a.wait_request(1)
            a.close()
            r = fut.result(40)
        #   Nobody is left to answer: UNAVAILABLE at once, long before the
        #   10 s first-response deadline.
        self.assertEqual(r.code, grpc.StatusCode.UNAVAILABLE, r)
        self.assertLess(r.elapsed, 5.0, r)

    def test_list_agents(self):
        stem = self.unique("ls")
        before_ms = int(time.time() * 1000)
        a1 = self.agent(stem + "-a1", labels={"site": "lab", "os": "linux"})
        self.agent(stem + "-a2")
        self.agent(stem + "-b1", labels={"site": "field"})
        after_ms = int(time.time() * 1000)
        edge = self.gw.edges[0]

        everything = edge.list_agents(prefix=stem)
        self.assertEqual([i.agent_id for i in everything],
                         [stem + "-a1", stem + "-a2", stem + "-b1"])
        first = everything[0]
        self.assertEqual(dict(first.labels), {"site": "lab", "os": "linux"})
        self.assertTrue(first.edge, "AgentInfo.edge is empty")
        self.assertGreater(first.session, 0)
        self.assertEqual(first.in_flight, 0)
        self.assertGreaterEqual(first.connected_at_unix_ms, before_ms - 5000)
        self.assertLessEqual(first.connected_at_unix_ms, after_ms + 5000)
        self.assertEqual(len({i.session for i in everything}), 3)

        only_a = edge.list_agents(prefix=stem + "-a")
        self.assertEqual([i.agent_id for i in only_a],
                         [stem + "-a1", stem + "-a2"])
        limited = edge.list_agents(prefix=stem, limit=1)
        self.assertEqual([i.agent_id for i in limited], [stem + "-a1"])
        self.assertEqual(edge.list_agents(prefix=stem + "-zzz"), [])

        #   An agent that leaves is unlisted.
        a1.close()
        e2e.wait_until(
            lambda: [i.agent_id for i in edge.list_agents(prefix=stem)] ==
            [stem + "-a2", stem + "-b1"], 10, what="a1 to leave ListAgents")

    # -- load and size --

    def test_two_hundred_concurrent_requests(self):
        a = self.agent()
        stub = self.stub()
        calls = [stub.AgentRequestPublish(
            request(a.agent_id, "echo", b"%d" % i), timeout=60,
            wait_for_ready=True) for i in range(200)]
        failures = []
        for i, it in enumerate(calls):
            try:
                got = [m.payload for m in it]
                if got != [b"%d" % i]:
                    failures.append((i, got))
            except grpc.RpcError as e:
                failures.append((i, e.code(), e.details()))
        self.assertEqual(failures, [])
        self.assertEqual(len(set(a.order)), 200)
        self.wait_in_flight_zero(a)

    def test_one_mebibyte_round_trip(self):
        a = self.agent()
        payload = os.urandom(MIB)
        r = call(self.stub(), a.agent_id, "echo", payload, timeout=30)
        self.assertEqual(r.code, OK, r)
        self.assertEqual(len(r.messages), 1)
        self.assertTrue(r.payloads[0] == payload, "payload changed in transit")

    def test_oversize_message_is_resource_exhausted(self):
        a = self.agent()
        r = call(self.stub(), a.agent_id, "echo", b"x" * (3 * MIB),
                 timeout=30)
        self.assertEqual(r.code, grpc.StatusCode.RESOURCE_EXHAUSTED, r)
        self.assertEqual(a.order, [], "an oversize request reached the agent")
        #   The gateway is still fine.
        r = call(self.stub(), a.agent_id, "echo", b"small")
        self.assertEqual(r.code, OK, r)

    # -- waiting for an agent --

    def test_wait_for_agent_delivers_on_subscribe(self):
        agent_id = self.unique("late")
        r = call(self.stub(), agent_id, "echo", b"now")
        self.assertEqual(r.code, grpc.StatusCode.NOT_FOUND, r)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            fut = pool.submit(call, self.stub(), agent_id, "echo", b"parked",
                              timeout=30,
                              metadata=[("x-wait-for-agent-ms", "20000")])
            #   Subscribing takes a new connection and a round trip to the
            #   router; the request is already on its way.
            a = self.agent(agent_id, subscribe=False)
            a.subscribe(wait=False)
            r = fut.result(40)
        self.assertEqual(r.code, OK, r)
        self.assertEqual(r.payloads, [b"parked"])
        self.assertLess(r.elapsed, 20.0, r)

    def test_wait_for_agent_ends_not_found(self):
        r = call(self.stub(), self.unique("never-comes"), "echo", timeout=10,
                 metadata=[("x-wait-for-agent-ms", "300")])
        self.assertEqual(r.code, grpc.StatusCode.NOT_FOUND, r)
        self.assertGreaterEqual(r.elapsed, 0.25, r)
        self.assertLess(r.elapsed, 5.0, r)

    # -- other services --

    def test_health_check_serving(self):
        check = self.gw.edges[0].channel.unary_unary(
            "/grpc.health.v1.Health/Check")
        #   HealthCheckRequest{} is empty; HealthCheckResponse{status:
        #   SERVING} is field 1 = 1.
        self.assertEqual(check(b"", timeout=5, wait_for_ready=True),
                         b"\x08\x01")

    def test_unknown_method_unimplemented(self):
        ch = self.gw.edges[0].channel
        for method in ("/tether.v1.AgentGateway/NoSuchMethod",
                       "/no.such.Service/Call"):
            with self.assertRaises(grpc.RpcError) as ctx:
                ch.unary_unary(method)(b"", timeout=5, wait_for_ready=True)
            self.assertEqual(ctx.exception.code(),
                             grpc.StatusCode.UNIMPLEMENTED, method)


class TimeoutScenarios:
    """Scenarios for a gateway with a short first-response deadline."""

    CORE_ARGS = ("--first-response-timeout", "500ms",
                 "--idle-timeout", "700ms")

    def test_first_response_timeout(self):
        a = self.agent()
        r = call(self.stub(), a.agent_id, "never", timeout=20)
        self.assertEqual(r.code, grpc.StatusCode.DEADLINE_EXCEEDED, r)
        self.assertGreaterEqual(r.elapsed, 0.45, r)
        self.assertLess(r.elapsed, 5.0, r)
        rid = a.wait_request(1)[0]
        a.wait_cancel(rid)

    def test_idle_timeout_between_messages(self):
        a = self.agent()
        r = call(self.stub(), a.agent_id, "slow", timeout=20,
                 headers={"count": "3", "delay_ms": "3000"})
        self.assertEqual(r.code, grpc.StatusCode.DEADLINE_EXCEEDED, r)
        self.assertEqual(r.payloads, [b"0"])
        self.assertGreaterEqual(r.elapsed, 0.6, r)
        self.assertLess(r.elapsed, 2.9, r)
        rid = a.wait_request(1)[0]
        a.wait_cancel(rid)

    def test_streaming_answer_beats_first_response_timeout(self):
        a = self.agent()
        r = call(self.stub(), a.agent_id, "slow", timeout=20,
                 headers={"count": "6", "delay_ms": "200"})
        self.assertEqual(r.code, OK, r)
        self.assertEqual(r.payloads, [str(i).encode() for i in range(6)])
        self.assertGreaterEqual(r.elapsed, 0.9, r)


class EmbeddedBasic(BasicScenarios, e2e.GatewayTestCase):
    EXTERNAL = False


class ExternalBasic(BasicScenarios, e2e.GatewayTestCase):
    EXTERNAL = True


class EmbeddedTimeouts(TimeoutScenarios, e2e.GatewayTestCase):
    EXTERNAL = False


class ExternalTimeouts(TimeoutScenarios, e2e.GatewayTestCase):
    EXTERNAL = True


if __name__ == "__main__":
    e2e.main()
