"""The mod's Python side: one child per session that counts and decides for the in-process mod."""
