"""Geolocation (semantics §4): IPs and phone numbers to GEO_* keys and the map channel.

An attribute whose type carries an IP address is looked up in a MaxMind City
database (the GeoLite2 release bundled with ``maxminddb-geolite2`` unless
``geo.database`` names another), whose records are read as the plain dicts that
``maxminddb`` decodes; one that carries a phone number is placed at its
country's position from the shipped table ``data/country_centroids.csv``.
Both lookups are cached in bounded LRU caches.  Anything that cannot be placed
is counted with ``ctx.skip("geo_<reason>")``; nothing here raises into the loop.
See doc/geo.md for the decisions behind the details.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import importlib.util
import ipaddress
import json
import logging
import math
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import maxminddb
import phonenumbers

from helpers import keys
from helpers.batch import publish_command
from helpers.config import Config, ConfigError
from helpers.context import Context, Handler
from helpers.observations import AttributeObs, AttributesObs

log = logging.getLogger(__name__)

IP_TYPES = frozenset({"ip-src", "ip-dst", "ip-src|port", "ip-dst|port", "domain|ip"})
PHONE_TYPES = frozenset({"phone-number", "whois-registrant-phone"})
GEO_TYPES = IP_TYPES | PHONE_TYPES
MAX_LATITUDE = 85.05112878  # what GEOADD accepts (Web Mercator)
CENTROIDS_CSV = Path(__file__).resolve().parent / "data" / "country_centroids.csv"
BUNDLED_PACKAGE = "_maxminddb_geolite2"  # installed by the maxminddb-geolite2 requirement
BUNDLED_FILE = "GeoLite2-City.mmdb"
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_enc = json.encoder.encode_basestring  # what json.dumps(ensure_ascii=False) does to a str


@dataclass(frozen=True, slots=True)
class Centroid:
    lat: float
    lon: float
    name: str  # English


@dataclass(frozen=True, slots=True)
class Place:
    """Where an indicator is, with its JSON pieces serialised once (it is cached)."""

    lat: float
    lon: float
    iso: str
    country: str
    subdivision: str
    city: str
    coord: str  # {"lat": …, "lon": …}
    tail: str  # "country": …, "specifName": …, "cityName": …, "regionCode": …

    @classmethod
    def make(cls, lat: float, lon: float, iso: str, country: str, subdivision: str = "",
             city: str = "") -> Place:
        lat, lon = round(lat, 4) + 0.0, round(lon, 4) + 0.0  # + 0.0: -0.0 would be a 2nd member
        coord = f'{{"lat": {lat!r}, "lon": {lon!r}}}'
        tail = (f'"country": {_enc(country)}, "specifName": {_enc(subdivision)}, '
                f'"cityName": {_enc(city)}, "regionCode": {_enc(iso)}')
        return cls(lat, lon, iso, country, subdivision, city, coord, tail)


Found = Place | str  # a place, or the reason (``geo_…``) why there is none


def load_centroids(path: Path = CENTROIDS_CSV) -> dict[str, Centroid]:
    """ISO 3166-1 alpha-2 (and the few extra phone regions) -> position and English name."""
    with path.open(encoding="utf-8", newline="") as f:
        rows = csv.DictReader(line for line in f if not line.startswith("#"))
        return {row["iso"]: Centroid(float(row["lat"]), float(row["lon"]), row["name"])
                for row in rows}


def bundled_database() -> Path:
    """The GeoLite2 City file of the ``maxminddb-geolite2`` package, found without importing it."""
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("geo.database is not set and the maxminddb-geolite2 package is not "
                          "installed: install requirements.txt or set geo.database")
    return Path(next(iter(spec.submodule_search_locations))) / BUNDLED_FILE


def ip_part(atype: str, value: str) -> str:
    """The IP text of an attribute value: after ``|`` for domain|ip, before it for ip|port."""
    if atype == "domain|ip":
        return value.partition("|")[2]
    if atype.endswith("|port"):
        return value.partition("|")[0]
    return value


def parse_ip(text: str) -> Address | None:
    """An address from MISP's text: tolerates spaces, ``[v6]`` and CIDR (the network address)."""
    text = text.strip().removeprefix("[").removesuffix("]")
    addr = _packed(text)
    if addr is None:  # CIDR, a scoped v6 address, or not an address
        try:
            if "/" in text:
                addr = ipaddress.ip_network(text, strict=False).network_address
            else:
                addr = ipaddress.ip_address(text)
        except ValueError:
            return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def _packed(text: str) -> Address | None:
    # inet_pton accepts the same plain forms as ipaddress (no leading zeros, no short
    # forms) and parses them 4 (v4) to 10 (v6) times faster.
    try:
        return ipaddress.IPv4Address(socket.inet_pton(socket.AF_INET, text))
    except (OSError, ValueError):
        pass
    try:
        return ipaddress.IPv6Address(socket.inet_pton(socket.AF_INET6, text))
    except (OSError, ValueError):
        return None


def non_public(addr: Address) -> str | None:
    """The skip reason for an address no database can place, None for a public one."""
    if addr.is_global and not addr.is_multicast:  # the common case, in one range scan
        return None
    if addr.is_unspecified:
        return "geo_unspecified"
    if addr.is_loopback:
        return "geo_loopback"
    if addr.is_link_local:
        return "geo_link_local"
    if addr.is_multicast:
        return "geo_multicast"
    if addr.is_private:
        return "geo_private"
    if addr.is_reserved or not addr.is_global:
        return "geo_reserved"
    return None


def open_database(path: Path) -> maxminddb.Reader:
    """Open a MaxMind City/Country database, the C extension when it is available."""
    try:
        reader = maxminddb.open_database(str(path), maxminddb.MODE_AUTO)
    except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
        raise ConfigError(f"geo.database: {path} is not a readable MaxMind database: {exc}"
                          ) from None
    kind = reader.metadata().database_type
    if not any(k in kind for k in ("City", "Country", "Enterprise")):
        reader.close()
        raise ConfigError(f"geo.database: {path} is a {kind} database; a City (or Country) "
                          "database is needed")
    return reader


def has_location(reader: maxminddb.Reader) -> bool:
    """Whether the reader's records are read as City records (location, subdivisions, city).

    City and Enterprise databases are; a Country database's records are read for their
    country only (as geoip2's ``country()`` model would), whatever else they carry.
    """
    kind = reader.metadata().database_type
    return "City" in kind or "Enterprise" in kind


def _iso_of(part: object) -> str:
    """The ``iso_code`` of a record's country part, "" when it has none."""
    if isinstance(part, dict):
        iso = part.get("iso_code")
        if isinstance(iso, str):
            return iso
    return ""


def _en_of(part: object) -> str:
    """The English name of a record part (``{"names": {"en": …}}``), "" when it has none."""
    if isinstance(part, dict):
        names = part.get("names")
        if isinstance(names, dict):
            name = names.get("en")
            if isinstance(name, str):
                return name
    return ""


def _degrees(value: object) -> float | None:
    """A latitude or longitude of a record's location, None when missing or not a number."""
    if isinstance(value, float | int) and not isinstance(value, bool) and math.isfinite(value):
        return value
    return None


def place_of(record: object, with_location: bool, centroids: dict[str, Centroid]) -> Found:
    """A database record (``maxminddb``'s decoded dict) as a place, or why it is none.

    Reads what geoip2's models would expose, without building them: any part may be
    missing or of an unexpected type in a record, and is then treated as missing.
    """
    if not isinstance(record, dict):  # geoip2 refused such a record (InvalidDatabaseError)
        return "geo_db_error"
    country = record.get("country")
    iso = _iso_of(country)
    if not iso:  # satellite providers and some anycast ranges carry only registered_country
        country = record.get("registered_country")
        iso = _iso_of(country)
        if not iso:
            return "geo_no_country"
    iso = iso.upper()
    centroid = centroids.get(iso)
    name = _en_of(country) or (centroid.name if centroid else iso)
    lat = lon = None
    subdivision = city = ""
    if with_location:
        # The record's own location (a city's, or MaxMind's point for a country-level record).
        location = record.get("location")
        if isinstance(location, dict):
            lat, lon = _degrees(location.get("latitude")), _degrees(location.get("longitude"))
        subdivisions = record.get("subdivisions")
        if isinstance(subdivisions, list | tuple) and subdivisions:
            subdivision = _en_of(subdivisions[-1])  # the most specific one comes last
        city = _en_of(record.get("city"))
    if lat is None or lon is None:
        if centroid is None:
            return "geo_no_centroid"
        lat, lon = centroid.lat, centroid.lon
    return placed(lat, lon, iso, name, subdivision, city)


def placed(lat: float, lon: float, iso: str, country: str, subdivision: str = "",
           city: str = "") -> Found:
    """A :class:`Place`, or ``geo_out_of_range`` where GEOADD would refuse the position."""
    if abs(round(lat, 4)) > MAX_LATITUDE or abs(round(lon, 4)) > 180:
        return "geo_out_of_range"
    return Place.make(lat, lon, iso, country, subdivision, city)


def file_stamp(path: Path) -> tuple[int, int, int] | None:
    """What changes when a database file is replaced (geoipupdate renames a new file in)."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_ino, st.st_size)


class Geo:
    """The geolocation feature: one handler, two caches, one open database."""

    CHECK_FILE_SECONDS = 60.0  # how often (in message time) to look for a replaced database

    def __init__(self, cfg: Config) -> None:
        self.handlers: dict[type, Handler] = {AttributeObs: self.on_attribute,
                                              AttributesObs: self.on_attributes}
        self.procs: dict[str, str] = {}
        self.channel = cfg.channels.map
        self.cache_size = cfg.geo.cache_size
        self.configured = cfg.resolve(cfg.geo.database) if cfg.geo.database else None
        self.path = self.configured or bundled_database()
        self.centroids = load_centroids()
        self.reader = open_database(self.path)
        self.lookup = self.reader.get  # a record dict, or None for an address not in the file
        self.with_location = has_location(self.reader)
        self.stamp = file_stamp(self.path)
        self.next_check = 0.0
        self._day = ""
        self._keys = ("", "", "")
        self._texts: dict[tuple[str, str, str, str], tuple[str, bytes]] = {}  # see emit
        self._new_caches()
        self._announce()

    def _new_caches(self) -> None:
        # Keyed by the address text and the number as sent: parsing is what the cache saves.
        self.ip_place: Callable[[str], Found] = functools.lru_cache(self.cache_size)(self._ip)
        self.phone_place: Callable[[str], Found] = functools.lru_cache(self.cache_size)(self._phone)

    def _announce(self) -> None:
        meta = self.reader.metadata()
        built = dt.datetime.fromtimestamp(meta.build_epoch, dt.UTC).date().isoformat()
        log.info("geo: using the %s database %s, built %s", meta.database_type, self.path, built)
        if self.configured is None:
            log.info("geo: this is the GeoLite2 release bundled with maxminddb-geolite2 (GeoLite2 "
                     "data created by MaxMind, CC BY-SA 4.0); a current GeoLite2 or GeoIP2 City "
                     "database (geo.database) gives better positions")

    # --- the handler ------------------------------------------------------------------

    def on_attributes(self, group: AttributesObs, ctx: Context) -> None:
        """The attributes of an event: only those of a geo type get further than a test."""
        failure: Exception | None = None
        for obs in group.items:
            if obs.type in GEO_TYPES:
                try:
                    self.on_attribute(obs, ctx)
                except Exception as exc:  # one bad attribute spoils its own effects only
                    failure = failure or exc
        if failure is not None:
            raise failure

    def on_attribute(self, obs: AttributeObs, ctx: Context) -> None:
        """Place an IP or phone attribute and emit the GEO_* writes and the map message."""
        atype = obs.type
        if atype not in GEO_TYPES:  # nearly every attribute: leave at once
            return
        if ctx.now >= self.next_check:
            self._check_file(ctx.now)
        value = obs.value
        if not value:
            ctx.skip("geo_no_value")
            return
        if atype in PHONE_TYPES:
            found = self.phone_place(value)
        else:
            found = self.ip_place(ip_part(atype, value))
        if isinstance(found, str):
            ctx.skip(found)
            return
        self.emit(found, obs.category, value, ctx)

    def emit(self, place: Place, categ: str, value: str, ctx: Context) -> None:
        """The four effects of semantics §4, members serialised like json.dumps would."""
        batch = ctx.batch
        if ctx.day != self._day:  # the three key names, built once a day
            self._day = ctx.day
            self._keys = (keys.geo_coord(ctx.day), keys.geo_country(ctx.day),
                          keys.geo_rad(ctx.day))
        coord_key, country_key, rad_key = self._keys
        # Indicators recur (that is why lookups are cached): so do their two texts.
        key = (place.coord, place.tail, categ, value)  # what the two texts are made of
        texts = self._texts.get(key)
        if texts is None:
            if len(self._texts) >= self.cache_size:
                self._texts.clear()
            item = f'"categ": {_enc(categ)}, "value": {_enc(value)}'
            texts = self._texts[key] = (f"{{{item}}}", publish_command(
                self.channel, f'{{"coord": {place.coord}, {item}, {place.tail}}}'))
        batch.zincrby(coord_key, place.coord)
        batch.zincrby(country_key, place.iso)
        batch.geoadd(rad_key, place.lon, place.lat, texts[0])
        batch.publish_resp(texts[1])

    # --- lookups (cached) ---------------------------------------------------------------

    def _ip(self, text: str) -> Found:
        addr = parse_ip(text)
        if addr is None:
            return "geo_bad_ip"
        reason = non_public(addr)
        if reason is not None:
            return reason
        try:
            record = self.lookup(addr)  # the object: faster than its text (maxminddb >= 1.5)
        except (ValueError, maxminddb.InvalidDatabaseError):  # v6 in a v4 file, a corrupt node
            return "geo_db_error"
        if record is None:
            return "geo_not_found"
        return place_of(record, self.with_location, self.centroids)

    def _phone(self, text: str) -> Found:
        try:
            number = phonenumbers.parse(text, None)
        except phonenumbers.NumberParseException:
            return "geo_bad_phone"
        # "possible" (a length check) first: it is far cheaper than "valid" (pattern matching).
        if not (phonenumbers.is_possible_number(number) or phonenumbers.is_valid_number(number)):
            return "geo_bad_phone"
        region = phonenumbers.region_code_for_number(number)
        if region is None or region in ("ZZ", "001"):  # unknown, or non-geographic (+800, +882)
            return "geo_phone_no_region"
        centroid = self.centroids.get(region)
        if centroid is None:
            return "geo_no_centroid"
        return placed(centroid.lat, centroid.lon, region, centroid.name)

    # --- reloading ----------------------------------------------------------------------

    def _check_file(self, now: float) -> None:
        self.next_check = now + self.CHECK_FILE_SECONDS
        stamp = file_stamp(self.path)
        if stamp is not None and stamp != self.stamp:
            log.info("geo: %s changed on disk; reloading it", self.path)
            self.reload()

    def reload(self) -> None:
        """Reopen the GeoIP database (SIGHUP, or the file was replaced) and empty the caches.

        A database that cannot be opened is logged and the one already open is kept.
        """
        stamp = file_stamp(self.path)
        try:
            reader = open_database(self.path)
        except ConfigError as exc:
            self.stamp = stamp  # do not retry the same broken file every minute
            log.error("geo: reload failed, keeping the database already open: %s", exc)
            return
        old, self.reader, self.stamp = self.reader, reader, stamp
        self.lookup, self.with_location = reader.get, has_location(reader)
        self._new_caches()
        old.close()
        self._announce()
