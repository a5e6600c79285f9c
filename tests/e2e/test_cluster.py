#!/usr/bin/python3
"""End-to-end: several edges around one external tether-router, and what
happens when a process dies.

Usage: test_cluster.py --edge PATH --router PATH [unittest args]
"""

import concurrent.futures
import signal
import time

import grpc

import tether_e2e as e2e
from tether_e2e import call

OK = grpc.StatusCode.OK
#   The router's default edge liveness window, and the slack we allow on
#   top of it for a loaded machine.
LIVENESS_S = 3.0
SLACK_S = 5.0


class ClusterTestCase(e2e.GatewayTestCase):
    EXTERNAL = True
    EDGES = 2


class CrossEdge(ClusterTestCase):

    def test_agent_on_a_client_on_b(self):
        a = self.agent(edge=0)
        a.wait_listed(edge=self.gw.edges[1])
        r = call(self.stub(1), a.agent_id, "echo", b"across edges")
        self.assertEqual(r.code, OK, r)
        self.assertEqual(r.payloads, [b"across edges"])
        r = call(self.stub(1), a.agent_id, "stream", b"100")
        self.assertEqual(r.code, OK, r)
        self.assertEqual(r.payloads, [str(i).encode() for i in range(100)])
        r = call(self.stub(1), a.agent_id, "fail",
                 headers={"code": "5", "message": "no such file"})
        self.assertEqual(r.code, grpc.StatusCode.NOT_FOUND, r)
        self.assertEqual(r.details, "no such file")

    def test_list_agents_names_each_edge(self):
        stem = self.unique("x")
        self.agent(stem + "-0", edge=0)
        b = self.agent(stem + "-1", edge=1)
        b.wait_listed(edge=self.gw.edges[0])
        for edge in self.gw.edges:
            infos = edge.list_agents(prefix=stem)
            self.assertEqual([i.agent_id for i in infos],
                             [stem + "-0", stem + "-1"])
            self.assertTrue(infos[0].edge and infos[1].edge, infos)
            self.assertNotEqual(infos[0].edge, infos[1].edge, infos)

    def test_reconnect_to_another_edge(self):
        agent_id = self.unique("roam")
        old = self.agent(agent_id, edge=0)
        old_info = old.wait_listed()
        new = self.agent(agent_id, edge=1)
        code, details = old.wait_ended()
        self.assertEqual(code, grpc.StatusCode.ABORTED, details)
        old.close()
        info = e2e.wait_until(
            lambda: [i for i in self.gw.edges[0].list_agents(prefix=agent_id)
                     if i.session > old_info.session], 10,
            what="the newer session")[0]
        self.assertNotEqual(info.edge, old_info.edge)
        r = call(self.stub(0), agent_id, "echo", b"follow me")
        self.assertEqual(r.code, OK, r)
        self.assertEqual(len(new.wait_request(1)), 1)
        self.assertEqual(old.order, [])

    def test_cancel_across_edges(self):
        a = self.agent(edge=0)
        a.wait_listed(edge=self.gw.edges[1])
        it = self.stub(1).AgentRequestPublish(
            e2e.request(a.agent_id, "slow", headers={"delay_ms": "20"}),
            timeout=30, wait_for_ready=True)
        self.assertEqual(next(it).payload, b"0")
        rid = a.wait_request(1)[0]
        it.cancel()
        a.wait_cancel(rid)
        a.wait_answered(rid)


class RouterRestart(ClusterTestCase):

    def test_kill_router_mid_request_then_restart(self):
        a = self.agent(edge=0)
        a.wait_listed(edge=self.gw.edges[1])
        session = a.wait_listed().session
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            fut = pool.submit(call, self.stub(1), a.agent_id, "never",
                              timeout=60)
            a.wait_request(1)
            self.gw.kill_router(signal.SIGKILL)
            r = fut.result(60)
        self.assertEqual(r.code, grpc.StatusCode.UNAVAILABLE, r)
        self.assertLess(r.elapsed, LIVENESS_S + SLACK_S + 5, r)

        self.gw.restart_router()
        #   The edges re-announce their agents: the agent is routable
        #   again over the subscription it never closed.
        a.wait_listed(edge=self.gw.edges[1], timeout=20)
        r = e2e.wait_until(
            lambda: (lambda res: res if res.code == OK else None)(
                call(self.stub(1), a.agent_id, "echo", b"back", timeout=5)),
            20, what="an echo through the restarted router")
        self.assertEqual(r.payloads, [b"back"])
        self.assertFalse(a.ended, "the agent's subscription ended: %s %s" % (
            a.end_code, a.end_details))
        infos = [i for i in self.gw.edges[0].list_agents(prefix=a.agent_id)
                 if i.agent_id == a.agent_id]
        self.assertEqual(len(infos), 1)
        self.assertGreaterEqual(infos[0].session, session)


class EdgeDeath(ClusterTestCase):

    def test_kill_edge_agents_vanish(self):
        stem = self.unique("doomed")
        a = self.agent(stem + "-a", edge=0)
        survivor = self.agent(stem + "-s", edge=1)
        a.wait_listed(edge=self.gw.edges[1])
        survivor.wait_listed(edge=self.gw.edges[1])
        self.gw.edges[0].proc.signal(signal.SIGKILL)
        self.gw.edges[0].proc.wait(10)
        killed_at = time.monotonic()
        e2e.wait_until(
            lambda: [i.agent_id for i in
                     self.gw.edges[1].list_agents(prefix=stem)] ==
            [stem + "-s"], LIVENESS_S + SLACK_S,
            what="the dead edge's agent to leave ListAgents")
        self.assertLess(time.monotonic() - killed_at, LIVENESS_S + SLACK_S)
        r = call(self.stub(1), a.agent_id, "echo")
        self.assertEqual(r.code, grpc.StatusCode.NOT_FOUND, r)
        r = call(self.stub(1), survivor.agent_id, "echo", b"alive")
        self.assertEqual(r.code, OK, r)


if __name__ == "__main__":
    e2e.main()
