"""The benchmark harness: what runs inside the image (and natively).

It must import nothing but the standard library, numpy, LoadGen and the chosen backend
(onnxruntime or torch): no typer, rich, docker, kubernetes or pydantic.
"""
