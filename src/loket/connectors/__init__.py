"""Connectors: one package per provider, behind loket.connectors.base; see registry.py."""
