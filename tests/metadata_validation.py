"""Offline validators for the catalog's metadata: the DCAT-AP 3.0.1 SHACL shapes (pyshacl) and
the ISO 19139 XSDs (lxml, with the schemas pycsw's wheel carries in .venv-csw).

Both fail, never skip, when their files are missing: a missing validator must not pass as a
valid document.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from lxml import etree
from pyshacl import validate
from rdflib import Graph, Namespace

from tests.conftest import ROOT

SH = Namespace("http://www.w3.org/ns/shacl#")
SHAPES_DIR = Path(os.environ.get("TAZA_DCAT_SHACL", ROOT.parent / "shared" / "dcat-ap-shacl"))
DCAT_AP_SHAPES = ("dcat-ap-3.0.1-SHACL.ttl", "dcat-ap-3.0.1-ranges.ttl",
                  "geodcat-ap-2.0.0-SHACL.ttl")
VOCABULARY_SHAPES = "dcat-ap-3.0.1-mdr-vocabularies.shape.ttl"
# The 3.0.1 shapes link five property shapes that no file of the release defines (dangling
# sh:property IRIs); pyshacl refuses the whole shapes graph for them. They are dropped, and
# counted, so a release that fixes or adds some shows up here.
DANGLING_PROPERTY_SHAPES = 5
CSW_VENV = ROOT / ".venv-csw"


@cache
def dcat_shapes(*names: str) -> Graph:
    if not SHAPES_DIR.is_dir():
        raise AssertionError(f"DCAT-AP SHACL shapes not found in {SHAPES_DIR} "
                             "(set TAZA_DCAT_SHACL to their folder)")
    shapes = Graph()
    for name in names:
        shapes.parse(SHAPES_DIR / name)
    dangling = [(shape, link) for shape, link in shapes.subject_objects(SH.property)
                if (link, None, None) not in shapes]
    for shape, link in dangling:
        shapes.remove((shape, SH.property, link))
    assert len(dangling) <= DANGLING_PROPERTY_SHAPES, dangling
    return shapes


def shacl_violations(data: Graph, *shape_files: str) -> tuple[bool, Graph, str]:
    """(conforms, report graph, report text) of `data` against the named shape files."""
    conforms, report, text = validate(data, shacl_graph=dcat_shapes(*shape_files),
                                      inference="none", allow_warnings=True)
    return conforms, report, text


@cache
def iso19139_schema() -> etree.XMLSchema:
    """gmd and gmx (pygeometa writes gmx:Anchor), ISO/TS 19139 2006-05-04 with GML 3.1."""
    found = sorted(CSW_VENV.glob("lib/python3*/site-packages/pycsw/plugins/profiles/apiso/"
                                 "schemas/ogc/iso/19139/20060504"))
    if not found:
        raise AssertionError(f"ISO 19139 XSDs not found under {CSW_VENV}: run "
                             "`make .venv-csw/bin/.installed` (pycsw's wheel carries them)")
    folder = found[0]
    wrapper = f"""<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">
      <xs:import namespace="http://www.isotc211.org/2005/gmd"
                 schemaLocation="{(folder / 'gmd' / 'gmd.xsd').as_uri()}"/>
      <xs:import namespace="http://www.isotc211.org/2005/gmx"
                 schemaLocation="{(folder / 'gmx' / 'gmx.xsd').as_uri()}"/>
    </xs:schema>"""
    parser = etree.XMLParser(no_network=True)
    return etree.XMLSchema(etree.fromstring(wrapper, parser))
