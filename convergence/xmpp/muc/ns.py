"""Namespaces of XEP-0045 and the specifications it uses."""

MUC = "http://jabber.org/protocol/muc"
MUC_USER = MUC + "#user"
MUC_ADMIN = MUC + "#admin"
MUC_OWNER = MUC + "#owner"
ROOMCONFIG = MUC + "#roomconfig"
ROOMINFO = MUC + "#roominfo"
#: XEP-0410: the room answers a self-ping itself
SELF_PING = MUC + "#self-ping-optimization"
DELAY = "urn:xmpp:delay"
CLIENT = "jabber:client"
