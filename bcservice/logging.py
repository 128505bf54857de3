"""JSON log lines carrying the request id of the request, task or command that wrote them."""

import logging

from pythonjsonlogger.json import JsonFormatter as _BaseJsonFormatter

from bcservice import request_context


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        ctx = request_context.current()
        record.request_id = ctx.request_id
        record.context = ctx.source
        return True


class JsonFormatter(_BaseJsonFormatter):
    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("fmt", "%(asctime)s %(levelname)s %(name)s %(message)s")
        kwargs.setdefault(
            "rename_fields", {"asctime": "time", "levelname": "level", "name": "logger"}
        )
        kwargs.setdefault("timestamp", False)
        super().__init__(*args, **kwargs)

    def add_fields(self, log_record: dict, record: logging.LogRecord, message_dict: dict) -> None:
        super().add_fields(log_record, record, message_dict)
        log_record.setdefault("request_id", getattr(record, "request_id", ""))
        log_record.setdefault("context", getattr(record, "context", ""))
