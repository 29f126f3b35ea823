"""The facilities registry: the shipped example (honest and complete), nearest-first queries, the
responsible fire station, and errors that name the file, line and column to fix."""

from __future__ import annotations

import pytest

from citywall.city.data import make_facilities_example  # type: ignore[attr-defined]
from citywall.city.facilities import FacilityError, haversine_m, load_facilities, parse_facilities
from citywall.city.loader import load_city

CITY_HALL = (126.9780, 37.5665)
HEADER = "id,kind,name,name_en,lon,lat,gu,address,url,example"
STATIONS = ["종로소방서", "중부소방서", "용산소방서", "성동소방서", "광진소방서", "동대문소방서", "중랑소방서", "성북소방서",
            "강북소방서", "도봉소방서", "노원소방서", "은평소방서", "서대문소방서", "마포소방서", "양천소방서", "강서소방서",
            "구로소방서", "금천소방서", "영등포소방서", "동작소방서", "관악소방서", "서초소방서", "강남소방서", "송파소방서",
            "강동소방서"]


@pytest.fixture(scope="module")
def city():
    return load_city("seoul")


@pytest.fixture(scope="module")
def example(city):
    return load_facilities(None, city)


def write(tmp_path, *lines: str, name: str = "facilities.csv") -> str:
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(p)


def error(path: str, city) -> str:
    with pytest.raises(FacilityError) as e:
        load_facilities(path, city)
    return str(e.value)


# -- the shipped example ---------------------------------------------------------------------------

def test_example_has_one_real_named_fire_station_inside_each_gu(example, city) -> None:
    stations = example.of_kind("fire_station")
    assert sorted(s["name"] for s in stations) == sorted(STATIONS)
    assert sorted(s["gu"] for s in stations) == sorted(city.districts)
    for s in stations:
        assert city.locate(s["lon"], s["lat"])[0] == s["gu"], s["name"]
    jung = next(s for s in stations if s["gu"] == "11140")
    assert jung["name"] == "중부소방서"


def test_example_is_marked_and_has_the_expected_counts(example, city) -> None:
    counts = example.counts()
    assert counts["fire_station"] == 25
    assert 1150 <= counts["cctv"] <= 1250
    assert 24 <= counts["hospital"] <= 60
    assert counts["shelter"] >= 25
    assert example.is_example and all(f["example"] for f in example)
    # Every camera lies in a dong of the city, and every dong has at least one.
    cams = example.of_kind("cctv")
    assert all(c["dong"] is not None for c in cams)
    assert {c["dong"] for c in cams} == set(city.dongs)
    assert all(not h["name"].startswith(("서울", "삼성", "세브란스")) for h in example.of_kind("hospital"))
    assert example.source.endswith("(shipped example)")


def test_example_file_is_what_the_script_makes(city) -> None:
    from importlib import resources

    shipped = resources.files("citywall.city").joinpath("data", "facilities.example.csv").read_text(encoding="utf-8")
    assert make_facilities_example.render(city) == shipped


# -- queries ---------------------------------------------------------------------------------------

def test_near_is_sorted_within_radius_and_filters_kinds(example) -> None:
    found = example.near(*CITY_HALL, 1000)
    assert found and all(f["distance_m"] <= 1000 for f in found)
    d = [f["distance_m"] for f in found]
    assert d == sorted(d)
    every = {f["id"]: haversine_m(*CITY_HALL, f["lon"], f["lat"]) for f in example}  # type: ignore[arg-type]
    assert {f["id"] for f in found} == {i for i, m in every.items() if m <= 1000}
    cams = example.near(*CITY_HALL, 2000, kinds=["cctv"], limit=5)
    assert len(cams) == 5 and all(c["kind"] == "cctv" for c in cams)
    assert [c["id"] for c in cams] == [f["id"] for f in example.near(*CITY_HALL, 2000, kinds="cctv")][:5]
    assert example.near(*CITY_HALL, 0.001) == []


def test_near_distance_is_geodesic(city) -> None:
    # 0.01 degrees of latitude is ~1,110 m anywhere.
    f = parse_facilities(f"{HEADER}\na,cctv,A,,126.978,37.5665,,,,false\nb,cctv,B,,126.978,37.5765,,,,false\n", "t.csv", city)
    far = f.near(*CITY_HALL, 5000)
    assert [x["id"] for x in far] == ["a", "b"]
    assert far[1]["distance_m"] == pytest.approx(1112, abs=3)


def test_fire_station_for_prefers_the_gus_own_then_the_nearest(example, city) -> None:
    assert example.fire_station_for("11110")["name"] == "종로소방서"
    assert example.fire_station_for("11680")["name"] == "강남소방서"
    only_one = parse_facilities(f"{HEADER}\nfs,fire_station,중부소방서,,126.9957,37.5601,11140,,,false\n", "t.csv", city)
    assert only_one.fire_station_for("11680")["id"] == "fs"  # none in 강남구: the nearest
    cams = parse_facilities(f"{HEADER}\nc,cctv,C,,126.9957,37.5601,,,,false\n", "t.csv", city)
    assert cams.fire_station_for("11140") is None
    with pytest.raises(FacilityError, match="unknown gu code"):
        example.fire_station_for("99999")


def test_geojson_and_lookup(example) -> None:
    gj = example.as_geojson("hospital")
    assert gj["type"] == "FeatureCollection" and gj["example"] is True
    assert len(gj["features"]) == example.counts()["hospital"]
    feat = gj["features"][0]
    assert feat["geometry"]["type"] == "Point" and len(feat["geometry"]["coordinates"]) == 2
    assert feat["properties"]["kind"] == "hospital" and "lon" not in feat["properties"]
    assert len(example.as_geojson()["features"]) == len(example)
    assert example.get(feat["id"])["name"] == feat["properties"]["name"]


# -- a city's own file ------------------------------------------------------------------------------

def test_own_file_with_comments_extra_kinds_columns_and_gu_resolution(tmp_path, city) -> None:
    path = write(tmp_path, "# our registry", f"{HEADER},phone",
                 "P1,police_box,광화문 파출소,,126.9769,37.5720,,,,false,02-000-0000",
                 "C1,cctv,시청앞,City Hall,126.9780,37.5665,11140,세종대로 110,rtsp://cams.example/1,no,")
    f = load_facilities(path, city)
    assert f.counts() == {"police_box": 1, "cctv": 1}
    assert not f.is_example
    p1 = f.get("P1")
    assert p1["gu"] == "11110" and p1["dong"] is not None and p1["properties"] == {"phone": "02-000-0000"}
    assert f.get("C1")["url"] == "rtsp://cams.example/1" and f.get("C1")["address"] == "세종대로 110"


def test_another_city_without_a_file_gets_an_empty_registry(city) -> None:
    from dataclasses import replace

    other = replace(city, id="busan")
    empty = load_facilities(None, other)
    assert len(empty) == 0 and not empty.is_example and "none configured" in empty.source


def test_empty_files_are_allowed(tmp_path, city) -> None:
    assert len(load_facilities(write(tmp_path, "", name="empty.csv"), city)) == 0
    only_header = load_facilities(write(tmp_path, HEADER, name="header.csv"), city)
    assert len(only_header) == 0 and not only_header.is_example and only_header.near(*CITY_HALL, 1e6) == []


@pytest.mark.parametrize(("row", "line_col", "says"), [
    ("a,cctv,A,,abc,37.5,,,,false", "line 3, column 5 (lon)", "must be a number"),
    ("a,cctv,A,,126.97,,,,,false", "line 3, column 6 (lat)", "lat is required"),
    ("a,cctv,A,,129.0,37.5,,,,false", "line 3, column 5 (lon)", "outside Seoul's bounds"),
    ("a,cctv,A,,37.5,126.97,,,,false", "line 3, column 5 (lon)", "swapped"),
    ("a,cctv,A,,126.97,35.1,,,,false", "line 3, column 6 (lat)", "outside Seoul's bounds"),
    ("a,cctv,A,,126.97,37.57,99999,,,false", "line 3, column 7 (gu)", "unknown gu code '99999'"),
    ("a,cctv,A,,126.97,37.57,종로구,,,false", "line 3, column 7 (gu)", "use the code 11110"),
    ("a,Fire Station,A,,126.97,37.57,,,,false", "line 3, column 2 (kind)", "lower_snake"),
    ("a,cctv,A,,126.97,37.57,,,,maybe", "line 3, column 10 (example)", "true or false"),
    ("a,cctv,A,,126.97,37.57,,,not a url,false", "line 3, column 9 (url)", "absolute URL"),
    (",cctv,A,,126.97,37.57,,,,false", "line 3, column 1 (id)", "id is required"),
    ("a,cctv,A,,126.97,37.57,,,,false,extra", "line 3", "11 values for 10 columns"),
])
def test_each_bad_value_names_file_line_and_column(tmp_path, city, row: str, line_col: str, says: str) -> None:
    path = write(tmp_path, "# comment line", HEADER, row)
    message = error(path, city)
    assert message.startswith(f"{path} {line_col}"), message
    assert says in message


def test_duplicate_id_names_both_lines(tmp_path, city) -> None:
    path = write(tmp_path, HEADER, "a,cctv,A,,126.97,37.57,,,,false", "", "a,cctv,B,,126.98,37.57,,,,false")
    message = error(path, city)
    assert message.startswith(f"{path} line 4, column 1 (id)") and "duplicate id 'a'" in message and "first on line 2" in message


def test_header_problems(tmp_path, city) -> None:
    message = error(write(tmp_path, "id,kind,name,lng,lat", "a,cctv,A,126.97,37.57"), city)
    assert "line 1" in message and "lacks column(s) lon" in message
    message = error(write(tmp_path, "id,kind,name,lon,lat,lat", "a,cctv,A,126.97,37.57,37.57", name="dup.csv"), city)
    assert "appear more than once" in message


def test_unreadable_files(tmp_path, city) -> None:
    assert "cannot read facilities file" in error(str(tmp_path / "missing.csv"), city)
    p = tmp_path / "latin1.csv"
    p.write_bytes((HEADER + "\na,cctv,Caf\xe9,,126.97,37.57,,,,false\n").encode("latin-1"))
    assert "not UTF-8" in error(str(p), city)
