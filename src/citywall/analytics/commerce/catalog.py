"""The business types (서비스 업종) and their behaviour profiles, shared by both generators.

Codes and Korean names follow Seoul's service-category list as used in its 상권분석서비스 files
(외식업 CS1xxxxx, 서비스업 CS2xxxxx, 소매업 CS3xxxxx); 60 of them, the everyday kinds a would-be
shop owner asks about. The numbers beside each (how common, stores per district, quarterly sales
per store, average ticket, franchise share, female share, profile) are the generator's
assumptions, chosen to be of Seoul's order of magnitude — they are not published figures, which is
why everything generated from them is marked simulated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BusinessType:
    code: str
    name_ko: str
    name_en: str
    profile: str          # key of PROFILES: when in the day and week, and who, spends
    presence: float       # chance that an alley district (A) has at least one such store
    stores: float         # typical store count in an alley district that has the type
    sales_m: float        # quarterly sales per store, million KRW
    ticket: int           # average payment, KRW
    franchise: float      # share of franchise stores
    female: float         # share of sales paid by women

    @property
    def category(self) -> str:
        return {"1": "외식업", "2": "서비스업", "3": "소매업"}[self.code[2]]

    @property
    def category_en(self) -> str:
        return {"1": "food service", "2": "services", "3": "retail"}[self.code[2]]


def _t(code: str, ko: str, en: str, profile: str, presence: float, stores: float, sales_m: float,
       ticket: int, franchise: float, female: float) -> BusinessType:
    return BusinessType(code, ko, en, profile, presence, stores, sales_m, ticket, franchise, female)


BUSINESS_TYPES: tuple[BusinessType, ...] = (
    # 외식업 food service
    _t("CS100001", "한식음식점", "Korean restaurant", "meal", 0.99, 14, 95, 21000, 0.08, 0.42),
    _t("CS100002", "중식음식점", "Chinese restaurant", "meal", 0.85, 3, 80, 18000, 0.05, 0.38),
    _t("CS100003", "일식음식점", "Japanese restaurant", "meal", 0.75, 3, 110, 26000, 0.06, 0.47),
    _t("CS100004", "양식음식점", "Western restaurant", "meal", 0.65, 3, 105, 28000, 0.10, 0.58),
    _t("CS100005", "제과점", "bakery", "cafe", 0.75, 2, 85, 9000, 0.45, 0.60),
    _t("CS100006", "패스트푸드점", "fast food", "meal", 0.70, 2, 120, 11000, 0.65, 0.48),
    _t("CS100007", "치킨전문점", "fried chicken", "bar", 0.90, 4, 70, 24000, 0.55, 0.45),
    _t("CS100008", "분식전문점", "snack bar (bunsik)", "meal", 0.90, 4, 55, 9000, 0.25, 0.55),
    _t("CS100009", "호프-간이주점", "pub", "bar", 0.88, 5, 60, 38000, 0.12, 0.35),
    _t("CS100010", "커피-음료", "coffee and drinks", "cafe", 0.97, 8, 48, 7000, 0.35, 0.62),
    # 서비스업 services
    _t("CS200001", "일반교습학원", "tutoring academy", "academy", 0.85, 5, 75, 280000, 0.10, 0.66),
    _t("CS200002", "외국어학원", "language academy", "academy", 0.60, 2, 90, 300000, 0.20, 0.62),
    _t("CS200003", "예술학원", "arts academy", "academy", 0.70, 3, 40, 160000, 0.05, 0.70),
    _t("CS200005", "스포츠 강습", "sports lessons", "academy", 0.55, 2, 45, 150000, 0.08, 0.55),
    _t("CS200006", "일반의원", "general clinic", "clinic", 0.85, 4, 260, 32000, 0.00, 0.58),
    _t("CS200007", "치과의원", "dental clinic", "clinic", 0.75, 3, 230, 95000, 0.03, 0.56),
    _t("CS200008", "한의원", "Korean medicine clinic", "clinic", 0.70, 2, 150, 45000, 0.02, 0.62),
    _t("CS200009", "동물병원", "veterinary clinic", "clinic", 0.45, 1, 110, 70000, 0.05, 0.66),
    _t("CS200016", "당구장", "billiard hall", "night", 0.50, 1, 25, 15000, 0.05, 0.12),
    _t("CS200017", "골프연습장", "golf range", "day", 0.40, 1, 120, 60000, 0.15, 0.35),
    _t("CS200019", "PC방", "PC room", "night", 0.70, 2, 55, 6000, 0.10, 0.18),
    _t("CS200024", "스포츠클럽", "fitness club", "day", 0.65, 2, 70, 90000, 0.15, 0.52),
    _t("CS200025", "자동차수리", "car repair", "day", 0.45, 2, 80, 120000, 0.08, 0.20),
    _t("CS200026", "자동차미용", "car care", "day", 0.30, 1, 45, 40000, 0.10, 0.22),
    _t("CS200028", "미용실", "hair salon", "day", 0.97, 8, 38, 35000, 0.12, 0.72),
    _t("CS200029", "네일숍", "nail salon", "day", 0.60, 2, 30, 45000, 0.06, 0.92),
    _t("CS200030", "피부관리실", "skin care", "day", 0.60, 2, 35, 80000, 0.10, 0.88),
    _t("CS200031", "세탁소", "laundry", "day", 0.85, 3, 18, 14000, 0.05, 0.60),
    _t("CS200032", "가전제품수리", "appliance repair", "day", 0.25, 1, 20, 50000, 0.02, 0.40),
    _t("CS200033", "부동산중개업", "real estate agency", "day", 0.95, 7, 30, 450000, 0.02, 0.45),
    _t("CS200034", "여관", "inn (yeogwan)", "night", 0.30, 2, 60, 55000, 0.03, 0.35),
    _t("CS200036", "고시원", "goshiwon (study room)", "day", 0.35, 2, 28, 400000, 0.02, 0.40),
    _t("CS200037", "노래방", "karaoke room", "night", 0.65, 2, 30, 30000, 0.05, 0.38),
    _t("CS200038", "독서실", "reading room", "academy", 0.40, 1, 22, 120000, 0.20, 0.55),
    _t("CS200041", "사진관", "photo studio", "day", 0.35, 1, 25, 40000, 0.10, 0.60),
    _t("CS200044", "여행사", "travel agency", "day", 0.25, 1, 70, 600000, 0.10, 0.55),
    # 소매업 retail
    _t("CS300001", "슈퍼마켓", "supermarket", "market", 0.90, 3, 230, 23000, 0.20, 0.60),
    _t("CS300002", "편의점", "convenience store", "conv", 0.99, 6, 160, 7500, 0.92, 0.45),
    _t("CS300003", "컴퓨터및주변장치판매", "computers and peripherals", "day", 0.30, 1, 90, 180000, 0.05, 0.25),
    _t("CS300004", "핸드폰", "mobile phones", "day", 0.75, 2, 110, 250000, 0.35, 0.42),
    _t("CS300006", "미곡판매", "rice", "market", 0.25, 1, 60, 45000, 0.02, 0.58),
    _t("CS300007", "육류판매", "butcher", "market", 0.60, 2, 110, 38000, 0.10, 0.62),
    _t("CS300008", "수산물판매", "fishmonger", "market", 0.45, 2, 85, 33000, 0.03, 0.62),
    _t("CS300009", "청과상", "greengrocer", "market", 0.65, 2, 70, 21000, 0.03, 0.66),
    _t("CS300010", "반찬가게", "side-dish shop", "market", 0.65, 2, 45, 19000, 0.12, 0.74),
    _t("CS300011", "일반의류", "clothing", "day", 0.80, 4, 65, 62000, 0.18, 0.70),
    _t("CS300014", "신발", "shoes", "day", 0.40, 1, 60, 75000, 0.35, 0.55),
    _t("CS300015", "가방", "bags", "day", 0.25, 1, 55, 85000, 0.15, 0.72),
    _t("CS300016", "안경", "opticians", "day", 0.70, 2, 70, 110000, 0.35, 0.55),
    _t("CS300017", "시계및귀금속", "watches and jewellery", "day", 0.40, 1, 90, 260000, 0.10, 0.62),
    _t("CS300018", "의약품", "pharmacy", "clinic", 0.95, 3, 190, 17000, 0.06, 0.62),
    _t("CS300020", "서적", "bookshop", "day", 0.35, 1, 40, 24000, 0.10, 0.55),
    _t("CS300021", "문구", "stationery", "day", 0.55, 1, 28, 9000, 0.15, 0.55),
    _t("CS300022", "화장품", "cosmetics", "day", 0.70, 2, 80, 35000, 0.60, 0.82),
    _t("CS300024", "운동/경기용품", "sporting goods", "day", 0.35, 1, 55, 70000, 0.25, 0.40),
    _t("CS300026", "완구", "toys", "day", 0.20, 1, 35, 30000, 0.20, 0.62),
    _t("CS300028", "화초", "florist", "day", 0.55, 1, 25, 35000, 0.05, 0.68),
    _t("CS300029", "애완동물", "pet supplies", "day", 0.40, 1, 35, 40000, 0.15, 0.70),
    _t("CS300031", "가구", "furniture", "day", 0.30, 1, 85, 420000, 0.12, 0.58),
    _t("CS300036", "가전제품", "home appliances", "day", 0.35, 1, 130, 380000, 0.40, 0.45),
)

# Shares of a type's sales by time band (00-06, 06-11, 11-14, 14-17, 17-21, 21-24), by weekday
# (Mon..Sun, relative weights) and by age band (10s..60+): the rhythm of a kind of business.
PROFILES: dict[str, dict[str, tuple[float, ...]]] = {
    "meal": {"time": (0.01, 0.05, 0.38, 0.12, 0.34, 0.10), "days": (1.0, 1.0, 1.0, 1.05, 1.15, 1.0, 0.8),
             "ages": (0.03, 0.20, 0.25, 0.22, 0.18, 0.12)},
    "bar": {"time": (0.14, 0.0, 0.02, 0.03, 0.35, 0.46), "days": (0.7, 0.8, 0.9, 1.0, 1.5, 1.3, 0.6),
            "ages": (0.02, 0.30, 0.28, 0.20, 0.13, 0.07)},
    "cafe": {"time": (0.01, 0.15, 0.28, 0.28, 0.20, 0.08), "days": (1.0, 1.0, 1.0, 1.0, 1.05, 1.2, 1.1),
             "ages": (0.06, 0.32, 0.26, 0.17, 0.11, 0.08)},
    "day": {"time": (0.0, 0.10, 0.25, 0.32, 0.28, 0.05), "days": (1.0, 1.0, 1.0, 1.0, 1.05, 1.1, 0.7),
            "ages": (0.03, 0.15, 0.22, 0.24, 0.20, 0.16)},
    "night": {"time": (0.16, 0.04, 0.08, 0.18, 0.26, 0.28), "days": (0.9, 0.9, 0.9, 1.0, 1.2, 1.3, 1.1),
              "ages": (0.22, 0.34, 0.20, 0.12, 0.07, 0.05)},
    "conv": {"time": (0.09, 0.17, 0.19, 0.16, 0.22, 0.17), "days": (1.0, 1.0, 1.0, 1.0, 1.05, 1.05, 0.95),
             "ages": (0.09, 0.28, 0.24, 0.18, 0.12, 0.09)},
    "market": {"time": (0.0, 0.18, 0.24, 0.25, 0.28, 0.05), "days": (0.95, 0.9, 0.95, 0.95, 1.05, 1.2, 1.0),
               "ages": (0.01, 0.08, 0.17, 0.24, 0.25, 0.25)},
    "clinic": {"time": (0.0, 0.22, 0.25, 0.30, 0.23, 0.0), "days": (1.15, 1.0, 1.0, 1.0, 1.0, 0.6, 0.05),
               "ages": (0.08, 0.12, 0.18, 0.20, 0.20, 0.22)},
    "academy": {"time": (0.0, 0.05, 0.10, 0.40, 0.40, 0.05), "days": (1.0, 1.0, 1.0, 1.0, 1.0, 0.7, 0.2),
                "ages": (0.10, 0.12, 0.30, 0.35, 0.10, 0.03)},
}
# Quarter-of-year multipliers on sales by profile (Q1..Q4): winter dip for meals, summer for cafes,
# year-end for retail, spring/autumn term starts for academies.
SEASON: dict[str, tuple[float, float, float, float]] = {
    "meal": (0.93, 1.01, 0.99, 1.07), "bar": (0.90, 1.02, 1.03, 1.05), "cafe": (0.90, 1.02, 1.10, 0.98),
    "day": (0.94, 1.00, 0.98, 1.08), "night": (0.98, 0.97, 1.02, 1.03), "conv": (0.92, 1.01, 1.07, 1.00),
    "market": (1.05, 0.96, 0.96, 1.03), "clinic": (1.04, 0.97, 0.96, 1.03), "academy": (1.05, 0.96, 1.02, 0.97),
}
TIME_BAND_HOURS = ((0, 6), (6, 11), (11, 14), (14, 17), (17, 21), (21, 24))


def profile_arrays(types: tuple[BusinessType, ...] = BUSINESS_TYPES) -> dict[str, np.ndarray]:
    """Per-type arrays (n_types x k) of the profile shares, normalised, for vectorised generation."""
    time = np.array([PROFILES[t.profile]["time"] for t in types], dtype=float)
    days = np.array([PROFILES[t.profile]["days"] for t in types], dtype=float)
    ages = np.array([PROFILES[t.profile]["ages"] for t in types], dtype=float)
    season = np.array([SEASON[t.profile] for t in types], dtype=float)
    return {"time": time / time.sum(1, keepdims=True), "days": days / days.sum(1, keepdims=True),
            "ages": ages / ages.sum(1, keepdims=True), "season": season}
