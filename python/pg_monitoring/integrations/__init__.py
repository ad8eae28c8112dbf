"""Integrations with web frameworks: `asgi.MonitoringMiddleware` for FastAPI, Starlette and
any ASGI application."""
