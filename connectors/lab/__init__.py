"""Local lab targets for the demo and tests: real PostgreSQL, protocol-level simulators."""
