"""The words of the catalogue as the portals' harvesters read them (docs/open-data.md#dcat-ap-catalogue).
Pure: namespaces, licences, media types and file types, format standards, portal-safe keywords.

What each choice is for (udata 17 `DcatBackend`, ckanext-dcat 2 `RDFParser` + CKAN's create schema):
- media types in the `https://www.iana.org/assignments/media-types/` form (udata maps only that
  form to a MIME type), typed `dct:MediaType` with the bare type as `rdfs:label` (CKAN keeps the
  label as the resource's mimetype and finds its format in its own register);
- licences by the URL and title the portals' registers hold (udata `lov2` / `odc-odbl`; CKAN's
  default register has ODbL by title, Etalab only when the portal adds it), typed
  `dct:LicenseDocument` with an ADMS licence type;
- keywords CKAN's tag validator accepts (letters, digits, spaces, `-`, `_`, `.`; 2 to 100
  characters) and udata keeps (at least 3).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from civicair.core.settings import Settings
from civicair.open_export.datasets import Dataset
from rdflib import Namespace

HYDRA = Namespace("http://www.w3.org/ns/hydra/core#")
VCARD = Namespace("http://www.w3.org/2006/vcard/ns#")
SPDX = Namespace("http://spdx.org/rdf/terms#")
ADMS = Namespace("http://www.w3.org/ns/adms#")
GSP = Namespace("http://www.opengis.net/ont/geosparql#")
LOCN = Namespace("http://www.w3.org/ns/locn#")
DCATAP = Namespace("http://data.europa.eu/r5r/")
EU = "http://publications.europa.eu/resource/authority/"
IANA = "https://www.iana.org/assignments/media-types/"
LICENCE_TYPE = "http://purl.org/adms/licencetype/"
PUBLISHER_TYPE = "http://purl.org/adms/publishertype/"
THEMES = f"{EU}data-theme"
STABLE = f"{EU}planned-availability/STABLE"
AVAILABLE = f"{EU}planned-availability/AVAILABLE"
LANGUAGES = {"fr": f"{EU}language/FRA", "en": f"{EU}language/ENG"}

# export format → EU file type (udata: the lower-cased code; CKAN keeps the URI unless its format
# register knows the media type)
FILE_TYPE = {"csv": "CSV", "parquet": "PARQUET", "geojson": "GEOJSON", "json": "JSON"}
MEDIA_TYPE = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet",
              "geojson": "application/geo+json", "json": "application/json"}


@dataclass(frozen=True, slots=True)
class Standard:
    """A specification a distribution or service conforms to (`dct:conformsTo` → `dct:Standard`)."""

    uri: str
    title: str


STANDARDS = {
    "csv": Standard("https://www.rfc-editor.org/info/rfc4180",
                    "RFC 4180: Common Format and MIME Type for Comma-Separated Values (CSV) Files"),
    "geojson": Standard("https://www.rfc-editor.org/info/rfc7946", "RFC 7946: The GeoJSON Format"),
    "parquet": Standard("https://parquet.apache.org/docs/file-format/", "Apache Parquet file format"),
    "api": Standard("https://spec.openapis.org/oas/v3.1.0", "OpenAPI Specification 3.1.0"),
}


@dataclass(frozen=True, slots=True)
class Licence:
    url: str
    title: str
    types: tuple[str, ...]  # ADMS licence type codes


ETALAB_URL = "https://www.etalab.gouv.fr/licence-ouverte-open-licence"
ODBL_URL = "https://opendatacommons.org/licenses/odbl/1-0/"
# licence types of the licences a French portal meets; another URL gets "Attribution"
_TYPES = {ETALAB_URL: ("Attribution",), ODBL_URL: ("Attribution", "ShareAlike")}


def licence(url: str, title: str) -> Licence:
    return Licence(url, title, _TYPES.get(url, ("Attribution",)))


def dataset_licence(settings: Settings, dataset: Dataset) -> Licence:
    """civicair's licence, or for the reference stations their network's."""
    if dataset.licence == "reference":
        return licence(settings.reference_licence_url, settings.reference_licence_name)
    return licence(settings.licence_url, settings.licence_name)


_NOT_IN_TAG = re.compile(r"[^\w \-.]")
TAG_MIN, TAG_MAX = 3, 96  # udata drops shorter tags and cuts longer ones; CKAN accepts 2..100


def portal_tag(keyword: str) -> str | None:
    """A keyword as a tag both portals keep: every character CKAN's validator refuses (apostrophes,
    commas, slashes, brackets, ...) becomes a space; None when too short or too long."""
    tag = " ".join(_NOT_IN_TAG.sub(" ", keyword).split())
    return tag if TAG_MIN <= len(tag) <= TAG_MAX else None
