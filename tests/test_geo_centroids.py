"""The shipped country table covers every region phonenumbers and GeoLite2 can name."""

from __future__ import annotations

import json

import phonenumbers
import pycountry
import pytest

from helpers.batch import Batch
from helpers.config import Config
from helpers.context import Context
from helpers.geo_helper import MAX_LATITUDE, Geo, load_centroids
from helpers.observations import AttributeObs
from helpers.stats import InstanceStats

CENTROIDS = load_centroids()

# The regions the reference dashboard loses by matching English names, and more.
REGIONS = ["RU", "KR", "IR", "TR", "VN", "TW", "CZ", "BO", "VE", "TZ", "SY", "KP", "LA", "MD",
           "MK", "PS", "CD", "CG", "CI", "FM", "BN", "GB", "US", "DE", "FR", "JP", "CN", "BR",
           "IN", "ZA", "XK", "AC", "TA", "VA", "SX", "BQ"]


@pytest.fixture(scope="module")
def geo() -> Geo:
    return Geo(Config())


def e164(region: str) -> str:
    number = phonenumbers.example_number(region)
    assert number is not None, region
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def place_phone(geo: Geo, number: str) -> tuple[str, dict[str, object]]:
    c = Context(0.0, "20250102", "2025010200", "misp1", Batch(), InstanceStats("misp1"))
    geo.on_attribute(AttributeObs({}, "Person", "phone-number", number, False, None, [], None,
                                  "attribute"), c)
    assert not c.stats.reasons, (number, c.stats.reasons)
    (iso,) = [member for (key, member) in c.batch.zincr if key.startswith("GEO_COUNTRY:")]
    (_, message), = c.batch.publications()
    return iso, json.loads(message)


def test_every_phonenumbers_region_has_a_position() -> None:
    missing = sorted(set(phonenumbers.SUPPORTED_REGIONS) - set(CENTROIDS))
    assert missing == []


def test_every_iso_3166_country_has_a_position() -> None:
    missing = sorted({c.alpha_2 for c in pycountry.countries} - set(CENTROIDS))
    assert missing == []


def test_table_rows_are_usable() -> None:
    assert len(CENTROIDS) == 252
    for iso, c in CENTROIDS.items():
        assert len(iso) == 2 and iso.isupper(), iso
        assert -90 <= c.lat <= 90 and -180 <= c.lon <= 180, iso
        assert c.name.strip() == c.name and c.name, iso
    # Only the pole that the source gives for Antarctica is beyond GEOADD's range.
    assert [iso for iso, c in CENTROIDS.items() if abs(c.lat) > MAX_LATITUDE] == ["AQ"]


@pytest.mark.parametrize("region", REGIONS)
def test_a_phone_number_lands_on_its_country(geo: Geo, region: str) -> None:
    iso, message = place_phone(geo, e164(region))
    c = CENTROIDS[region]
    assert iso == region
    assert message["regionCode"] == region
    assert message["country"] == c.name
    assert message["coord"] == {"lat": c.lat, "lon": c.lon}


def test_every_region_example_number_lands_where_phonenumbers_says(geo: Geo) -> None:
    # EH and MF share numbering plans with MA and BL: phonenumbers itself answers those.
    wrong = {}
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        number = e164(region)
        expected = phonenumbers.region_code_for_number(phonenumbers.parse(number, None))
        iso, _ = place_phone(geo, number)
        if iso != expected:
            wrong[region] = (iso, expected)
    assert wrong == {}


def test_spot_values() -> None:
    assert CENTROIDS["CZ"].name == "Czechia"
    assert (CENTROIDS["AC"].lat, CENTROIDS["AC"].lon) == (-7.9286, -14.4119)
    assert (CENTROIDS["TA"].lat, CENTROIDS["TA"].lon) == (-37.0676, -12.3116)
    assert (CENTROIDS["XK"].lat, CENTROIDS["XK"].lon, CENTROIDS["XK"].name) == (
        42.6667, 21.1667, "Kosovo")
