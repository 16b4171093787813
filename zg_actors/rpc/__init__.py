"""gRPC surfaces: `.proto` files, generated stubs, the Gateway actor, the client SDK.

The stubs are generated and committed, so that grpcio-tools is not needed at run time.
After changing a `.proto` file, regenerate them from the repository root with

    python -m grpc_tools.protoc -I . --python_out=. --grpc_python_out=. \
        zg_actors/rpc/disperser.proto

(grpcio-tools >= 1.85, protobuf 7), then put the `# ruff: noqa` line back on top.
"""
