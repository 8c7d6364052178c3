"""Request and response schemas per resource (pydantic, the edge of the service)."""
