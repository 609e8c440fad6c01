"""The automated approval hook for conformance suites and end-to-end tests.

Routed only when ``settings.testing.automated_approval`` is on (and checked again here).
It decides through ``outcome.decide`` like every other channel.
"""

from __future__ import annotations

from backchannel.protocol.ciba import outcome
from backchannel.protocol.errors import InvalidRequest, MethodNotAllowed, NotFound
from backchannel.protocol.http import HttpRequest, HttpResponse
from backchannel.protocol.provider import Provider

ACTIONS = {"allow": True, "deny": False}


async def approve_hook(provider: Provider, request: HttpRequest) -> HttpResponse:
    if not provider.settings.testing.automated_approval:
        raise NotFound("not found")
    if request.method != "POST":
        raise MethodNotAllowed("use POST")
    form = request.form()
    auth_req_id = form.required("auth_req_id")
    action = form.required("action")
    if action not in ACTIONS:
        raise InvalidRequest("action must be allow or deny")
    found = await outcome.find_by_auth_req_id(provider, auth_req_id)
    if found is None:
        raise NotFound("unknown auth_req_id")
    decided = await outcome.decide(
        provider, found, approve=ACTIONS[action], channel="test", acr=form.one("acr")
    )
    return HttpResponse.json({"result": decided.state.value}, no_store=True)
