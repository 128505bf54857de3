"""Choice sets shared by inventory, the API and the rules."""

from django.db import models


class Platform(models.TextChoices):
    POSTGRES = "postgres", "PostgreSQL"
    MONGODB = "mongodb", "MongoDB"
    MSSQL = "mssql", "SQL Server"
    SNOWFLAKE = "snowflake", "Snowflake"


class Tier(models.IntegerChoices):
    TIER_1 = 1, "Tier 1"
    TIER_2 = 2, "Tier 2"
    TIER_3 = 3, "Tier 3"


class Environment(models.TextChoices):
    PRODUCTION = "production", "Production"
    STAGING = "staging", "Staging"
    DEVELOPMENT = "development", "Development"
    TEST = "test", "Test"


class SiteRole(models.TextChoices):
    PRIMARY = "primary", "Primary"
    DR = "dr", "DR"


class State(models.TextChoices):
    GREEN = "green", "Green"
    YELLOW = "yellow", "Yellow"
    RED = "red", "Red"


class Visibility(models.TextChoices):
    OK = "ok", "OK"
    LOST = "lost", "Lost"


# Collection interval by tier when a resource does not set its own (seconds).
DEFAULT_INTERVAL_BY_TIER = {1: 15, 2: 60, 3: 300}
