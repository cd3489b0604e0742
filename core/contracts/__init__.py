"""Dataclass inputs and outputs of every workflow, activity, signal, update and query.

New fields always get defaults so that recorded histories keep decoding.
"""
