# A Greeter on grpcio (gRPC C-core's HTTP/2 and HPACK, not Node's): generic handlers and hand-made bytes,
# so it needs no generated code. Prints its port, then serves until stdin closes.
#   SayHello("fail")  -> FAILED_PRECONDITION with a UTF-8 message (C-core percent-encodes it)
#   SayHello(name)    -> "Hello <name> (end-user=<metadata>)" with `hostname: python` metadata
import sys
from concurrent import futures

import grpc


def varint(n):
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def read_name(request):
    # HelloRequest { string name = 1 }: 0x0a, varint length, bytes
    if not request:
        return ""
    assert request[0] == 0x0A, request
    length, shift, at = 0, 0, 1
    while True:
        b = request[at]
        at += 1
        length |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            break
    return request[at:at + length].decode("utf-8")


def say_hello(request, context):
    name = read_name(request)
    context.send_initial_metadata((("hostname", "python"),))
    if name == "fail":
        context.abort(grpc.StatusCode.FAILED_PRECONDITION, "échec: 100% sûr")
    metadata = dict(context.invocation_metadata())
    message = f"Hello {name} (end-user={metadata.get('end-user')})".encode("utf-8")
    return b"\x0a" + varint(len(message)) + message


def main():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    handler = grpc.method_handlers_generic_handler(
        "helloworld.Greeter", {"SayHello": grpc.unary_unary_rpc_method_handler(say_hello)}
    )
    server.add_generic_rpc_handlers((handler,))
    if len(sys.argv) > 2:
        with open(sys.argv[1], "rb") as c, open(sys.argv[2], "rb") as k:
            creds = grpc.ssl_server_credentials(((k.read(), c.read()),))
        port = server.add_secure_port("127.0.0.1:0", creds)
    else:
        port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    sys.stdin.read()
    server.stop(0)


main()
