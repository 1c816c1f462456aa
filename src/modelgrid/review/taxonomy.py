"""TC260-003 (now GB/T 45654-2025) Appendix A risk taxonomy: 5 classes, 31 risks.

Codes follow the standard's own numbering so that term lists, policies and audit
records written by operators against the standard line up with ours.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RiskClass:
    code: str
    name_en: str
    name_zh: str


@dataclass(frozen=True, slots=True)
class Risk:
    code: str
    name_en: str
    name_zh: str

    @property
    def class_code(self) -> str:
        return self.code.rsplit(".", 1)[0]


CLASSES: tuple[RiskClass, ...] = (
    RiskClass("A.1", "Violating core socialist values", "违反社会主义核心价值观"),
    RiskClass("A.2", "Discriminatory content", "歧视性内容"),
    RiskClass("A.3", "Commercial violations", "商业违法违规"),
    RiskClass("A.4", "Infringing others' legitimate rights", "侵犯他人合法权益"),
    RiskClass(
        "A.5",
        "Failing to meet safety requirements of specific service types",
        "无法满足特定服务类型的安全需求",
    ),
)

_RISKS: tuple[tuple[str, str, str], ...] = (
    (
        "A.1.1",
        "Inciting subversion of state power or the socialist system",
        "煽动颠覆国家政权、推翻社会主义制度",
    ),
    (
        "A.1.2",
        "Endangering national security and interests, harming the national image",
        "危害国家安全和利益、损害国家形象",
    ),
    (
        "A.1.3",
        "Inciting separatism, undermining national unity and social stability",
        "煽动分裂国家、破坏国家统一和社会稳定",
    ),
    ("A.1.4", "Promoting terrorism or extremism", "宣扬恐怖主义、极端主义"),
    ("A.1.5", "Promoting ethnic hatred", "宣扬民族仇恨"),
    ("A.1.6", "Promoting violence, obscenity or pornography", "宣扬暴力、淫秽色情"),
    ("A.1.7", "Spreading false and harmful information", "传播虚假有害信息"),
    (
        "A.1.8",
        "Other content prohibited by laws and administrative regulations",
        "其他法律、行政法规禁止的内容",
    ),
    ("A.2.1", "Ethnic discrimination", "民族歧视内容"),
    ("A.2.2", "Religious belief discrimination", "信仰歧视内容"),
    ("A.2.3", "Nationality discrimination", "国别歧视内容"),
    ("A.2.4", "Regional discrimination", "地域歧视内容"),
    ("A.2.5", "Gender discrimination", "性别歧视内容"),
    ("A.2.6", "Age discrimination", "年龄歧视内容"),
    ("A.2.7", "Occupational discrimination", "职业歧视内容"),
    ("A.2.8", "Health discrimination", "健康歧视内容"),
    ("A.2.9", "Other discrimination", "其他方面歧视内容"),
    ("A.3.1", "Infringing intellectual property rights", "侵犯他人知识产权"),
    ("A.3.2", "Violating business ethics", "违反商业道德"),
    ("A.3.3", "Disclosing trade secrets", "泄露他人商业秘密"),
    (
        "A.3.4",
        "Monopoly or unfair competition using algorithms, data or platforms",
        "利用算法、数据、平台等优势，实施垄断和不正当竞争行为",
    ),
    ("A.3.5", "Other commercial violations", "其他商业违法违规行为"),
    ("A.4.1", "Endangering others' physical or mental health", "危害他人身心健康"),
    ("A.4.2", "Infringing portrait rights", "侵害他人肖像权"),
    ("A.4.3", "Infringing reputation rights", "侵害他人名誉权"),
    ("A.4.4", "Infringing honour rights", "侵害他人荣誉权"),
    ("A.4.5", "Infringing privacy rights", "侵害他人隐私权"),
    ("A.4.6", "Infringing personal information rights", "侵害他人个人信息权益"),
    ("A.4.7", "Infringing other legitimate rights", "侵犯他人其他合法权益"),
    (
        "A.5.1",
        "Inaccurate content, seriously contrary to science or mainstream understanding",
        "内容不准确，严重不符合科学常识或主流认知",
    ),
    ("A.5.2", "Unreliable content that cannot help the user", "内容不可靠，无法对使用者形成帮助"),
)

RISKS: tuple[Risk, ...] = tuple(Risk(c, en, zh) for c, en, zh in _RISKS)
RISKS_BY_CODE: dict[str, Risk] = {r.code: r for r in RISKS}
CLASSES_BY_CODE: dict[str, RiskClass] = {c.code: c for c in CLASSES}


def risks_in(class_code: str) -> tuple[Risk, ...]:
    return tuple(r for r in RISKS if r.class_code == class_code)


def is_risk_code(code: str) -> bool:
    return code in RISKS_BY_CODE
