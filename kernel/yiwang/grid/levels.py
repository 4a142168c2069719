"""Administrative levels of the net, from the province down to the unit (微网格)."""

from __future__ import annotations

from enum import IntEnum


class Level(IntEnum):
    """A node's level; the value is its depth in a province-rooted tree."""

    PROVINCE = 1  # 省/自治区
    CITY = 2  # 市
    COUNTY = 3  # 县/市/区
    TOWNSHIP = 4  # 乡/镇/街道
    COMMUNITY = 5  # 社区/村
    GRID = 6  # 网格
    UNIT = 7  # 单元/微网格

    @property
    def label(self) -> str:
        return LEVEL_LABELS[self]

    @classmethod
    def parse(cls, value: object) -> Level:
        """Accept 1–7, the English name or a Chinese label (省, 市, 县, 乡镇, 社区, 网格, 单元 …)."""
        if isinstance(value, Level):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return cls(value)
        text = str(value).strip()
        if text.isdigit():
            return cls(int(text))
        key = text.upper()
        if key in cls.__members__:
            return cls[key]
        if text in LEVEL_ALIASES:
            return LEVEL_ALIASES[text]
        raise ValueError(text)


LEVEL_LABELS: dict[Level, str] = {
    Level.PROVINCE: "省(自治区)",
    Level.CITY: "市",
    Level.COUNTY: "县(市、区)",
    Level.TOWNSHIP: "乡镇(街道)",
    Level.COMMUNITY: "社区(村)",
    Level.GRID: "网格",
    Level.UNIT: "单元(微网格)",
}

LEVEL_ALIASES: dict[str, Level] = {
    **{label: level for level, label in LEVEL_LABELS.items()},
    "省": Level.PROVINCE, "自治区": Level.PROVINCE, "省级": Level.PROVINCE,
    "市": Level.CITY, "地市": Level.CITY, "市级": Level.CITY,
    "县": Level.COUNTY, "区": Level.COUNTY, "县区": Level.COUNTY, "县级": Level.COUNTY,
    "乡镇": Level.TOWNSHIP, "街道": Level.TOWNSHIP, "乡": Level.TOWNSHIP, "镇": Level.TOWNSHIP,
    "乡级": Level.TOWNSHIP,
    "社区": Level.COMMUNITY, "村": Level.COMMUNITY, "村居": Level.COMMUNITY,
    "网格": Level.GRID,
    "单元": Level.UNIT, "微网格": Level.UNIT,
}
