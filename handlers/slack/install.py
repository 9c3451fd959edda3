"""Installing the app in any workspace (the `oauth` mode: SLACK_CLIENT_ID, SLACK_CLIENT_SECRET
and SLACK_SIGNING_SECRET, no SLACK_BOT_TOKEN).

Bolt's own OAuth flow serves /slack/install and /slack/oauth_redirect. It keeps each
workspace's bot token in slack_sdk's SQLAlchemy installation store and its `state` values in
the SQLAlchemy state store, both on the library's engine (their tables come from migration
0008). Slack's authorize page is on the origin of SLACK_API_URL and `oauth.v2.access` goes
through SLACK_API_URL, so tests can stand the emulator in for both.

`Installations.token_for` gives every Web API call, file download and job the token of the
workspace it is about, rotating it first when the workspace's tokens expire (token rotation).
Uninstalling (`app_uninstalled`) or revoking the bot's token (`tokens_revoked`) deletes the
tokens and pauses that workspace's jobs; its library is kept (`bot.workspaces`), and
installing again says so.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime
from urllib.parse import urlparse

from slack_bolt import App, BoltResponse
from slack_bolt.authorization.authorize import InstallationStoreAuthorize
from slack_bolt.oauth.callback_options import CallbackOptions, FailureArgs, SuccessArgs
from slack_bolt.oauth.oauth_settings import OAuthSettings
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackTokenRotationError
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore
from slack_sdk.oauth.token_rotation import TokenRotator
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from bot import workspaces
from bot.config import Settings

log = logging.getLogger(__name__)

#: The bot scopes of app_manifest.yml, asked for when SLACK_SCOPES is not set
#: (tests/test_manifest.py checks that the two agree).
BOT_SCOPES = (
    "app_mentions:read",
    "channels:history",
    "channels:read",
    "chat:write",
    "commands",
    "files:read",
    "groups:history",
    "groups:read",
    "im:history",
    "im:read",
    "im:write",
    "mpim:history",
    "mpim:read",
    "reactions:read",
    "reactions:write",
    "team:read",
    "users:read",
)
# Rotating tokens are refreshed this long before they expire (Bolt's default); a token is
# remembered in memory for at most TOKEN_MEMORY_SECONDS, well inside that margin.
ROTATE_MINUTES_BEFORE = 120
TOKEN_MEMORY_SECONDS = 30.0
STATE_SECONDS = 600


class Installations:
    """The workspaces the app is installed in, and each one's bot token."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        factory: sessionmaker[Session],
        clock: Callable[[], datetime],
        *,
        page: Callable[[str, str], str],
    ) -> None:
        """`page(title, text)` is the HTML shown after Slack's authorize step (the web's)."""
        if not (settings.slack_client_id and settings.slack_client_secret):
            raise ValueError("installing needs SLACK_CLIENT_ID and SLACK_CLIENT_SECRET")
        self._settings, self._factory, self._clock, self._page = settings, factory, clock, page
        self._client_id = settings.slack_client_id
        self._client_secret = settings.slack_client_secret
        self.store = SQLAlchemyInstallationStore(
            client_id=self._client_id, engine=engine, logger=log
        )
        self.states = SQLAlchemyOAuthStateStore(
            expiration_seconds=STATE_SECONDS, engine=engine, logger=log
        )
        # oauth.v2.access (installs and refreshes) goes to the configured API, never elsewhere.
        self.client = WebClient(base_url=settings.slack_api_url, timeout=10)
        self._rotator = TokenRotator(
            client_id=self._client_id, client_secret=self._client_secret, client=self.client
        )
        self._tokens: dict[str, tuple[float, str | None]] = {}
        self._lock = threading.Lock()

    def token_for(self, team_id: str | None) -> str | None:
        """The bot token of `team_id`, refreshed first when it is about to expire; None when
        the app is not installed there."""
        if not team_id:
            return None
        now = time.monotonic()
        with self._lock:
            hit = self._tokens.get(team_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        token = self._current_token(team_id)
        with self._lock:
            self._tokens[team_id] = (now + TOKEN_MEMORY_SECONDS, token)
        return token

    def _current_token(self, team_id: str) -> str | None:
        bot = self.store.find_bot(enterprise_id=None, team_id=team_id)
        if bot is None:
            return None
        if bot.bot_refresh_token:
            try:
                refreshed = self._rotator.perform_bot_token_rotation(
                    bot=bot, minutes_before_expiration=ROTATE_MINUTES_BEFORE
                )
            except SlackTokenRotationError as exc:
                log.warning("could not refresh the bot token of %s: %s", team_id, exc.api_error)
                return bot.bot_token  # still valid until it expires; the next call tries again
            if refreshed is not None:
                self.store.save_bot(refreshed)
                return refreshed.bot_token
        return bot.bot_token

    def is_installed(self, team_id: str) -> bool:
        return bool(team_id) and self.token_for(team_id) is not None

    def forget(self, team_id: str) -> None:
        """The app was uninstalled from `team_id`, or its bot token revoked: delete the tokens
        and pause the workspace's jobs, keeping its library."""
        self.store.delete_bot(enterprise_id=None, team_id=team_id)
        self.store.delete_installation(enterprise_id=None, team_id=team_id)
        with self._lock:
            self._tokens.pop(team_id, None)
        if workspaces.record_uninstall(self._factory, team_id=team_id, now=self._clock()):
            log.info("uninstalled from %s: its jobs are paused and its library kept", team_id)

    def oauth_settings(self, public_base_url: str | None) -> OAuthSettings:
        """Bolt's OAuth flow on our stores, with our pages after it."""
        settings = self._settings
        origin = urlparse(settings.slack_api_url)
        return OAuthSettings(
            client_id=self._client_id,
            client_secret=self._client_secret,
            scopes=list(settings.slack_scopes or BOT_SCOPES),
            user_scopes=[],
            # /slack/install goes straight to Slack's own page, which asks for consent.
            install_page_rendering_enabled=False,
            redirect_uri=f"{public_base_url}/slack/oauth_redirect" if public_base_url else None,
            authorization_url=f"{origin.scheme}://{origin.netloc}/oauth/v2/authorize",
            installation_store=self.store,
            installation_store_bot_only=True,
            token_rotation_expiration_minutes=ROTATE_MINUTES_BEFORE,
            state_store=self.states,
            state_expiration_seconds=STATE_SECONDS,
            callback_options=CallbackOptions(success=self._installed, failure=self._not_installed),
            logger=log,
        )

    def authorize(self) -> InstallationStoreAuthorize:
        """Bolt's authorization from the installation store, with each token's auth.test
        remembered (not one per request) and rotation through our API URL."""
        return InstallationStoreAuthorize(
            installation_store=self.store,
            client_id=self._client_id,
            client_secret=self._client_secret,
            token_rotation_expiration_minutes=ROTATE_MINUTES_BEFORE,
            bot_only=True,
            cache_enabled=True,
            client=self.client,
            logger=log,
        )

    def _installed(self, args: SuccessArgs) -> BoltResponse:
        installation = args.installation
        team_id, name = installation.team_id or "", installation.team_name or "your workspace"
        with self._lock:
            self._tokens.pop(team_id, None)
        installed = workspaces.record_install(
            self._factory,
            team_id=team_id,
            name=name,
            installer=installation.user_id,
            now=self._clock(),
        )
        log.info("installed in %s (again: %s)", team_id, installed.returning)
        self._welcome(installation.bot_token, installation.user_id, installed)
        return self._answer(200, f"Image Library is installed in {name}", _welcome_text(installed))

    def _not_installed(self, args: FailureArgs) -> BoltResponse:
        log.warning("install failed: %s", args.reason)
        reason = {
            "access_denied": "The installation was cancelled in Slack.",
            "invalid_browser": "This installation was started in another browser. Start again.",
            "invalid_state": "This installation link has expired. Start again.",
        }.get(args.reason, "Slack did not complete the installation. Start again.")
        return self._answer(args.suggested_status_code, "Image Library was not installed", reason)

    def _answer(self, status: int, title: str, text: str) -> BoltResponse:
        return BoltResponse(
            status=status,
            body=self._page(title, text),
            headers={"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"},
        )

    def _welcome(self, token: str | None, installer: str, installed: workspaces.Installed) -> None:
        """The installer's DM: what to do next, or that their library was kept."""
        try:
            self.client.chat_postMessage(
                token=token, channel=installer, text=_welcome_text(installed)
            )
        except SlackApiError as exc:
            log.warning("welcome DM not sent: %s", exc.response.get("error"))


def _welcome_text(installed: workspaces.Installed) -> str:
    if installed.returning:
        count = f"{installed.images:,} image{'' if installed.images == 1 else 's'}"
        return (
            f"Welcome back. Your library was kept while the app was away: {count}, with their "
            "details, approvals and history. Reminders and notices resume now."
        )
    return (
        "Next: invite the app to a channel where images are posted, then type "
        "/images watch #channel there. /images help lists everything."
    )


def register_uninstalls(app: App, installations: Installations) -> None:
    """app_uninstalled and tokens_revoked (for the bot) forget that workspace."""

    @app.event("app_uninstalled")
    def uninstalled(body: dict[str, object]) -> None:
        installations.forget(str(body.get("team_id") or ""))

    @app.event("tokens_revoked")
    def revoked(body: dict[str, object], event: dict[str, object]) -> None:
        tokens = event.get("tokens")
        if isinstance(tokens, dict) and tokens.get("bot"):
            installations.forget(str(body.get("team_id") or ""))
