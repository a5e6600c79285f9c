#!/usr/bin/python3
"""fake_edge - a small stand-in for tether-edge, in Python grpcio.

It serves tether.v1.AgentGateway and grpc.health.v1.Health/Check with the
semantics of docs/protocol.md that the agent library and the command line
rely on (subscribe, supersede with ABORTED "superseded", publish, respond
by x-request-id, cancel notices, ListAgents, UNAVAILABLE on shutdown), so
the client tests can run against it as well as against the real edge.

Usage: fake_edge.py --listen HOST:PORT   (logs a line with listen=HOST:PORT)
"""

import argparse
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent import futures

import grpc

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_DIR = os.path.normpath(os.path.join(HERE, "..", "..", "proto"))


def load_pb():
    out = tempfile.mkdtemp(prefix="tether-fake-edge-")
    subprocess.run(["protoc", "--python_out=" + out, "-I", PROTO_DIR,
                    os.path.join(PROTO_DIR, "tether.proto")], check=True)
    sys.path.insert(0, out)
    import tether_pb2
    shutil.rmtree(out, True)
    return tether_pb2


pb = load_pb()


def log(msg, **fields):
    extra = "".join(" %s=%s" % (k, v) for k, v in fields.items())
    sys.stderr.write('level=info svc=tether-edge msg="%s"%s\n' % (msg, extra))
    sys.stderr.flush()


class Stream:
    def __init__(self, agent_id, labels, session):
        self.agent_id = agent_id
        self.labels = dict(labels)
        self.session = session
        self.connected_at = int(time.time() * 1000)
        self.queue = queue.Queue()


class Request:
    def __init__(self, rid, agent_id):
        self.id = rid
        self.agent_id = agent_id
        self.queue = queue.Queue()
        self.finished = False
        self.responding = False


class Hub:
    def __init__(self):
        self.lock = threading.Condition()
        self.agents = {}
        self.requests = {}
        self.session = 0
        self.stopping = False

    # --- AgentRequestSubscribe
    def subscribe(self, info, context):
        with self.lock:
            self.session += 1
            stream = Stream(info.agent_id, info.labels, self.session)
            old = self.agents.get(info.agent_id)
            self.agents[info.agent_id] = stream
            self.lock.notify_all()
        if old:
            old.queue.put(("kick", grpc.StatusCode.ABORTED, "superseded"))
        log("agent up", agent=info.agent_id, session=stream.session)
        context.send_initial_metadata(())
        try:
            while True:
                try:
                    item = stream.queue.get(timeout=0.2)
                except queue.Empty:
                    if not context.is_active():
                        return
                    continue
                if item[0] == "kick":
                    context.abort(item[1], item[2])
                yield item[1]
        finally:
            with self.lock:
                if self.agents.get(info.agent_id) is stream:
                    del self.agents[info.agent_id]
                    for req in list(self.requests.values()):
                        if req.agent_id == info.agent_id and not req.responding:
                            req.queue.put(("end", grpc.StatusCode.UNAVAILABLE,
                                           "agent disconnected"))
            log("agent down", agent=info.agent_id, session=stream.session)

    # --- AgentRequestPublish
    def publish(self, request, context):
        md = dict(context.invocation_metadata())
        wait_ms = int(md.get("x-wait-for-agent-ms", "0") or 0)
        deadline = time.monotonic() + wait_ms / 1000.0
        with self.lock:
            while request.agent_id not in self.agents:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.lock.wait(left)
            stream = self.agents.get(request.agent_id)
            if stream is None:
                context.abort(grpc.StatusCode.NOT_FOUND, "agent not connected")
            rid = request.id or uuid.uuid4().hex
            if rid in self.requests:
                context.abort(grpc.StatusCode.ALREADY_EXISTS, "request id in flight")
            req = Request(rid, request.agent_id)
            self.requests[rid] = req
        forwarded = pb.AgentRequest()
        forwarded.CopyFrom(request)
        forwarded.id = rid

        def on_done():
            with self.lock:
                if not req.finished:
                    req.finished = True
                    current = self.agents.get(req.agent_id)
                    if current:
                        current.queue.put(("req", pb.AgentRequest(id=rid, cancel=True)))
                self.requests.pop(rid, None)
        context.add_callback(on_done)
        stream.queue.put(("req", forwarded))
        while True:
            item = req.queue.get()
            if item[0] == "msg":
                yield item[1]
                continue
            with self.lock:
                req.finished = True
                self.requests.pop(rid, None)
            if item[1] != grpc.StatusCode.OK:
                context.abort(item[1], item[2])
            return

    # --- AgentResponsePublish
    def respond(self, iterator, context):
        md = dict(context.invocation_metadata())
        rid = md.get("x-request-id", "")
        with self.lock:
            req = self.requests.get(rid)
            if req is not None:
                req.responding = True
        if req is None:
            context.abort(grpc.StatusCode.NOT_FOUND, "no such request")
        for response in iterator:
            if req.finished:
                context.abort(grpc.StatusCode.CANCELLED, "request cancelled")
            if response.status_code:
                req.queue.put(("end", grpc.StatusCode(
                    [c for c in grpc.StatusCode
                     if c.value[0] == response.status_code][0]),
                    response.status_message))
                return pb.Empty()
            req.queue.put(("msg", pb.AgentResponse(payload=response.payload)))
        if req.finished:
            context.abort(grpc.StatusCode.CANCELLED, "request cancelled")
        req.queue.put(("end", grpc.StatusCode.OK, ""))
        return pb.Empty()

    # --- ListAgents
    def list_agents(self, request, context):
        with self.lock:
            streams = sorted(self.agents.values(), key=lambda s: s.agent_id)
        reply = pb.ListAgentsResponse()
        for s in streams:
            if not s.agent_id.startswith(request.prefix):
                continue
            #   Pages: agents after page_token, next_page_token = the last
            #   one shown when more follow.
            if request.page_token and s.agent_id <= request.page_token:
                continue
            if request.limit and len(reply.agents) >= request.limit:
                reply.next_page_token = reply.agents[-1].agent_id
                break
            inflight = sum(1 for r in self.requests.values()
                           if r.agent_id == s.agent_id)
            reply.agents.add(agent_id=s.agent_id, edge="fake",
                             connected_at_unix_ms=s.connected_at,
                             labels=s.labels, in_flight=inflight,
                             session=s.session)
        return reply

    def shutdown(self):
        with self.lock:
            for s in self.agents.values():
                s.queue.put(("kick", grpc.StatusCode.UNAVAILABLE,
                             "edge shutting down"))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", default="0.0.0.0:50051")
    args = parser.parse_args()
    hub = Hub()
    handlers = {
        "AgentRequestSubscribe": grpc.unary_stream_rpc_method_handler(
            hub.subscribe, pb.SubscriberInfo.FromString,
            pb.AgentRequest.SerializeToString),
        "AgentRequestPublish": grpc.unary_stream_rpc_method_handler(
            hub.publish, pb.AgentRequest.FromString,
            pb.AgentResponse.SerializeToString),
        "AgentResponsePublish": grpc.stream_unary_rpc_method_handler(
            hub.respond, pb.AgentResponse.FromString,
            pb.Empty.SerializeToString),
        "ListAgents": grpc.unary_unary_rpc_method_handler(
            hub.list_agents, pb.ListAgentsRequest.FromString,
            pb.ListAgentsResponse.SerializeToString),
    }
    health = {"Check": grpc.unary_unary_rpc_method_handler(
        lambda request, context: b"\x08\x01", None, None)}
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=64),
                         options=[("grpc.so_reuseport", 0),
                                  # Agent pings, as tether-edge allows them.
                                  ("grpc.http2.min_ping_interval_without_data_ms",
                                   10000),
                                  ("grpc.http2.max_ping_strikes", 2),
                                  ("grpc.keepalive_permit_without_calls", 1)])
    server.add_generic_rpc_handlers((
        grpc.method_handlers_generic_handler("tether.v1.AgentGateway", handlers),
        grpc.method_handlers_generic_handler("grpc.health.v1.Health", health)))
    host = args.listen.rsplit(":", 1)[0]
    port = server.add_insecure_port(args.listen)
    if not port:
        log("cannot listen", listen=args.listen)
        sys.exit(1)
    server.start()
    log("listening", listen="%s:%d" % (host, port))
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: done.set())
    signal.signal(signal.SIGINT, lambda *a: done.set())
    while not done.wait(1.0):
        pass
    hub.shutdown()
    server.stop(grace=1.0).wait()
    log("stopped")


if __name__ == "__main__":
    main()
