"""The web door: the library in a browser (Flask, server-rendered pages) with the same rules
as Slack, plus the one HTTP app every request arrives at (`/slack/events`, `/healthz`,
`/media/...`)."""

from handlers.web.app import create_web
from handlers.web.context import Workspaces

__all__ = ["Workspaces", "create_web"]
