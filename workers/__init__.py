"""Composition root: builds clients, activities and workers; launches embedded services."""
