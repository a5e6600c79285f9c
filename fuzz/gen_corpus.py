#!/usr/bin/env python3
"""gen_corpus - write the seed corpus of the fuzz targets.

    python3 fuzz/gen_corpus.py [OUTDIR]      (default: fuzz/corpus)

Every seed is built here from well-formed messages (protobuf wire format
written by hand, so no protobuf library is needed), one file per seed,
named after what it exercises:

  wire_envelope/    one envelope per command, with typical fields
  router_core/      programs for fuzz_router_core.c: the flows of
                    docs/protocol.md (publish, bind, respond, credit, end,
                    cancel, supersede, unsubscribe, wait, deadlines, edge
                    loss, HELLO after a restart, limits)
  public_messages/  a type byte + SubscriberInfo, AgentRequest,
                    AgentResponse or ListAgentsRequest
  edge_parse/       a check byte + a public message, an
                    x-wait-for-agent-ms or x-request-id value, or bytes to
                    escape for a log line (fuzz_edge_parse.c)

The program format is described at the top of fuzz_router_core.c; the
constants below must match it.
"""

import os
import struct
import sys


# --------------------------------------------------------------------------
#  Protobuf wire format

def varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def f_len(number, data):
    if isinstance(data, str):
        data = data.encode()
    return varint(number << 3 | 2) + varint(len(data)) + data


def f_int(number, value):
    return varint(number << 3) + varint(value) if value else b""


def f_map(number, items):
    return b"".join(f_len(number, f_len(1, k) + f_len(2, v))
                    for k, v in items)


# --------------------------------------------------------------------------
#  wire.Envelope

CMD = dict(HELLO=1, PING=2, SUBSCRIBE=3, UNSUBSCRIBE=4, PUBLISH=5, CANCEL=6,
           BIND=7, RESPONSE=8, END=9, CREDIT=10, LIST=11, WELCOME=32,
           PONG=33, SUBSCRIBED=34, KICK=35, DELIVER=36, ABORT=37, BOUND=38,
           REPLY=39, FINISH=40, GRANT=41, AGENTS=42)


def agent_entry(handle, agent_id, labels=(), connected_at=0, session=0):
    return (f_int(1, handle) + f_len(2, agent_id) + f_map(3, labels)
            + f_int(4, connected_at) + f_int(5, session))


def envelope(command, version=1, handle=0, request_id="", agent_id="",
             session=0, status=0, message="", credit=0, timeout_ms=0,
             wait_ms=0, edge_id="", incarnation=0, known=False, agents=(),
             agent=None, prefix="", limit=0):
    out = f_int(1, version) + f_int(2, CMD[command]) + f_int(3, handle)
    for number, text in ((4, request_id), (5, agent_id)):
        if text:
            out += f_len(number, text)
    out += f_int(6, session) + f_int(7, status)
    if message:
        out += f_len(8, message)
    out += f_int(9, credit) + f_int(10, timeout_ms) + f_int(11, wait_ms)
    if edge_id:
        out += f_len(12, edge_id)
    out += f_int(13, incarnation) + f_int(14, 1 if known else 0)
    out += b"".join(f_len(15, a) for a in agents)
    if agent is not None:
        out += f_len(16, agent)
    if prefix:
        out += f_len(17, prefix)
    return out + f_int(18, limit)


def wire_seeds():
    e = envelope
    return {
        "hello": e("HELLO", edge_id="127.0.0.1:50051", incarnation=7),
        "hello_agents": e("HELLO", edge_id="e0", incarnation=9, agents=[
            agent_entry(1, "dev-1", [("site", "lab")], 1700000000000, 5),
            agent_entry(2, "dev-2")]),
        "ping": e("PING", edge_id="e0", incarnation=9),
        "subscribe": e("SUBSCRIBE", agent=agent_entry(
            3, "dev-3", [("os", "linux"), ("arch", "arm64")], 1700000000000)),
        "unsubscribe": e("UNSUBSCRIBE", handle=3, session=1000),
        "publish": e("PUBLISH", handle=4, request_id="r-1", agent_id="dev-1",
                     timeout_ms=5000, wait_ms=100, credit=16),
        "cancel": e("CANCEL", handle=4, request_id="r-1"),
        "bind": e("BIND", handle=5, request_id="r-1"),
        "response": e("RESPONSE", handle=5, request_id="r-1"),
        "end_ok": e("END", handle=5, request_id="r-1"),
        "end_error": e("END", handle=5, request_id="r-1", status=5,
                       message="no such file"),
        "credit": e("CREDIT", handle=4, request_id="r-1", credit=3),
        "list": e("LIST", handle=6, prefix="dev-", limit=10),
        "welcome": e("WELCOME", incarnation=0x1234),
        "pong": e("PONG", incarnation=0x1234, known=True),
        "subscribed": e("SUBSCRIBED", handle=3, session=1000,
                        agent_id="dev-3"),
        "kick": e("KICK", handle=3, session=1000, status=10,
                  message="superseded"),
        "deliver": e("DELIVER", handle=3, session=1000, request_id="r-1"),
        "abort": e("ABORT", handle=3, session=1000, request_id="r-1"),
        "bound": e("BOUND", handle=5, request_id="r-1", credit=16),
        "reply": e("REPLY", handle=4, request_id="r-1"),
        "finish": e("FINISH", handle=4, request_id="r-1", status=4,
                    message="deadline exceeded"),
        "grant": e("GRANT", handle=5, request_id="r-1", credit=1),
        "agents": e("AGENTS", handle=6),
        "version2": e("PING", version=2, edge_id="e0"),
        "unknown_command": f_int(1, 1) + f_int(2, 99),
        "big_handle": e("BIND", handle=(1 << 64) - 1, request_id="r" * 64),
    }


# --------------------------------------------------------------------------
#  fuzz_router_core programs

IDS = ["r0", "r1", "r2", "", "r 3", "r0\x7f"]
AGENTS = ["a0", "a1", "a2", "", "bad id", "a0.x"]
OP_RAW, OP_ENV, OP_TIME, OP_LOST, OP_LIST = range(5)
#   prefix flags
P_HELLO, P_SUB, P_PUB, P_BIND = 1, 2, 4, 8
P_ALL = P_HELLO | P_SUB | P_PUB | P_BIND
NO_PAYLOAD = 0x80


class Program:
    def __init__(self, flags=P_ALL):
        self.out = bytearray([flags])

    def op(self, kind, dt=1):
        self.out += bytes([dt, kind])

    def env(self, edge, command, handle=0, rid="r0", aid="a0", session=0,
            status=0, credit=0, timeout=0, wait=0, name=None, inc=0,
            entries=(), payload=NO_PAYLOAD):
        """entries: (handle, agent, session byte, labelled)."""
        self.op(OP_ENV)
        self.out += bytes([
            edge, CMD[command] - 1, handle, IDS.index(rid), AGENTS.index(aid),
            session, status + 1, credit, timeout, wait,
            edge if name is None else name, inc, len(entries)])
        for h, a, s, labelled in entries:
            self.out += bytes([h, AGENTS.index(a), s, 1 if labelled else 0])
        self.out.append(payload)
        return self

    def raw(self, edge, frames):
        self.op(OP_RAW)
        self.out += bytes([edge, len(frames)])
        for f in frames:
            self.out += struct.pack("<H", len(f)) + f
        return self

    def time(self, ms):
        self.op(OP_TIME)
        self.out += struct.pack("<H", ms)
        return self

    def lost(self, edge):
        self.op(OP_LOST)
        self.out.append(edge)
        return self

    def list(self, edge, handle=9, prefix="a0", limit=0):
        self.op(OP_LIST)
        self.out += bytes([edge, handle, AGENTS.index(prefix), limit])
        return self

    def bytes(self):
        return bytes(self.out)


def core_seeds():
    seeds = {}

    def add(name, prog):
        seeds[name] = prog.bytes()

    #   Prefix: e0 and e1 joined (a1 on e1), a0 on e0 (handle 2, session
    #   1000 = byte 1), r0 published from e1 (handle 3) and bound on e0
    #   (handle 4).
    add("empty_prefix", Program(0))
    add("prefix_only", Program())
    add("respond_and_end", Program()
        .env(0, "RESPONSE", 4, payload=8).env(1, "CREDIT", 3, credit=1)
        .env(0, "RESPONSE", 4, payload=8).env(0, "END", 4))
    add("end_with_status", Program().env(0, "END", 4, status=5))
    add("cancel", Program().env(1, "CANCEL", 3))
    add("cancel_unbound", Program(P_HELLO | P_SUB | P_PUB)
        .env(1, "CANCEL", 3))
    add("supersede_other_edge", Program()
        .env(1, "SUBSCRIBE", entries=[(5, "a0", 0, False)])
        .env(0, "RESPONSE", 4, payload=4).env(0, "END", 4))
    add("unsubscribe_current", Program(P_HELLO | P_SUB | P_PUB)
        .env(0, "UNSUBSCRIBE", 2, session=2))
    add("unsubscribe_stale", Program()
        .env(0, "UNSUBSCRIBE", 2, session=9))
    add("unsubscribe_before_subscribed", Program(P_HELLO | P_SUB)
        .env(0, "UNSUBSCRIBE", 2, session=0))
    add("first_response_deadline", Program(P_HELLO | P_SUB | P_PUB)
        .time(400))
    add("idle_deadline", Program().env(0, "RESPONSE", 4, payload=1)
        .time(600))
    add("client_deadline", Program().time(1100))
    add("edge_silence", Program().time(1600).time(1600))
    add("edge_unreachable_agent", Program().lost(0))
    add("edge_unreachable_client", Program().lost(1))
    add("wait_then_subscribe", Program(P_HELLO)
        .env(1, "PUBLISH", 3, rid="r1", aid="a2", wait=50, credit=2,
             payload=4)
        .env(0, "SUBSCRIBE", entries=[(6, "a2", 0, True)]))
    add("wait_expires", Program(P_HELLO)
        .env(1, "PUBLISH", 3, rid="r1", aid="a2", wait=20, payload=4)
        .time(500))
    add("not_found", Program(P_HELLO)
        .env(1, "PUBLISH", 3, rid="r1", aid="a2", payload=4))
    add("credit_overrun", Program()
        .env(0, "RESPONSE", 4, payload=4).env(0, "RESPONSE", 4, payload=4)
        .env(0, "RESPONSE", 4, payload=4))
    add("duplicate_request", Program()
        .env(1, "PUBLISH", 5, rid="r0", aid="a0", payload=4))
    add("bind_twice", Program().env(0, "BIND", 6))
    add("bind_unknown", Program().env(0, "BIND", 6, rid="r2"))
    add("bind_parked", Program(P_HELLO)
        .env(1, "PUBLISH", 3, rid="r1", aid="a2", wait=50, payload=4)
        .env(0, "BIND", 6, rid="r1"))
    add("refuse_delivery", Program(P_HELLO | P_SUB | P_PUB)
        .env(0, "END", 2, status=8))
    add("hello_again", Program()
        .env(0, "HELLO", inc=2, entries=[(2, "a0", 1, False),
                                         (7, "a2", 0, True)]))
    add("hello_third_edge", Program().env(2, "HELLO", name=2)
        .env(2, "PING", name=2))
    add("ping_unknown", Program(0).env(0, "PING").env(0, "PUBLISH", 3,
                                                      payload=4))
    add("list", Program().list(0).list(1, prefix="", limit=1))
    add("bad_ids", Program()
        .env(1, "PUBLISH", 5, rid="r 3", aid="a0", payload=4)
        .env(1, "PUBLISH", 5, rid="r1", aid="bad id", payload=4)
        .env(0, "SUBSCRIBE", entries=[(5, "", 0, False)]))
    add("oversize_payload", Program(P_HELLO | P_SUB)
        .env(1, "PUBLISH", 3, rid="r1", aid="a0", payload=0x7F))
    add("in_flight_limit", Program(P_HELLO | P_SUB)
        .env(1, "PUBLISH", 3, rid="r0", payload=1)
        .env(1, "PUBLISH", 4, rid="r1", payload=1)
        .env(1, "PUBLISH", 5, rid="r2", payload=1)
        .env(1, "PUBLISH", 6, rid="r0\x7f", payload=1))
    add("raw_garbage", Program()
        .raw(0, [b"\xff\xff"]).raw(1, []).raw(0, [b"", b"", b""])
        .raw(1, [envelope("PING", edge_id="e1", incarnation=0), b"x"]))
    add("raw_wrong_frames", Program()
        .raw(1, [envelope("PUBLISH", handle=3, request_id="r1",
                          agent_id="a0")])
        .raw(0, [envelope("BIND", handle=4, request_id="r0"), b"p", b"q"]))
    add("router_commands_from_edge", Program()
        .raw(0, [envelope("FINISH", handle=4, request_id="r0")])
        .raw(0, [envelope("DELIVER", handle=2, request_id="r0"), b"x"]))
    return seeds


# --------------------------------------------------------------------------
#  public messages

def public_seeds():
    sub = lambda body: b"\x00" + body          # noqa: E731
    req = lambda body: b"\x01" + body          # noqa: E731
    resp = lambda body: b"\x02" + body         # noqa: E731
    lst = lambda body: b"\x03" + body          # noqa: E731
    return {
        "subscribe": sub(f_len(1, "dev-1")),
        "subscribe_labels": sub(f_len(1, "dev-1") + f_map(
            2, [("site", "lab"), ("os", "linux")])),
        "subscribe_empty": sub(b""),
        "request_anonymous": req(f_len(2, "dev-1") + f_len(3, "echo")
                                 + f_len(4, b"hello")),
        "request_named": req(f_len(1, "r-1") + f_len(2, "dev-1")
                             + f_len(3, "exec") + f_len(4, b"ls -l")
                             + f_map(5, [("cwd", "/tmp")])),
        "request_cancel": req(f_len(1, "r-1") + f_int(6, 1)),
        "request_binary_payload": req(f_len(2, "dev-1") + f_len(3, "put")
                                      + f_len(4, bytes(range(256)))),
        "response": resp(f_len(2, b"result")),
        "response_named": resp(f_len(1, "r-1") + f_len(2, b"result")),
        "response_status": resp(f_int(3, 5) + f_len(4, "no such file")),
        "response_negative_status": resp(f_int(3, -1)),
        "list": lst(f_len(1, "dev-") + f_int(2, 10)),
        "list_empty": lst(b""),
    }


# --------------------------------------------------------------------------
#  the edge's input checks (fuzz_edge_parse.c)

def edge_parse_seeds():
    sub = lambda body: b"\x00" + body         # noqa: E731
    req = lambda body: b"\x01" + body         # noqa: E731
    resp = lambda body: b"\x02" + body        # noqa: E731
    lst = lambda body: b"\x03" + body         # noqa: E731
    wait = lambda text: b"\x04" + text        # noqa: E731
    rid = lambda limit, text: b"\x05" + bytes([limit]) + text  # noqa: E731
    esc = lambda size, text: b"\x06" + bytes([size]) + text    # noqa: E731
    return {
        "subscribe": sub(f_len(1, "dev-1") + f_map(2, [("site", "lab")])),
        "subscribe_nul": sub(f_len(1, b"keeper\x00evil")),
        "subscribe_bad_label": sub(f_len(1, "dev-1")
                                   + f_map(2, [("k", b"\xff\xfe")])),
        "request": req(f_len(1, "r-1") + f_len(2, "dev-1")
                       + f_len(3, "echo") + f_map(5, [("h", "v")])),
        "request_bad_call": req(f_len(2, "dev-1") + f_len(3, b"ec\xffho")),
        "request_overlong_utf8": req(f_len(2, b"dev-\xc0\xaf")),
        "request_group": req(b"\x13\x14"),
        "response_bad_message": resp(f_int(3, 13) + f_len(4, b"bad\xed\xa0\x80")),
        "list_bad_prefix": lst(f_len(1, b"\xff")),
        "wait": wait(b"2500"),
        "wait_huge": wait(b"99999999999999999999"),
        "wait_sign": wait(b"-1"),
        "wait_nul": wait(b"5\x00x"),
        "request_id": rid(128, b"r-1"),
        "request_id_nul": rid(128, b"r1\x00evil"),
        "request_id_long": rid(4, b"r-12345"),
        "escape_plain": esc(64, b"dev-1"),
        "escape_binary": esc(16, b"a\"b\\c\x00\xff=d e"),
    }


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "corpus")
    for target, seeds in (("wire_envelope", wire_seeds()),
                          ("router_core", core_seeds()),
                          ("public_messages", public_seeds()),
                          ("edge_parse", edge_parse_seeds())):
        d = os.path.join(out, target)
        os.makedirs(d, exist_ok=True)
        for name, data in seeds.items():
            with open(os.path.join(d, "seed-" + name), "wb") as f:
                f.write(data)
        print("%s: %d seeds in %s" % (target, len(seeds), d))


if __name__ == "__main__":
    main()
