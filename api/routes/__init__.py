"""One thin router per resource; `api.app` assembles them."""
