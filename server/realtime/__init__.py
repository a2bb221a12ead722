"""Realtime transport: protocol, hub, backends, endpoint. Knows nothing of questions or draws."""
