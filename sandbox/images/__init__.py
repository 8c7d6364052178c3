"""Sandbox images: the offline build (mmdebstrap + docker import) and the GPU Dockerfile."""
