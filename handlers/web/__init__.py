"""The web door: the library in a browser (Flask, server-rendered pages) with the same rules
as Slack, plus the one HTTP app every request arrives at (`/slack/events`, `/healthz`,
`/media/...`)."""

from handlers.web.app import create_web

__all__ = ["create_web"]
