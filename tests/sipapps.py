"""
Applications used only by the SIP tests: a phone that rings forever (for
CANCEL), and a caller that sends requests as a UAC through the SipFactory.
"""

from __future__ import annotations

from twisted.internet import reactor
from twisted.internet.defer import Deferred, fail

from convergence.container import DeploymentDescriptor
from convergence.sip.servlet import SipRequest, SipResponse, SipServlet, SipStatusError


class RingerServlet(SipServlet):
    """Rings (180) and never answers."""

    def do_invite(self, request: SipRequest) -> None:
        request.create_response(180).send()


class CallerServlet(SipServlet):
    """Records the responses to the requests it was told to send."""

    responses: list[tuple[int, str]] = []

    def do_message(self, request: SipRequest) -> None:
        """A MESSAGE to caller@ asks it to send a MESSAGE to the URI in the body."""
        target = request.body.decode()
        request.create_response(200).send()
        factory = self.context.container.factories["sip"]
        out = factory.create_request(request.application_session, "MESSAGE",
                                     "<sip:caller@localhost>", f"<{target}>")
        out.set_body(b"hello from caller", "text/plain")
        out.send()

    def do_success_response(self, response: SipResponse) -> None:
        self.responses.append((response.status, response.method))

    def do_error_response(self, response: SipResponse) -> None:
        self.responses.append((response.status, response.method))


class DialerServlet(SipServlet):
    """Places a call (INVITE) to the URI in a MESSAGE body, hangs up on 200."""

    responses: list[tuple[int, str]] = []

    def do_message(self, request: SipRequest) -> None:
        target = request.body.decode()
        request.create_response(200).send()
        factory = self.context.container.factories["sip"]
        invite = factory.create_request(request.application_session, "INVITE",
                                        "<sip:dialer@localhost>", f"<{target}>")
        invite.set_body(SDP_OFFER.encode(), "application/sdp")
        invite.send()

    def do_success_response(self, response: SipResponse) -> None:
        self.responses.append((response.status, response.method))
        if response.method == "INVITE":
            response.session.create_request("BYE").send()

    def do_error_response(self, response: SipResponse) -> None:
        self.responses.append((response.status, response.method))


class OutcomeServlet(SipServlet):
    """Answers a MESSAGE in the way its body names: the servlet's return
    styles (plain, Deferred, coroutine) each answered or failing."""

    def do_message(self, request: SipRequest) -> object:
        how = request.body.decode()
        if how == "raise":
            raise RuntimeError("a servlet bug")
        if how == "status":
            raise SipStatusError(486)
        if how == "failed-deferred":
            return fail(RuntimeError("a failed Deferred"))
        if how == "later":
            d: Deferred = Deferred()
            reactor.callLater(0.01, d.callback, None)
            d.addCallback(lambda _: request.create_response(202).send())
            return d
        if how == "later-status":
            d = Deferred()
            reactor.callLater(0.01, d.errback, SipStatusError(480))
            return d
        if how == "async":
            return self._answer_async(request)
        if how == "async-raise":
            return self._raise_async()
        request.create_response(200).send()
        return None

    async def _answer_async(self, request: SipRequest) -> None:
        request.create_response(201).send()

    async def _raise_async(self) -> None:
        raise SipStatusError(603)


SDP_OFFER = (
    "v=0\r\no=dialer 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=message 5222 xmpp/tcp chat\r\na=jid:dialer@localhost\r\na=thread:t-1\r\n"
)

ringer = DeploymentDescriptor(name="ringer", sip=["ringer@{domain}"],
                              servlets={"sip": RingerServlet})
caller = DeploymentDescriptor(name="caller", sip=["caller@{domain}"],
                              servlets={"sip": CallerServlet})
dialer = DeploymentDescriptor(name="dialer", sip=["dialer@{domain}"],
                              servlets={"sip": DialerServlet})
outcome = DeploymentDescriptor(name="outcome", sip=["outcome@{domain}"],
                               servlets={"sip": OutcomeServlet})
