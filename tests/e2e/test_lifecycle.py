#!/usr/bin/python3
"""End-to-end: starting and stopping an edge.  Each test gets fresh
processes, in both fixtures (embedded and external router).

Usage: test_lifecycle.py --edge PATH --router PATH [unittest args]
"""

import concurrent.futures
import signal

import grpc

import tether_e2e as e2e
from tether_e2e import call


class LifecycleScenarios:

    @classmethod
    def setUpClass(cls):
        pass

    @classmethod
    def tearDownClass(cls):
        pass

    def setUp(self):
        super().setUp()
        self.gw = self.make_gateway()

    def tearDown(self):
        super().tearDown()
        unclean = self.gw.close()
        self.assertEqual(unclean, [], "processes did not exit cleanly")

    def test_sigterm_ends_agent_streams_and_exits_zero(self):
        a = self.agent()
        edge = self.gw.edges[0]
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            fut = pool.submit(call, self.stub(), a.agent_id, "never",
                              timeout=60)
            a.wait_request(1)
            edge.proc.signal(signal.SIGTERM)
            code = edge.proc.wait(15)
            r = fut.result(30)
        self.assertEqual(code, 0, "tether-edge exit code after SIGTERM")
        end_code, details = a.wait_ended()
        self.assertEqual(end_code, grpc.StatusCode.UNAVAILABLE, details)
        self.assertNotEqual(r.code, grpc.StatusCode.OK, r)

    def test_idle_edge_sigterm_exits_zero(self):
        edge = self.gw.edges[0]
        edge.proc.signal(signal.SIGTERM)
        self.assertEqual(edge.proc.wait(15), 0)


class EmbeddedLifecycle(LifecycleScenarios, e2e.GatewayTestCase):
    EXTERNAL = False


class ExternalLifecycle(LifecycleScenarios, e2e.GatewayTestCase):
    EXTERNAL = True

    def test_router_sigterm_exits_zero(self):
        self.gw.router.signal(signal.SIGTERM)
        self.assertEqual(self.gw.router.wait(15), 0)


if __name__ == "__main__":
    e2e.main()
