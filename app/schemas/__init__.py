"""Request and response bodies, shared by every layer above the models."""
