"""Neuro-symbolic rule extraction (SPEC §6)."""
