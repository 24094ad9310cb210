#!/usr/bin/python3
"""A strict gRPC reflection client that shares nothing with Aisle (what grpcurl does, in Python).

It builds a protobuf descriptor pool only from what the server reflects (every file with its
dependencies, fully-qualified names, no proto files on disk), then lists every service, describes every
method and calls each one: with the JSON body given for it on the command line, or an empty request.

Usage: strict_reflection_client.py HOST:PORT [JSON object of "pkg.Service/Method": request body]
Prints one JSON document: services, methods (with fully-qualified input/output types), and per call the
status code name, details and the response as JSON. Exits 1 if the pool cannot be built.

Needs only Debian's python3-grpcio and python3-protobuf.
"""
import json
import sys

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory

TYPE = descriptor_pb2.FieldDescriptorProto


def _reflection_file(package):
    """grpc/reflection/<v>/reflection.proto, declared by hand (the subset a client needs)."""
    f = descriptor_pb2.FileDescriptorProto(name=f"{package.replace('.', '/')}/reflection.proto", package=package, syntax="proto3")

    def message(name, *fields, oneofs=()):
        m = f.message_type.add(name=name)
        for o in oneofs:
            m.oneof_decl.add(name=o)
        for number, fname, ftype, extra in fields:
            fd = m.field.add(name=fname, number=number, type=ftype, label=TYPE.LABEL_OPTIONAL)
            if "type_name" in extra:
                fd.type_name = f".{package}.{extra['type_name']}"
            if extra.get("repeated"):
                fd.label = TYPE.LABEL_REPEATED
            if "oneof" in extra:
                fd.oneof_index = extra["oneof"]
        return m

    S, B, I, M = TYPE.TYPE_STRING, TYPE.TYPE_BYTES, TYPE.TYPE_INT32, TYPE.TYPE_MESSAGE
    message(
        "ServerReflectionRequest",
        (1, "host", S, {}),
        (3, "file_by_filename", S, {"oneof": 0}),
        (4, "file_containing_symbol", S, {"oneof": 0}),
        (5, "file_containing_extension", M, {"oneof": 0, "type_name": "ExtensionRequest"}),
        (6, "all_extension_numbers_of_type", S, {"oneof": 0}),
        (7, "list_services", S, {"oneof": 0}),
        oneofs=("message_request",),
    )
    message("ExtensionRequest", (1, "containing_type", S, {}), (2, "extension_number", I, {}))
    message(
        "ServerReflectionResponse",
        (1, "valid_host", S, {}),
        (2, "original_request", M, {"type_name": "ServerReflectionRequest"}),
        (4, "file_descriptor_response", M, {"oneof": 0, "type_name": "FileDescriptorResponse"}),
        (5, "all_extension_numbers_response", M, {"oneof": 0, "type_name": "ExtensionNumberResponse"}),
        (6, "list_services_response", M, {"oneof": 0, "type_name": "ListServiceResponse"}),
        (7, "error_response", M, {"oneof": 0, "type_name": "ErrorResponse"}),
        oneofs=("message_response",),
    )
    message("FileDescriptorResponse", (1, "file_descriptor_proto", B, {"repeated": True}))
    message("ExtensionNumberResponse", (1, "base_type_name", S, {}), (2, "extension_number", I, {"repeated": True}))
    message("ListServiceResponse", (1, "service", M, {"repeated": True, "type_name": "ServiceResponse"}))
    message("ServiceResponse", (1, "name", S, {}))
    message("ErrorResponse", (1, "error_code", I, {}), (2, "error_message", S, {}))
    return f


def message_class(pool, full_name):
    desc = pool.FindMessageTypeByName(full_name)
    if hasattr(message_factory, "GetMessageClass"):
        return message_factory.GetMessageClass(desc)
    return message_factory.MessageFactory(pool).GetPrototype(desc)


class Reflection:
    def __init__(self, channel, package):
        own = descriptor_pool.DescriptorPool()
        own.Add(_reflection_file(package))
        self.Request = message_class(own, f"{package}.ServerReflectionRequest")
        Response = message_class(own, f"{package}.ServerReflectionResponse")
        self.call = channel.stream_stream(
            f"/{package}.ServerReflection/ServerReflectionInfo",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=Response.FromString,
        )

    def ask(self, **kw):
        (response,) = list(self.call(iter([self.Request(**kw)]), timeout=10))
        if response.HasField("error_response"):
            raise LookupError(f"{kw}: {response.error_response.error_code} {response.error_response.error_message}")
        return response


def main():
    target = sys.argv[1]
    bodies = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    channel = grpc.insecure_channel(target)
    v1 = Reflection(channel, "grpc.reflection.v1")
    v1alpha = Reflection(channel, "grpc.reflection.v1alpha")
    services = sorted(s.name for s in v1.ask(list_services="*").list_services_response.service)
    services_alpha = sorted(s.name for s in v1alpha.ask(list_services="*").list_services_response.service)

    # The pool knows nothing but what the server sends: each file must arrive with (or be fetchable
    # as) its dependencies, and pool.Add rejects unresolved names or malformed messages.
    pool = descriptor_pool.DescriptorPool()
    received = {}
    added = set()

    def take(files):
        for raw in files:
            fd = descriptor_pb2.FileDescriptorProto.FromString(raw)
            received.setdefault(fd.name, fd)

    def add(name, chain=()):
        if name in added:
            return
        if name in chain:
            raise ValueError(f"import cycle through {name}")
        if name not in received:
            take(v1alpha.ask(file_by_filename=name).file_descriptor_response.file_descriptor_proto)
        fd = received[name]
        for dep in fd.dependency:
            add(dep, chain + (name,))
        pool.Add(fd)
        added.add(name)

    out = {"services": services, "services_v1alpha": services_alpha, "methods": [], "calls": []}
    try:
        for s in services:
            files = v1alpha.ask(file_containing_symbol=s).file_descriptor_response.file_descriptor_proto
            take(files)
            add(descriptor_pb2.FileDescriptorProto.FromString(files[0]).name)
    except Exception as err:  # noqa: BLE001 - report whatever the strict pool refused
        out["error"] = f"{type(err).__name__}: {err}"
        print(json.dumps(out))
        sys.exit(1)

    for s in services:
        service = pool.FindServiceByName(s)
        for m in service.methods:
            path = f"{s}/{m.name}"
            out["methods"].append(
                {"method": path, "input": m.input_type.full_name, "output": m.output_type.full_name}
            )
            Req = message_class(pool, m.input_type.full_name)
            Res = message_class(pool, m.output_type.full_name)
            request = json_format.ParseDict(bodies.get(path, {}), Req())
            shape = descriptor_pb2.MethodDescriptorProto()
            m.CopyToProto(shape)
            kind = channel.unary_stream if shape.server_streaming else channel.unary_unary
            call = kind(f"/{path}", request_serializer=lambda r: r.SerializeToString(), response_deserializer=Res.FromString)
            try:
                response = call(request, timeout=5)
                if shape.server_streaming:
                    response = next(iter(response))
                out["calls"].append(
                    {"method": path, "code": "OK", "response": json_format.MessageToDict(response)}
                )
            except grpc.RpcError as err:
                out["calls"].append({"method": path, "code": err.code().name, "details": err.details()})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
