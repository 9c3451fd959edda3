"""The Slack front door: the Bolt app, its Web API gateway, and one folder per surface."""
