# A Greeter on grpcio (gRPC C-core's HTTP/2 and HPACK, not Node's): generic handlers and hand-made bytes,
# so it needs no generated code. Prints its port, then serves until stdin closes.
#   SayHello("fail")  -> FAILED_PRECONDITION with a UTF-8 message (C-core percent-encodes it)
#   SayHello(name)    -> "Hello <name> (end-user=<metadata>)" with `hostname: python` metadata
import sys
from concurrent import futures

import grpc
from grpc_bytes import string_field, text_field


def say_hello(request, context):
    name = text_field(request)
    context.send_initial_metadata((("hostname", "python"),))
    if name == "fail":
        context.abort(grpc.StatusCode.FAILED_PRECONDITION, "échec: 100% sûr")
    metadata = dict(context.invocation_metadata())
    return string_field(f"Hello {name} (end-user={metadata.get('end-user')})")


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
