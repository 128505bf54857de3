"""Platform name -> connector instance. The only place that knows which modules exist."""

from __future__ import annotations

from functools import cache
from importlib import import_module

from connectors.contract import Connector

# platform name -> "module:ClassName"; modules are imported on first use so that a platform
# whose driver is missing does not stop the others.
PLATFORM_CONNECTORS: dict[str, str] = {
    "postgres": "connectors.platforms.postgres:PostgresConnector",
    "mongodb": "connectors.platforms.mongodb:MongoConnector",
    "mssql": "connectors.platforms.mssql:MssqlConnector",
    "snowflake": "connectors.platforms.snowflake:SnowflakeConnector",
}


class UnknownPlatform(LookupError):
    pass


@cache
def get_connector(platform: str) -> Connector:
    try:
        path = PLATFORM_CONNECTORS[platform]
    except KeyError:
        raise UnknownPlatform(f"no connector for platform {platform!r}") from None
    module_name, _, class_name = path.partition(":")
    cls = getattr(import_module(module_name), class_name)
    return cls()
