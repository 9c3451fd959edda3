"""Admin: the answers to `/images help | watch | unwatch | channels | categories |
approvers`. The command itself is routed in handlers.slack.command."""
