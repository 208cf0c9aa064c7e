"""The live catalogue (every Hydra page, merged, both serialisations) against the official SEMIC
DCAT-AP 3.0.1 SHACL shapes (../shared/data/dcat-ap-3.0.1): the mandatory shapes give no
violation and the recommended shapes no warning (README "DCAT-AP conformance" lists none left)."""

from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path

import httpx
import pyshacl
import pytest
from civicair.open_export.vocabulary import HYDRA, SPDX
from rdflib import Graph, Literal
from rdflib.namespace import DCTERMS, RDF, SH

pytestmark = pytest.mark.db


def merged_pages(base: str, first: str, fmt: str) -> Graph:
    graph = Graph()
    url: str | None = f"{base}{first}"
    while url:
        r = httpx.get(url, timeout=30)
        assert r.status_code == 200, r.text
        with warnings.catch_warnings():  # rdflib's JSON-LD parser still uses ConjunctiveGraph
            warnings.filterwarnings("ignore", "ConjunctiveGraph is deprecated", DeprecationWarning)
            page = Graph().parse(data=r.text, format=fmt)
        graph += page
        nxt = next(iter(page.objects(None, HYDRA.next)), None)
        url = str(nxt) if nxt is not None else None
    return graph


def results(data: Graph, shapes: Path) -> Counter[tuple[str, str, str]]:
    """(severity, path, message) of every result."""
    _, report, _ = pyshacl.validate(data, shacl_graph=Graph().parse(shapes, format="turtle"),
                                    inference="none", advanced=True, allow_warnings=True)
    found: Counter[tuple[str, str, str]] = Counter()
    for res in report.subjects(RDF.type, SH.ValidationResult):
        found[(str(report.value(res, SH.resultSeverity)).rsplit("#", 1)[-1], str(report.value(res, SH.resultPath)),
               str(report.value(res, SH.resultMessage)))] += 1
    return found


@pytest.mark.parametrize(("first", "fmt"), [("/catalog.ttl?page_size=2", "turtle"),
                                            ("/catalog.jsonld?page_size=4", "json-ld")])
def test_catalogue_conforms_to_dcat_ap_3_mandatory_and_recommended_shapes(portal, shared_data, first, fmt) -> None:
    shapes = shared_data / "dcat-ap-3.0.1"
    data = merged_pages(portal.base, first, fmt)
    assert len(data) > 500  # six datasets with their distributions, not an empty page
    assert results(data, shapes / "shapes.ttl") == Counter()  # mandatory: no violation
    assert results(data, shapes / "shapes_recommended.ttl") == Counter()  # recommended: no warning


def test_the_shapes_do_catch_a_broken_catalogue(portal, shared_data) -> None:
    """The check can fail: the same catalogue with plain-string checksums (what udata would like)
    and no distribution descriptions breaks the mandatory and recommended shapes."""
    data = merged_pages(portal.base, "/catalog.ttl", "turtle")
    for s, p, o in list(data.triples((None, SPDX.checksumValue, None))):
        data.set((s, p, Literal(str(o))))
    for s, p, o in list(data.triples((None, DCTERMS.description, None))):
        if "#" in str(s):
            data.remove((s, p, o))
    mandatory = results(data, shared_data / "dcat-ap-3.0.1" / "shapes.ttl")
    assert sum(n for (severity, path, _), n in mandatory.items()
               if severity == "Violation" and path == str(SPDX.checksumValue)) > 10
    recommended = results(data, shared_data / "dcat-ap-3.0.1" / "shapes_recommended.ttl")
    assert any(path == str(DCTERMS.description) for _, path, _ in recommended)
