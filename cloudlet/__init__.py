"""Cloudlet: a self-hosted FastAPI Cloud."""
