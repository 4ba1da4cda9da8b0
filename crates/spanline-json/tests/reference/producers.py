"""The reference producers' lines for the events of tests/it/producers.rs.

Run as `python3 producers.py SETUP`; prints one JSON line per event on
stdout. SETUP is one of:

- structlog-text:   structlog's common JSON setup with format_exc_info
- structlog-dicts:  the same with dict_tracebacks
- structlog-stdlib: stdlib's logger names (logger `myapp.api`)
- ecs:              Elastic's ecs-logging StdlibFormatter

The Rust twin makes the same events; the test pairs lines by message.
Exceptions are built with their cause set and not raised for the text
setup (Python then writes no frames, as Rust errors have none); the dicts
setup needs raised exceptions (structlog skips a cause without a
traceback), and the test leaves frames out of the comparison.
"""

import logging
import sys

import structlog
from structlog.contextvars import bind_contextvars, clear_contextvars, merge_contextvars


class QueryFailed(Exception):
    pass


class TimedOut(Exception):
    pass


def chained(raised):
    if not raised:
        err = QueryFailed("query failed")
        err.__cause__ = TimedOut("timed out after 5s")
        return err
    try:
        try:
            raise TimedOut("timed out after 5s")
        except TimedOut as cause:
            raise QueryFailed("query failed") from cause
    except QueryFailed as err:
        return err


def events(log, raised):
    log.info("user logged in", attempts=3, latency_ms=12.5, method="password")
    log.warning("disk almost full", free_pct=4.5)
    log.error("db call failed", table="users", exc_info=chained(raised))
    log.critical("out of memory", rss_mb=4096)
    bind_contextvars(request_id="r-1", user_id=42)
    log.info("request started", path="/api/items")
    clear_contextvars()
    log.info("payload", user={"id": 7, "roles": ["admin", "dev"]}, tags=["a", "b"], empty={})
    log.info("optional", middle_name=None)
    log.debug("cache miss", key="k1")


def structlog_setup(exc_processor, stdlib):
    processors = [merge_contextvars]
    if stdlib:
        processors += [structlog.stdlib.add_logger_name, structlog.stdlib.add_log_level]
    else:
        processors += [structlog.processors.add_log_level]
    processors += [
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        exc_processor,
        structlog.processors.JSONRenderer(),
    ]
    if stdlib:
        logging.basicConfig(format="%(message)s", stream=sys.stdout, level=logging.DEBUG)
        structlog.configure(
            processors=processors,
            logger_factory=structlog.stdlib.LoggerFactory(),
            wrapper_class=structlog.stdlib.BoundLogger,
        )
        return structlog.get_logger("myapp.api")
    structlog.configure(
        processors=processors,
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
    )
    return structlog.get_logger()


class EcsAdapter:
    """structlog-style calls on a stdlib logger with ecs-logging's formatter."""

    def __init__(self):
        import ecs_logging

        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(ecs_logging.StdlibFormatter())
        self.log = logging.getLogger("myapp.api")
        self.log.setLevel(logging.DEBUG)
        self.log.addHandler(handler)

    # The ECS fields a Python service passes for spanline's context keys.
    ECS_NAMES = {"request_id": "http.request.id", "user_id": "user.id"}

    def __getattr__(self, level):
        def emit(message, exc_info=None, **fields):
            context = structlog.contextvars.get_contextvars()
            extra = {**fields, **{self.ECS_NAMES.get(k, k): v for k, v in context.items()}}
            if exc_info is not None:
                exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
            getattr(self.log, level)(message, exc_info=exc_info, extra=extra)

        return emit


def main():
    setup = sys.argv[1]
    if setup == "structlog-text":
        events(structlog_setup(structlog.processors.format_exc_info, False), raised=False)
    elif setup == "structlog-dicts":
        events(structlog_setup(structlog.processors.dict_tracebacks, False), raised=True)
    elif setup == "structlog-stdlib":
        events(structlog_setup(structlog.processors.format_exc_info, True), raised=False)
    elif setup == "ecs":
        events(EcsAdapter(), raised=False)
    else:
        sys.exit(f"unknown setup {setup!r}")


if __name__ == "__main__":
    main()
