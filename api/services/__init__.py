"""Service layer of the REST API: jobs, sessions, keys, limits and metrics, independent of HTTP."""
