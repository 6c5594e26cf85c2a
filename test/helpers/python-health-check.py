# grpc.health.v1.Health/Check from grpcio (gRPC C-core's HTTP/2 client, as grpc-health-probe is grpc-go's), with
# hand-made bytes, so it needs no generated code.
#   python-health-check.py ADDRESS SERVICE...   one Check per service name, prints a JSON list of
#   {service, code, details, response (hex, "" on an error), headers (the answer's metadata names)}
import json
import sys

import grpc
from grpc_bytes import string_field


def check(channel, service):
    call = channel.unary_unary("/grpc.health.v1.Health/Check")
    request = string_field(service) if service else b""
    try:
        response, outcome = call.with_call(request, timeout=10)
        return {"service": service, "code": 0, "details": outcome.details() or "", "response": response.hex(),
                "headers": sorted(k for k, _ in outcome.initial_metadata())}
    except grpc.RpcError as err:
        return {"service": service, "code": err.code().value[0], "details": err.details(), "response": "",
                "headers": sorted(k for k, _ in err.initial_metadata())}


with grpc.insecure_channel(sys.argv[1]) as channel:
    print(json.dumps([check(channel, service) for service in sys.argv[2:]]))
