"""Migration revisions: 0001_service (this issue), 0002_batches (batches)."""
