"""app_manifest.yml is what an admin pastes into Slack: it must pass Slack's own schema and
declare everything the product uses."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "tests" / "data" / "slack-manifest-schema" / "manifest.schema.1.0.0.json"


def manifest() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((ROOT / "app_manifest.yml").read_text())


def test_manifest_passes_slacks_schema() -> None:
    schema = json.loads(SCHEMA.read_text())
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(manifest()), key=str)
    assert not errors, [e.message for e in errors]


def test_manifest_declares_the_whole_product() -> None:
    m = manifest()
    features, settings = m["features"], m["settings"]
    assert [c["command"] for c in features["slash_commands"]] == ["/images"]
    assert features["slash_commands"][0]["url"].endswith("/slack/events")
    assert {s["name"] for s in features["shortcuts"]} == {"Add to image library"}
    assert features["app_home"]["home_tab_enabled"] is True
    events = set(settings["event_subscriptions"]["bot_events"])
    assert {"message.channels", "message.groups", "message.im", "message.mpim"} <= events
    assert "app_home_opened" in events
    interactivity = settings["interactivity"]
    assert interactivity["is_enabled"]
    assert interactivity["message_menu_options_url"].endswith("/slack/events")
    scopes = set(m["oauth_config"]["scopes"]["bot"])
    needed = {
        "channels:history",
        "groups:history",
        "im:history",
        "mpim:history",
        "channels:read",
        "groups:read",
        "files:read",
        "chat:write",
        "commands",
        "reactions:write",
        "users:read",
        "im:write",
    }
    assert needed <= scopes, needed - scopes
    assert len(m["display_information"]["name"]) <= 35


def test_sign_in_with_slack_comes_back_to_the_web_door() -> None:
    m = manifest()
    assert {"openid", "email", "profile"} <= set(m["oauth_config"]["scopes"]["user"])
    paths = [urlsplit(u).path for u in m["oauth_config"]["redirect_urls"]]
    assert paths == ["/login/callback", "/slack/oauth_redirect"]


def test_installing_asks_for_the_manifests_bot_scopes_and_hears_uninstalls() -> None:
    """SLACK_SCOPES defaults to the manifest's bot scopes (handlers.slack.install), and the
    app hears when it is uninstalled or loses its token, to stop work for that workspace."""
    from handlers.slack.install import BOT_SCOPES

    m = manifest()
    assert list(BOT_SCOPES) == m["oauth_config"]["scopes"]["bot"]
    events = set(m["settings"]["event_subscriptions"]["bot_events"])
    assert {"app_uninstalled", "tokens_revoked"} <= events
