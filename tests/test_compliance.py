"""
The compliance generator: the committed docs/compliance.md and
docs/convergence.doap are what it prints now, and its XEP-0479 table
follows the declared features.
"""

from __future__ import annotations

from pathlib import Path

from lxml import etree
from twisted.trial.unittest import SynchronousTestCase

from convergence.compliance.__main__ import main
from convergence.compliance.generate import outputs
from convergence.compliance.render import DOAP, RDF, XMPP_DOAP, markdown
from convergence.compliance.specs import CORE_SPECS, Spec, implemented
from convergence.compliance.suites import (
    ADVANCED_SERVER,
    REQUIREMENTS,
    SERVER,
    Requirement,
    assess,
)
from convergence.xmpp.features import builtin_features

DOCS = Path(__file__).resolve().parent.parent / "docs"


def without(name: str) -> list:
    return [f for f in builtin_features() if f.name != name]


class GeneratedDocsTests(SynchronousTestCase):
    def test_committed_docs_are_current(self) -> None:
        """docs/compliance.md and docs/convergence.doap equal what the
        generator prints now (run `make compliance` after changing a
        feature)."""
        for name, text in outputs().items():
            committed = (DOCS / name).read_text(encoding="utf-8")
            self.assertEqual(committed, text,
                             f"docs/{name} is out of date: run make compliance")

    def test_check_option(self) -> None:
        """--check passes on current files and fails on stale ones."""
        self.assertEqual(main(["--check", "--docs", str(DOCS)]), 0)
        stale = Path(self.mktemp())
        stale.mkdir()
        (stale / "compliance.md").write_text("old")
        self.assertEqual(main(["--check", "--docs", str(stale)]), 1)
        self.assertEqual(main(["--docs", str(stale)]), 0)
        self.assertEqual(main(["--check", "--docs", str(stale)]), 0)

    def test_every_feature_is_listed(self) -> None:
        """Each built-in feature's spec is in the table, and each XEP is an
        xmpp:SupportedXep of the DOAP with its version and status."""
        files = outputs()
        doap = etree.fromstring(files["convergence.doap"].encode())
        xeps = {
            e.find(f"{{{XMPP_DOAP}}}xep").get(f"{{{RDF}}}resource"):
            (e.findtext(f"{{{XMPP_DOAP}}}version"), e.findtext(f"{{{XMPP_DOAP}}}status"))
            for e in doap.iter(f"{{{XMPP_DOAP}}}SupportedXep")}
        rfcs = {e.get(f"{{{RDF}}}resource") for e in doap.iter(f"{{{DOAP}}}implements")}
        for feature in builtin_features():
            self.assertIn(f"[{feature.spec}]", files["compliance.md"])
            number = "".join(c for c in feature.spec if c.isdigit())
            if feature.spec.startswith("XEP-"):
                version, status = xeps[f"https://xmpp.org/extensions/xep-{number}.html"]
                self.assertEqual(version, feature.version)
                self.assertIn(status, ("complete", "partial"))
            else:
                self.assertIn(f"https://www.rfc-editor.org/info/rfc{number}", rfcs)
        self.assertEqual(doap.find(f"{{{DOAP}}}Project").findtext(f"{{{DOAP}}}name"),
                         "convergence")

    def test_removing_a_feature_changes_the_docs(self) -> None:
        """Without the caps module the docs no longer list XEP-0115 and
        the suite marks Feature broadcasts missing."""
        files = outputs(without("caps"))
        self.assertNotIn("[XEP-0115]", files["compliance.md"])
        self.assertIn("| Feature broadcasts | XEP-0115 | missing |", files["compliance.md"])
        self.assertNotIn("xep-0115", files["convergence.doap"])


class SpecsTests(SynchronousTestCase):
    def test_duplicates_merge(self) -> None:
        """RFC 6121 (roster and presence) and RFC 6120 (a feature and the
        core list) appear once each, RFC 6120 complete now that clients
        have SASL EXTERNAL; a partial declaration wins."""
        specs = implemented(builtin_features())
        names = [s.spec for s in specs]
        self.assertEqual(len(names), len(set(names)))
        self.assertEqual(names.count("RFC 6121"), 1)
        [core] = [s for s in specs if s.spec == "RFC 6120"]
        self.assertEqual(core.status, "complete")
        merged = implemented([], [Spec("RFC 1", "", "XMPP", note="a"),
                                  Spec("RFC 1", "2", "XMPP", "partial", "b")])
        self.assertEqual(merged, [Spec("RFC 1", "2", "XMPP", "partial", "a; b")])

    def test_core_specs_in_one_place(self) -> None:
        """The service layers' RFCs (not feature modules) come from
        CORE_SPECS: RFC 7622, RFC 3261, XEP-0368 …"""
        core = {s.spec for s in CORE_SPECS}
        for spec in ("RFC 6120", "RFC 7622", "RFC 7590", "RFC 3261", "XEP-0368"):
            self.assertIn(spec, core)
        self.assertTrue({s.spec for s in implemented([])} >= core)


class SuiteTests(SynchronousTestCase):
    def rows(self, features) -> dict[tuple[str, str], str]:
        return {(a.requirement.suite, a.requirement.feature): a.status
                for a in assess(implemented(features))}

    def test_table_of_the_xep(self) -> None:
        """Core, IM and Mobile rows of XEP-0479 0.1.0: direct TLS and caps
        at the Advanced level only; stream management at both for Mobile."""
        levels = {(r.suite, r.feature): r.levels for r in REQUIREMENTS}
        self.assertEqual(levels[("Core", "Direct TLS")], (ADVANCED_SERVER,))
        self.assertEqual(levels[("Core", "Feature broadcasts")], (ADVANCED_SERVER,))
        self.assertEqual(levels[("Mobile", "Stream Management")],
                         (SERVER, ADVANCED_SERVER))
        self.assertEqual(levels[("IM", "Stream Management")], (ADVANCED_SERVER,))
        self.assertEqual({r.suite for r in REQUIREMENTS}, {"Core", "IM", "Mobile"})

    def test_met_and_missing_follow_the_features(self) -> None:
        """What the built-in features meet, and what goes missing when one
        is taken away."""
        rows = self.rows(builtin_features())
        self.assertEqual(rows[("Core", "Direct TLS")], "met")
        self.assertEqual(rows[("Core", "Feature discovery")], "met")
        self.assertEqual(rows[("Core", "Feature broadcasts")], "met")
        self.assertEqual(rows[("IM", "Core features")], "met")
        self.assertEqual(rows[("Core", "Server Extensibility")], "missing")
        self.assertEqual(self.rows(without("disco"))[("Core", "Feature discovery")],
                         "missing")
        self.assertEqual(self.rows(without("caps"))[("Core", "Feature broadcasts")],
                         "missing")
        rows = self.rows([f for f in builtin_features()
                          if f.name not in ("roster", "presence")])
        self.assertEqual(rows[("IM", "Core features")], "missing")

    def test_one_of_several_and_all_of(self) -> None:
        """A provider given as a choice is met by any one option; every
        provider is needed; the missing ones are named."""
        req = Requirement("IM", "Bookmarks", (ADVANCED_SERVER,),
                          (("XEP-0048", "XEP-0402"), ("XEP-0313",)))
        have = [Spec("XEP-0402", "1.1", "XMPP"), Spec("XEP-0313", "1.0", "XMPP")]
        [a] = assess(have, requirements=[req])
        self.assertEqual((a.status, a.met_by), ("met", ("XEP-0402", "XEP-0313")))
        [a] = assess(have[:1], requirements=[req])
        self.assertEqual((a.status, a.missing), ("missing", (("XEP-0313",),)))
        [a] = assess([Spec("XEP-0048", "1.2", "XMPP", "partial"), have[1]],
                     requirements=[req])
        self.assertEqual(a.status, "partial")
        self.assertEqual(assess(have, level=SERVER, requirements=[req]), [])

    def test_suite_headings_do_not_count_partial_as_met(self) -> None:
        """A suite's heading counts met, partial and missing rows apart."""
        reqs = [Requirement("Core", name, (ADVANCED_SERVER,), ((spec,),))
                for name, spec in (("A", "XEP-0001"), ("B", "XEP-0002"), ("C", "XEP-0003"))]
        have = [Spec("XEP-0001", "1", "XMPP"), Spec("XEP-0002", "1", "XMPP", "partial")]
        text = markdown(have, assess(have, requirements=reqs))
        self.assertIn("### Core: 1 of 3 met, 1 partial, 1 missing", text)
        text = markdown(have[:1], assess(have[:1], requirements=reqs[:1]))
        self.assertIn("### Core: 1 of 1 met\n", text)
