"""A local stand-in for the Amazon Selling Partner API (SP-API) and Login with Amazon.

It serves, on loopback, the routes the integration calls (Orders 2026-01-01, Orders v0
confirmShipment, Feeds 2021-06-30, Finances 2024-06-19 and v0, LWA token) for every Amazon
marketplace in Amazon's three selling regions, with Amazon's parameter rules, error shapes,
rate limits and state transitions, Amazon's example orders and the shapes real orders come in,
plus an admin API under ``/_sandbox``.
See ``README.md`` beside this file; build it with :func:`sandboxes.amazon.app.create_app`.
"""
