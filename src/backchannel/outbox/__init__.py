"""Delivering the outbox: the worker, its retry policy, its metrics, and the expiry sweeper."""
