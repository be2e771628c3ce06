"""The Typer front end: parse arguments, call library functions, print. Nothing else.

Imports of heavy libraries (pydantic models, docker, kubernetes, onnxruntime) happen inside commands so that
``mlrepro --help`` stays fast.
"""
