"""City indicators (시정현황): the shipped example, the city's own CSV or YAML file, and clear errors for bad files."""

from __future__ import annotations

import pytest

from citywall.city.indicators import IndicatorError, load_indicators

HEADER = "theme_ko,theme_en,code,name_ko,name_en,unit,target,actual,period,better,trend"
ROW = "숨쉬는,Breathing,pm25,초미세먼지,PM2.5,µg/m³,15,20,2025,lower,25;22;20"
ROW2 = "열린,Open,open-data,공공데이터,Open data,datasets,100,80,2025,higher,60;70;80"

YAML = """\
indicators:
  - {theme_ko: 숨쉬는, theme_en: Breathing, code: pm25, name_ko: 초미세먼지, name_en: PM2.5, unit: µg/m³,
     target: 15, actual: 20, period: "2025", better: lower, trend: [25, 22, 20]}
  - {theme_ko: 열린, theme_en: Open, code: open-data, name_ko: 공공데이터, name_en: Open data, unit: datasets,
     target: 100, actual: 80, period: "2025", better: higher, trend: "60;70;80"}
"""


def write(tmp_path, name: str, text: str, encoding: str = "utf-8") -> str:
    p = tmp_path / name
    p.write_text(text, encoding=encoding)
    return str(p)


def csv_with(tmp_path, *rows: str, header: str = HEADER) -> str:
    return write(tmp_path, "indicators.csv", "\n".join([header, *rows]) + "\n")


def load_error(path: str) -> str:
    with pytest.raises(IndicatorError) as e:
        load_indicators(path)
    return str(e.value)


# -- loading -----------------------------------------------------------------------------------

def test_shipped_example():
    """Without a configured file the wall shows the shipped example, flagged as such."""
    ind = load_indicators(None)
    assert ind.example is True and "shipped example" in ind.source
    assert len(ind.items) == 12
    assert len({i.code for i in ind.items}) == 12
    by_code = {i.code: i for i in ind.items}
    pm, park = by_code["air-pm25-annual"], by_code["green-space"]
    assert (pm.better, pm.target, pm.actual) == ("lower", 15, 19)
    assert pm.progress == pytest.approx(15 / 19)  # lower is better: target / actual
    assert (park.better, park.progress) == ("higher", pytest.approx(5.7 / 6))  # actual / target
    # every trend ends with the actual value
    assert all(i.trend and i.trend[-1] == i.actual for i in ind.items)
    d = ind.as_dict()
    assert d["example"] is True and len(d["indicators"]) == 12
    assert d["indicators"][0]["progress"] == round(15 / 19, 4)


def test_csv_file(tmp_path):
    ind = load_indicators(csv_with(tmp_path, ROW, ROW2))
    assert ind.example is False
    pm, od = ind.items
    assert (pm.code, pm.target, pm.actual, pm.better, pm.trend) == ("pm25", 15.0, 20.0, "lower", [25.0, 22.0, 20.0])
    assert pm.progress == pytest.approx(0.75)
    assert (od.code, od.progress, od.period) == ("open-data", pytest.approx(0.8), "2025")


def test_csv_from_a_spreadsheet_with_bom(tmp_path):
    """Spreadsheets often save UTF-8 with a BOM; the first column must still be recognised."""
    path = write(tmp_path, "indicators.csv", f"{HEADER}\n{ROW}\n", encoding="utf-8-sig")
    assert load_indicators(path).items[0].theme_ko == "숨쉬는"


def test_csv_example_column(tmp_path):
    assert load_indicators(csv_with(tmp_path, "false," + ROW, header="example," + HEADER)).example is False
    assert load_indicators(csv_with(tmp_path, "true," + ROW, header="example," + HEADER)).example is True


def test_yaml_file(tmp_path):
    ind = load_indicators(write(tmp_path, "indicators.yaml", YAML))
    assert ind.example is False
    assert [i.code for i in ind.items] == ["pm25", "open-data"]
    assert [i.trend for i in ind.items] == [[25, 22, 20], [60, 70, 80]]  # a list or 'a;b;c'
    assert ind.items[0].progress == pytest.approx(0.75)


def test_yaml_can_say_it_is_an_example(tmp_path):
    assert load_indicators(write(tmp_path, "indicators.yml", "example: true\n" + YAML)).example is True


def test_empty_trend_is_allowed(tmp_path):
    ind = load_indicators(csv_with(tmp_path, ROW.rsplit(",", 1)[0] + ","))
    assert ind.items[0].trend == []


# -- errors name the problem -------------------------------------------------------------------

def test_missing_value(tmp_path):
    row = ROW.replace(",µg/m³,", ",,")  # empty unit
    msg = load_error(csv_with(tmp_path, ROW2, row))
    assert "row 2" in msg and "missing unit" in msg


def test_non_numeric_target(tmp_path):
    msg = load_error(csv_with(tmp_path, ROW.replace(",15,20,", ",fifteen,20,")))
    assert "target must be a number" in msg and "fifteen" in msg


def test_bad_better(tmp_path):
    msg = load_error(csv_with(tmp_path, ROW.replace(",lower,", ",smaller,")))
    assert "better must be 'higher' or 'lower'" in msg and "smaller" in msg


def test_bad_trend(tmp_path):
    msg = load_error(csv_with(tmp_path, ROW.replace("25;22;20", "25;n/a;20")))
    assert "trend must be numbers" in msg


def test_duplicate_codes(tmp_path):
    msg = load_error(csv_with(tmp_path, ROW, ROW2, ROW.replace("25;22;20", "21")))
    assert "duplicate codes" in msg and "pm25" in msg


def test_unknown_csv_column(tmp_path):
    msg = load_error(csv_with(tmp_path, ROW + ",x", header=HEADER + ",owner"))
    assert "unknown columns" in msg and "owner" in msg


def test_yaml_without_an_indicators_list(tmp_path):
    msg = load_error(write(tmp_path, "indicators.yaml", "example: true\n"))
    assert "'indicators' list" in msg


@pytest.mark.parametrize("trend", ["42", "[25, null, 20]"])
def test_yaml_bad_trend(tmp_path, trend):
    """A hand-edited YAML trend that is one number or has a blank entry is an IndicatorError naming the
    trend, not a TypeError traceback at start."""
    text = YAML.replace("trend: [25, 22, 20]", f"trend: {trend}")
    assert "trend must be numbers" in load_error(write(tmp_path, "indicators.yaml", text))


def test_yaml_entry_not_a_mapping(tmp_path):
    """`indicators: [pm25]` (a bare code instead of a mapping) is an IndicatorError naming the row."""
    assert "row 1" in load_error(write(tmp_path, "indicators.yaml", "indicators: [pm25]\n"))
