"""geo_helper as a pure feature: attribute observation in, Redis operations out (semantics §4).

Positions are those of the GeoLite2 City release bundled with maxminddb-geolite2
(build 2018-07-03), rounded to 4 decimals.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import random
import shutil
from collections import Counter
from pathlib import Path

import geoip2.database
import geoip2.errors
import geoip2.models
import maxminddb
import pytest

from helpers.batch import Batch
from helpers.config import Config, ConfigError, GeoConfig, load_config
from helpers.context import Context
from helpers.geo_helper import (
    MAX_LATITUDE,
    Centroid,
    Found,
    Geo,
    Place,
    bundled_database,
    has_location,
    ip_part,
    load_centroids,
    non_public,
    place_of,
    placed,
)
from helpers.observations import AttributeObs
from helpers.stats import InstanceStats

DAY = "20250102"
NOW = 1735819200.0  # 2025-01-02 12:00 UTC


@pytest.fixture(scope="module")
def geo() -> Geo:
    return Geo(Config())


def attr(atype: str | None, value: str | None, category: str = "Network activity") -> AttributeObs:
    return AttributeObs(attribute={}, category=category, type=atype, value=value, is_object=False,
                        org="CIRCL", tags=[], event=None, source="attribute")


def ctx(now: float = NOW) -> Context:
    return Context(now, DAY, DAY + "12", "misp1", Batch(), InstanceStats("misp1"))


def run(geo: Geo, atype: str | None, value: str | None, category: str = "Network activity"
        ) -> Context:
    c = ctx()
    geo.on_attribute(attr(atype, value, category), c)
    return c


def map_message(lat: float, lon: float, categ: str, value: str, country: str, sub: str,
                city: str, iso: str) -> str:
    return json.dumps({"coord": {"lat": lat, "lon": lon}, "categ": categ, "value": value,
                       "country": country, "specifName": sub, "cityName": city,
                       "regionCode": iso}, ensure_ascii=False)


def assert_placed(c: Context, *, lat: float, lon: float, iso: str, country: str, sub: str,
                  city: str, categ: str, value: str) -> None:
    coord = json.dumps({"lat": lat, "lon": lon})
    member = json.dumps({"categ": categ, "value": value}, ensure_ascii=False)
    assert c.batch.zincr == {(f"GEO_COORD:{DAY}", coord): 1, (f"GEO_COUNTRY:{DAY}", iso): 1}
    assert c.batch.geo == {f"GEO_RAD:{DAY}": {member: (lon, lat)}}
    assert c.batch.publications() == [("PicToDisplay",
                             map_message(lat, lon, categ, value, country, sub, city, iso))]
    assert not c.stats.reasons


def test_ipv4_lands_on_its_country_point(geo: Geo) -> None:
    c = run(geo, "ip-dst", "8.8.8.8")
    assert_placed(c, lat=37.751, lon=-97.822, iso="US", country="United States", sub="", city="",
                  categ="Network activity", value="8.8.8.8")


def test_ipv6_lands_on_its_city(geo: Geo) -> None:
    c = run(geo, "ip-src", "2001:4860:4860::8888", "Payload delivery")
    assert_placed(c, lat=37.4192, lon=-122.0574, iso="US", country="United States",
                  sub="California", city="Mountain View", categ="Payload delivery",
                  value="2001:4860:4860::8888")


def test_ipv6_with_port_is_split_before_the_bar(geo: Geo) -> None:
    c = run(geo, "ip-dst|port", "2a00:1450:4001:80b::200e|443")
    assert_placed(c, lat=50.1153, lon=8.6823, iso="DE", country="Germany", sub="Hesse",
                  city="Frankfurt am Main", categ="Network activity",
                  value="2a00:1450:4001:80b::200e|443")


def test_non_ascii_names_are_kept_as_is(geo: Geo) -> None:
    c = run(geo, "ip-src", "1.33.110.1")
    (_, message), = c.batch.publications()
    assert '"cityName": "Ōita"' in message
    assert json.loads(message)["regionCode"] == "JP"


def test_registered_country_centroid_when_the_record_has_no_country(geo: Geo) -> None:
    # A satellite provider: registered_country US, no country, no location.
    c = run(geo, "ip-dst", "5.145.149.142")
    assert_placed(c, lat=38.0, lon=-97.0, iso="US", country="United States", sub="", city="",
                  categ="Network activity", value="5.145.149.142")


@pytest.mark.parametrize(("atype", "value", "ip"), [
    ("ip-src", "8.8.8.8", "8.8.8.8"),
    ("ip-src|port", "8.8.8.8|53", "8.8.8.8"),
    ("ip-dst|port", "2001:db8::1|8080", "2001:db8::1"),
    ("domain|ip", "dns.google|8.8.4.4", "8.8.4.4"),
    ("domain|ip", "example.com|2001:4860:4860::8888", "2001:4860:4860::8888"),
    ("domain|ip", "no-ip-here", ""),
])
def test_composite_values_give_their_ip_part(atype: str, value: str, ip: str) -> None:
    assert ip_part(atype, value) == ip


@pytest.mark.parametrize(("atype", "value", "iso"), [
    ("ip-src|port", "8.8.8.8|53", "US"),
    ("domain|ip", "one.one.one.one|1.1.1.1", "AU"),
    ("domain|ip", "dns.google|2001:4860:4860::8888", "US"),
    ("ip-dst", " 81.2.69.160 ", "GB"),
    ("ip-dst", "[2a00:1450:4001:80b::200e]", "DE"),
    ("ip-dst", "::ffff:89.160.20.112", "SE"),
    ("ip-src", "89.160.20.0/24", "SE"),
])
def test_composite_and_untidy_values_land_on_the_ip_country(geo: Geo, atype: str, value: str,
                                                             iso: str) -> None:
    c = run(geo, atype, value)
    assert c.batch.zincr[(f"GEO_COUNTRY:{DAY}", iso)] == 1
    (_, message), = c.batch.publications()
    assert json.loads(message)["value"] == value  # the attribute value as sent


@pytest.mark.parametrize(("atype", "value", "reason"), [
    ("ip-src", "10.1.2.3", "geo_private"),
    ("ip-dst", "192.168.0.1", "geo_private"),
    ("ip-dst", "fd00::1", "geo_private"),
    ("ip-src", "127.0.0.1", "geo_loopback"),
    ("ip-src", "::1", "geo_loopback"),
    ("ip-src", "169.254.1.1", "geo_link_local"),
    ("ip-src", "fe80::1", "geo_link_local"),
    ("ip-dst", "224.0.0.251", "geo_multicast"),
    ("ip-dst", "0.0.0.0", "geo_unspecified"),
    ("ip-dst", "100.64.0.1", "geo_reserved"),
    ("ip-dst", "240.0.0.1", "geo_private"),
    ("ip-src|port", "10.0.0.1|22", "geo_private"),
    ("domain|ip", "intranet.example|172.16.0.1", "geo_private"),
    ("ip-src", "not an address", "geo_bad_ip"),
    ("ip-src", "999.1.1.1", "geo_bad_ip"),
    ("ip-src", "010.1.1.1", "geo_bad_ip"),  # leading zeros: octal to some parsers, refused
    ("ip-src", "8.8.8", "geo_bad_ip"),
    ("ip-dst", "fe80::1%eth0", "geo_link_local"),
    ("domain|ip", "example.com", "geo_bad_ip"),
    ("ip-src", "", "geo_no_value"),
    ("ip-src", None, "geo_no_value"),
    ("ip-src", "2.16.0.1", "geo_no_country"),  # continent-level record: no country to count
    ("phone-number", "12345", "geo_bad_phone"),
    ("phone-number", "+1 555", "geo_bad_phone"),
    ("whois-registrant-phone", "call me", "geo_bad_phone"),
    ("phone-number", "+800 1234 5678", "geo_phone_no_region"),  # international freephone
])
def test_unplaceable_values_are_skipped_and_counted(geo: Geo, atype: str, value: str | None,
                                                    reason: str) -> None:
    c = run(geo, atype, value)
    assert not c.batch
    assert dict(c.stats.reasons) == {reason: 1}


def test_an_address_missing_from_the_database_is_not_found(geo: Geo) -> None:
    # Global unicast space that no registry had allocated in the 2018 database.
    c = run(geo, "ip-dst", "2c0f:ffff:ffff::1")
    assert not c.batch
    assert dict(c.stats.reasons) == {"geo_not_found": 1}


@pytest.mark.parametrize("atype", ["domain", "url", "md5", "ip", "hostname|port", None])
def test_other_types_are_ignored_without_counting(geo: Geo, atype: str | None) -> None:
    c = run(geo, atype, "8.8.8.8")
    assert not c.batch
    assert not c.stats.reasons


def test_phone_numbers_land_on_their_country_centroid(geo: Geo) -> None:
    c = run(geo, "whois-registrant-phone", "+420 212 345 678", "Attribution")
    assert_placed(c, lat=49.75, lon=15.5, iso="CZ", country="Czechia", sub="", city="",
                  categ="Attribution", value="+420 212 345 678")


def test_positions_geoadd_refuses_are_skipped(tmp_path: Path) -> None:
    assert placed(-90.0, 0.0, "AQ", "Antarctica") == "geo_out_of_range"
    assert placed(85.0511, 0.0, "XX", "x") != "geo_out_of_range"
    g = Geo(Config())
    g.centroids["RU"] = Centroid(86.0, 100.0, "Russia")
    c = ctx()
    g.on_attribute(attr("phone-number", "+7 912 345 67 89"), c)
    assert not c.batch
    assert dict(c.stats.reasons) == {"geo_out_of_range": 1}


def test_coordinates_are_rounded_to_4_decimals_and_zero_has_one_form() -> None:
    place = placed(51.477928321, -0.000014999, "GB", "United Kingdom")
    assert not isinstance(place, str)
    assert place.coord == '{"lat": 51.4779, "lon": 0.0}'
    assert (place.lat, place.lon) == (51.4779, 0.0)


def test_the_same_indicator_is_looked_up_once_and_caches_are_bounded() -> None:
    g = Geo(Config(geo=GeoConfig(cache_size=2)))
    for ip in ("8.8.8.8", "8.8.8.8", "1.1.1.1", "81.2.69.160", "8.8.8.8"):
        g.on_attribute(attr("ip-dst", ip), ctx())
    info = g.ip_place.cache_info()  # type: ignore[attr-defined]
    assert (info.hits, info.misses, info.currsize, info.maxsize) == (1, 4, 2, 2)
    g.on_attribute(attr("phone-number", "+33 1 23 45 67 89"), ctx())
    g.on_attribute(attr("phone-number", "+33 1 23 45 67 89"), ctx())
    info = g.phone_place.cache_info()  # type: ignore[attr-defined]
    assert (info.hits, info.misses) == (1, 1)


def test_start_up_names_the_bundled_database_and_its_age(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="helpers.geo_helper"):
        g = Geo(Config())
    text = caplog.text
    assert f"GeoLite2-City database {bundled_database()}, built 2018-07-03" in text
    assert "a current GeoLite2 or GeoIP2 City database (geo.database) gives better" in text
    assert g.path == bundled_database()


# --- the record path against geoip2's models ---------------------------------------------

Fields = tuple[float, float, str, str, str, str] | str  # (lat, lon, iso, country, sub, city)

# IPv6 blocks where random addresses often have a record in the 2018 database.
V6_BLOCKS = [ipaddress.IPv6Network(n) for n in ("2001::/16", "2a00::/12", "2600::/12",
                                                 "2400::/12", "2800::/12", "2c0f::/16")]
# Addresses of the rarer branches: registered country only and no location, continent only,
# no record, a non-ASCII city, IPv6 cities.
SPECIAL = ["5.145.149.142", "2.16.0.1", "2c0f:ffff:ffff::1", "1.33.110.1", "8.8.8.8",
           "2001:4860:4860::8888", "2a00:1450:4001:80b::200e", "81.2.69.160"]


def sample_ips(seed: int, n4: int, n6: int) -> list[str]:
    """Public addresses drawn deterministically: n4 IPv4 anywhere, n6 IPv6 in V6_BLOCKS."""
    rng = random.Random(seed)
    out: list[str] = []
    while len(out) < n4:
        a4 = ipaddress.IPv4Address(rng.getrandbits(32))
        if non_public(a4) is None:
            out.append(str(a4))
    while len(out) < n4 + n6:
        net = rng.choice(V6_BLOCKS)
        a6 = ipaddress.IPv6Address(int(net.network_address)
                                   + rng.getrandbits(128 - net.prefixlen))
        if non_public(a6) is None:
            out.append(str(a6))
    return out + SPECIAL


def model_fields(record: geoip2.models.Country, centroids: dict[str, Centroid]) -> Fields:
    """What the daemon made of a geoip2 model before it read records itself (the old way)."""
    country = record.country if record.country.iso_code else record.registered_country
    iso = (country.iso_code or "").upper()
    if not iso:
        return "geo_no_country"
    centroid = centroids.get(iso)
    name = country.names.get("en") or (centroid.name if centroid else iso)
    lat = lon = None
    subdivision = city = ""
    if isinstance(record, geoip2.models.City):
        lat, lon = record.location.latitude, record.location.longitude
        subdivision = record.subdivisions.most_specific.names.get("en") or ""
        city = record.city.names.get("en") or ""
    if lat is None or lon is None:
        if centroid is None:
            return "geo_no_centroid"
        lat, lon = centroid.lat, centroid.lon
    if abs(round(lat, 4)) > MAX_LATITUDE or abs(round(lon, 4)) > 180:
        return "geo_out_of_range"
    return (round(lat, 4) + 0.0, round(lon, 4) + 0.0, iso, name, subdivision, city)


def old_city_lookup(reader: geoip2.database.Reader, centroids: dict[str, Centroid],
                    ip: str) -> Fields:
    try:
        record = reader.city(ip)
    except geoip2.errors.AddressNotFoundError:
        return "geo_not_found"
    except (ValueError, maxminddb.InvalidDatabaseError):
        return "geo_db_error"
    return model_fields(record, centroids)


def fields_of(found: Found) -> Fields:
    if isinstance(found, str):
        return found
    assert found == Place.make(found.lat, found.lon, found.iso, found.country,
                               found.subdivision, found.city)  # coord and tail match too
    return (found.lat, found.lon, found.iso, found.country, found.subdivision, found.city)


def test_record_lookup_gives_what_geoip2_city_models_gave() -> None:
    g = Geo(Config())
    centroids = load_centroids()
    ips = sample_ips(20251126, 4000, 2000)
    outcomes: Counter[str] = Counter()
    with geoip2.database.Reader(str(bundled_database()), mode=maxminddb.MODE_AUTO) as old:
        for ip in ips:
            expected = old_city_lookup(old, centroids, ip)
            assert fields_of(g.ip_place(ip)) == expected, ip
            if isinstance(expected, str):
                outcomes[expected] += 1
            else:
                outcomes["placed"] += 1
                outcomes["city"] += expected[5] != ""
                outcomes["subdivision"] += expected[4] != ""
                outcomes["v6"] += ":" in ip
    # The sample reaches every branch the bundled database has.
    assert outcomes["placed"] > 3000 and outcomes["v6"] > 100, outcomes
    assert outcomes["city"] > 500 and outcomes["subdivision"] > 1000, outcomes
    assert outcomes["geo_not_found"] > 100 and outcomes["geo_no_country"] > 10, outcomes
    assert fields_of(g.ip_place("5.145.149.142")) == (38.0, -97.0, "US", "United States", "",
                                                      "")  # no location: the country table


def test_country_database_records_give_what_geoip2_country_models_gave() -> None:
    # No Country database ships; the bundled City records read as a Country database's
    # (with_location False) against geoip2's Country model built from the same records.
    g = Geo(Config())
    g.with_location = False
    centroids = load_centroids()
    with maxminddb.open_database(str(bundled_database()), maxminddb.MODE_AUTO) as raw:
        for ip in sample_ips(7, 1500, 500):
            record = raw.get(ip)
            assert isinstance(record, dict | None)
            expected = ("geo_not_found" if record is None
                        else model_fields(geoip2.models.Country(["en"], **record), centroids))
            assert fields_of(g._ip(ip)) == expected, ip
            assert isinstance(expected, str) or expected[4:] == ("", "")


@pytest.mark.parametrize(("kind", "located"), [
    ("GeoLite2-City", True), ("GeoIP2-City", True), ("GeoIP2-Enterprise", True),
    ("GeoIP2-Precision-Enterprise", True), ("DBIP-City-Lite", True),
    ("GeoLite2-Country", False), ("GeoIP2-Country", False), ("DBIP-Country-Lite", False),
])
def test_city_and_enterprise_records_are_read_with_their_location(kind: str,
                                                                   located: bool) -> None:
    # What geoip2 did: city() or enterprise() (City models) for these kinds, else country().
    class Meta:
        database_type = kind

    class Reader:
        def metadata(self) -> Meta:
            return Meta()

    assert has_location(Reader()) is located  # type: ignore[arg-type]


FR = load_centroids()["FR"]


@pytest.mark.parametrize(("record", "fields"), [
    ([], "geo_db_error"),
    ("FR", "geo_db_error"),
    (None, "geo_db_error"),
    ({}, "geo_no_country"),
    ({"country": "FR"}, "geo_no_country"),
    ({"country": {"iso_code": 250}}, "geo_no_country"),
    ({"country": {"iso_code": ""}, "registered_country": ["FR"]}, "geo_no_country"),
    ({"country": {"iso_code": "QQ"}}, "geo_no_centroid"),
    ({"country": {"iso_code": 250}, "registered_country": {"iso_code": "fr"}},
     (FR.lat, FR.lon, "FR", "France", "", "")),
    ({"country": {"iso_code": "FR", "names": ["France"]}, "location": "Paris",
      "subdivisions": {"names": {"en": "x"}}, "city": 7},
     (FR.lat, FR.lon, "FR", "France", "", "")),
    ({"country": {"iso_code": "FR", "names": {"en": None}},
      "location": {"latitude": "48.85", "longitude": 2.35}, "city": {"names": None}},
     (FR.lat, FR.lon, "FR", "France", "", "")),
    ({"country": {"iso_code": "FR"}, "location": {"latitude": float("nan"), "longitude": 2.0}},
     (FR.lat, FR.lon, "FR", "France", "", "")),
    ({"country": {"iso_code": "FR"}, "location": {"latitude": True, "longitude": 2.0}},
     (FR.lat, FR.lon, "FR", "France", "", "")),
    ({"country": {"iso_code": "FR", "names": {"en": "La France"}},
      "location": {"latitude": 48.85661, "longitude": 2}, "subdivisions": ["junk",
      {"names": {"en": "Île-de-France"}}], "city": {"names": {"en": "Paris", "fr": "Paris"}}},
     (48.8566, 2.0, "FR", "La France", "Île-de-France", "Paris")),
    ({"country": {"iso_code": "FR"}, "location": {"latitude": 48.9, "longitude": 2.3},
      "subdivisions": [{"names": {"en": "Île-de-France"}}, "junk"]},
     (48.9, 2.3, "FR", "France", "", "")),
    ({"country": {"iso_code": "FR"}, "location": {"latitude": 89.0, "longitude": 2.3}},
     "geo_out_of_range"),
])
def test_records_of_odd_shape_are_read_as_missing_parts(record: object, fields: Fields) -> None:
    assert fields_of(place_of(record, True, load_centroids())) == fields


# --- configured databases, reloading --------------------------------------------------


@pytest.fixture
def db_copy(tmp_path: Path) -> Path:
    path = tmp_path / "City.mmdb"
    shutil.copyfile(bundled_database(), path)
    return path


def test_a_missing_database_is_a_configuration_error(tmp_path: Path) -> None:
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text(f"geo:\n  database: {tmp_path / 'nope.mmdb'}\n")
    with pytest.raises(ConfigError, match=r"geo\.database: .*nope\.mmdb does not exist \(leave "
                                          r"geo\.database unset to use the bundled"):
        load_config(cfg_file)
    cfg_file.write_text(f"geo:\n  database: {tmp_path}\n")
    with pytest.raises(ConfigError, match=r"geo\.database: .* is not a file"):
        load_config(cfg_file)


def test_a_file_that_is_no_maxmind_database_is_a_configuration_error(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.mmdb"
    bogus.write_bytes(b"not a database" * 100)
    with pytest.raises(ConfigError, match=r"geo\.database: .*bogus\.mmdb is not a readable "
                                          r"MaxMind database"):
        Geo(Config(geo=GeoConfig(database=str(bogus))))


def test_sighup_reload_reopens_and_a_broken_file_keeps_the_old_database(
        db_copy: Path, caplog: pytest.LogCaptureFixture) -> None:
    g = Geo(Config(geo=GeoConfig(database=str(db_copy))))
    first = g.reader
    g.on_attribute(attr("ip-dst", "8.8.8.8"), ctx())
    db_copy.write_bytes(b"truncated by a failed download")
    with caplog.at_level(logging.ERROR, logger="helpers.geo_helper"):
        g.reload()
    assert "reload failed, keeping the database already open" in caplog.text
    assert g.reader is first
    c = run(g, "ip-dst", "8.8.8.8")
    assert c.batch.zincr[(f"GEO_COUNTRY:{DAY}", "US")] == 1
    shutil.copyfile(bundled_database(), db_copy)
    g.reload()
    assert g.reader is not first
    assert g.ip_place.cache_info().currsize == 0  # type: ignore[attr-defined]
    assert run(g, "ip-dst", "8.8.8.8").batch.zincr[(f"GEO_COUNTRY:{DAY}", "US")] == 1


def test_a_replaced_database_file_is_picked_up_without_a_signal(db_copy: Path) -> None:
    g = Geo(Config(geo=GeoConfig(database=str(db_copy))))
    first = g.reader
    g.on_attribute(attr("ip-dst", "8.8.8.8"), ctx(NOW))
    fresh = db_copy.with_suffix(".new")
    shutil.copyfile(bundled_database(), fresh)
    fresh.replace(db_copy)  # what geoipupdate does
    g.on_attribute(attr("ip-dst", "8.8.8.8"), ctx(NOW + 1))  # too soon to look again
    assert g.reader is first
    g.on_attribute(attr("ip-dst", "8.8.8.8"), ctx(NOW + Geo.CHECK_FILE_SECONDS))
    assert g.reader is not first


def test_readme_and_doc_carry_the_attribution_maxmind_requires() -> None:
    root = Path(__file__).resolve().parent.parent
    text = "This product includes GeoLite2 data created by MaxMind, available from"
    for doc in ("README.md", "doc/geo.md"):
        body = " ".join((root / doc).read_text(encoding="utf-8").split())
        assert f"{text} [https://www.maxmind.com](https://www.maxmind.com)" in body, doc
        assert "CC BY-SA 4.0" in body, doc
