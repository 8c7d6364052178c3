"""The sandbox: compiles candidates' kernels on the service side and runs them in worker processes.

`sandbox.runtime` is the part that runs inside the workers (standard library and torch only); the
other modules (toolchains, kernel extraction, compile) run in the service and may use kernelwright.
"""
