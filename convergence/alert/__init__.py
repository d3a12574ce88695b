"""
Event alerting (issue 12): C{POST /api/alert} on the HTTP listener puts a
message into a chat room, or sends one to a JID, for monitoring systems,
CI jobs and scripts holding a bearer token (docs/alerts.md).

  - L{tokens}: the configured tokens, compared in constant time, and a
    rate limit per token;
  - L{alerts}: the JSON body read into an L{alerts.Alert}, and the
    errors every step may answer;
  - L{poster}: an alert turned into XMPP (a groupchat from a nickname, or
    a message through the router);
  - L{resource}: the HTTP resource at C{/api/alert}.
"""
