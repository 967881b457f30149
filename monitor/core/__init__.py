"""Pure values and decisions: no aiohttp, no SQLAlchemy, no event loop."""
