"""Helpers shared by the test modules: runs and agents, users, HTTP receivers."""
