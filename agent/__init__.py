"""The agent: LLM providers and the graph nodes that turn a problem into a verified kernel."""
