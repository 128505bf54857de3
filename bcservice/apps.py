"""The bcservice project app: management commands, and process start-up hooks."""

from django.apps import AppConfig


class BcserviceConfig(AppConfig):
    name = "bcservice"
    verbose_name = "bcservice"

    def ready(self) -> None:
        # Before the middleware chain is built: the Django instrumentation adds to it.
        from bcservice import tracing

        tracing.configure()
        # Job runtimes are measured in the qcluster processes, which build no middleware chain.
        from bcservice import job_runtimes

        job_runtimes.connect()
