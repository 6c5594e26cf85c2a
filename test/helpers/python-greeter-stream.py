# GreeterStream on grpcio (gRPC C-core's HTTP/2, not Node's), both ways, with generic handlers and hand-made
# bytes, so it needs no generated code.
#   serve          prints its port, then serves until stdin closes:
#                  SayHelloStream(name, count, interval_ms) -> count replies "Hello <name> <i>" (name "cut":
#                  UNAVAILABLE "cut by python" after 2), `hostname: python` in the headers;
#                  SayHelloBidi -> "Hello <name> <i>" for each request
#   call ADDRESS   calls a GreeterStream server at ADDRESS the ways below, prints one JSON object of the outcomes
import json
import sys
import time
from concurrent import futures

import grpc
from grpc_bytes import fields, string_field, text_field, varint

SERVICE = "helloworld.GreeterStream"


def hello_stream_request(name, count, interval_ms):
    return string_field(name) + b"\x10" + varint(count) + b"\x18" + varint(interval_ms)


# --- serve ---------------------------------------------------------------------------------------------

def say_hello_stream(request, context):
    f = fields(request)
    name, count, interval = f.get(1, b"").decode("utf-8"), f.get(2, 0), f.get(3, 0)
    context.send_initial_metadata((("hostname", "python"),))
    for i in range(1, count + 1):
        if i > 1:
            time.sleep(interval / 1000)
        if name == "cut" and i == 3:
            context.abort(grpc.StatusCode.UNAVAILABLE, "cut by python")
        yield string_field(f"Hello {name} {i}")


def say_hello_bidi(requests, context):
    context.send_initial_metadata((("hostname", "python"),))
    for i, request in enumerate(requests, start=1):
        yield string_field(f"Hello {text_field(request)} {i}")


def serve():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    handler = grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "SayHelloStream": grpc.unary_stream_rpc_method_handler(say_hello_stream),
            "SayHelloBidi": grpc.stream_stream_rpc_method_handler(say_hello_bidi),
        },
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    sys.stdin.read()
    server.stop(0)


# --- call ----------------------------------------------------------------------------------------------

def outcome(call):
    replies, code, details = [], "OK", ""
    try:
        for reply in call:
            replies.append(text_field(reply))
    except grpc.RpcError as err:
        code, details = err.code().name, err.details()
    hostname = dict(call.initial_metadata() or ()).get("hostname")
    return {"replies": replies, "code": code, "details": details, "hostname": hostname}


def requests(names, interval):
    for i, name in enumerate(names):
        if i > 0:
            time.sleep(interval)
        yield string_field(name)


def call(address):
    with grpc.insecure_channel(address) as channel:
        stream = channel.unary_stream(f"/{SERVICE}/SayHelloStream")
        bidi = channel.stream_stream(f"/{SERVICE}/SayHelloBidi")
        cut = (("x-helloworld-fail-code", "UNAVAILABLE"), ("x-helloworld-fail-after", "2"))
        results = {
            "stream": outcome(stream(hello_stream_request("py", 3, 50), timeout=10)),
            "bidi": outcome(bidi(requests(["a", "b", "c"], 0.05), timeout=10)),
            "stream_cut": outcome(stream(hello_stream_request("py", 5, 0), metadata=cut, timeout=10)),
            "bidi_cut": outcome(bidi(requests(["a", "b", "c", "d"], 0.05), metadata=cut, timeout=10)),
            "deadline": outcome(stream(hello_stream_request("py", 10, 300), timeout=1)),
        }
    print(json.dumps(results), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve()
    else:
        call(sys.argv[2])
