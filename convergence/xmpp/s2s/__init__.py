"""
Server-to-server streams (RFC 6120, federation).

One idea per module:

  - L{resolver}: where a remote domain's server is (override map, DNS SRV
    C{_xmpp-server._tcp} / C{_xmpps-server._tcp}, A/AAAA);
  - L{dialback}: XEP-0220 elements and XEP-0185 keys;
  - L{identity}: peer certificates, verified and matched to a domain
    (RFC 6120 13.7.1.2, RFC 7590: DNS-ID, SRV-ID, XmppAddr);
  - L{namespaces}: stanzas between C{jabber:server} and C{jabber:client};
  - L{inbound} / L{outbound}: the two stream roles;
  - L{queue}: stanzas waiting for a stream, bounced when it fails;
  - L{manager}: streams per domain pair, policy, the router's remote route.
"""
