"""The library's `bot.ports.Notifier`, in Slack: what people see when the library changes
without them clicking anything (an ingest finishing, a reminder falling due, a decision taken
elsewhere). Each surface sends its own messages; this only routes to them."""

from __future__ import annotations

from bot.approval_queue import Nudge
from bot.approvals import RequestView
from bot.link_notices import LinkNotice
from bot.prompts import PromptPlan
from bot.reminders import DetailsReminder
from bot.services import Services
from handlers.slack.approvals.send import send_nudge, send_request, show_outcome
from handlers.slack.capture.send import tell_poster
from handlers.slack.details.send import announce_link_uploads, remind_about_details
from handlers.slack.gateway import SlackGateway
from handlers.slack.home.send import publish_home


class SlackNotifier:
    def __init__(self, services: Services, gateway: SlackGateway) -> None:
        self._services = services
        self._gateway = gateway

    def ingest_settled(self, plan: PromptPlan) -> None:
        tell_poster(self._services, self._gateway.client(plan.team_id), plan)

    def approval_requested(self, request: RequestView) -> None:
        send_request(self._services, self._gateway.client(request.team_id), request)

    def approval_changed(
        self, request: RequestView, *, settled: bool, told_maybe: bool = False
    ) -> None:
        show_outcome(
            self._services,
            self._gateway.client(request.team_id),
            request,
            settled=settled,
            told_maybe=told_maybe,
        )

    def approval_nudge(self, nudge: Nudge) -> None:
        send_nudge(self._services, self._gateway.client(nudge.request.team_id), nudge)

    def details_reminder(self, reminder: DetailsReminder) -> bool:
        return remind_about_details(self._gateway.client(reminder.team_id), reminder)

    def home_changed(self, team_id: str, user_id: str) -> None:
        publish_home(
            self._services, self._gateway.client(team_id), team_id=team_id, user_id=user_id
        )

    def link_uploads(self, notice: LinkNotice) -> None:
        announce_link_uploads(self._gateway.client(notice.team_id), notice)
