"""Front ends: the `kernelwright` CLI (and, with the REST issue, the FastAPI app) over the same services."""
