"""Front doors onto the library: Slack today (handlers/slack), the HTTP routes beside it."""
