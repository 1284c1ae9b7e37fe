"""Local stand-ins for Amazon SP-API and Adobe Commerce, for tests and demos.

Nothing in here is imported by the integration package: the production code
talks to these servers over HTTP exactly as it talks to the real services.
"""
