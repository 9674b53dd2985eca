import pytest

from fincdp.boss.config import BossConfig, BossConfigError
from fincdp.boss.titles import TitleMapper


@pytest.fixture
def mapper():
    return TitleMapper(BossConfig.load())


@pytest.mark.parametrize("title, level", [
    ("董事长", "owner"), ("董事长兼总经理", "owner"), ("总经理", "cxo"), ("GM", "cxo"), ("CEO", "cxo"),
    ("财务总监", "cxo"), ("CFO", "cxo"), ("首席信息官", "cxo"),
    ("副总经理", "vp"), ("副总", "vp"), ("VP", "vp"), ("财务副总裁", "vp"), ("副总裁（财务）", "vp"),
    ("采购部总监", "director"), ("信息技术部部长", "director"), ("财务部长", "director"),
    ("财务经理", "manager"), ("IT经理", "manager"), ("会计主管", "manager"), ("主管会计", "manager"), ("PM", "manager"),
    ("高级会计", "senior"), ("高级工程师", "senior"), ("高工", "senior"), ("高级采购专员", "senior"),
    ("财务专员", "entry"), ("出纳", "entry"), ("总经理助理", "entry"), ("总助", "entry"), ("会计员", "entry"),
    ("  财务  经理 ", "manager"), ("ＣＦＯ", "cxo"),
])
def test_corporate_titles(mapper, title, level):
    assert mapper.level(title).level == level


def test_longest_keyword_wins_over_a_shorter_senior_one(mapper):
    got = mapper.level("总经理助理")
    assert (got.level, got.keyword, got.table) == ("entry", "总经理助理", "corporate")


def test_public_sector_table_for_public_accounts_and_as_fallback(mapper):
    assert mapper.level("处长").level == "director"          # no corporate keyword: public fallback
    assert mapper.level("处长").table == "public"
    assert mapper.level("科长").level == "manager"
    assert mapper.level("主任").level == "manager"                        # corporate 主任 (办公室主任)
    assert mapper.level("主任", public_sector=True).level == "director"   # a public body's 主任
    assert mapper.is_public_sector("上海市浦东新区财政局") and not mapper.is_public_sector("华信融资租赁有限公司")


def test_unknown_titles_are_reported_for_the_table(mapper):
    assert mapper.level("首席吹哨人").level is None
    mapper.level("首席吹哨人")
    mapper.level("Evangelist")
    assert mapper.unknown_titles() == [("首席吹哨人", 2), ("evangelist", 1)]
    assert mapper.level("").level is None and mapper.unknown_titles()[0] == ("首席吹哨人", 2)


def test_overrides_and_new_keywords_from_a_tenant_file(tmp_path):
    f = tmp_path / "t.yaml"
    f.write_text("titles:\n  overrides: {首席吹哨人: director, 总经理: owner}\n", encoding="utf-8")
    m = TitleMapper(BossConfig.load(f))
    assert m.level("首席吹哨人").level == "director" and m.level("首席吹哨人").table == "override"
    assert m.level("总经理").level == "owner"
    assert m.level("副总经理").level == "vp"   # other titles keep the default table


def test_bad_config_names_the_key(tmp_path):
    with pytest.raises(BossConfigError, match="titles.overrides.*boss"):
        BossConfig.load({"titles": {"overrides": {"x": "boss"}}})
    with pytest.raises(BossConfigError, match="unknown boss config key 'weights.grades'"):
        BossConfig.load({"weights": {"grades": {}}})
    with pytest.raises(BossConfigError, match="half_life_days"):
        BossConfig.load({"weights": {"interaction": {"half_life_days": 0}}})


def test_functions(mapper):
    assert mapper.function("财务总监") == "finance"
    assert mapper.function("CIO") == "it"
    assert mapper.function("采购经理") == "procurement"
    assert mapper.function("总经理") == "general"
    assert mapper.function("Audit manager") is None   # "it" only as a word


def test_tenant_files_merge_key_by_key(tmp_path):
    f = tmp_path / "t.yaml"
    f.write_text("weights:\n  interaction:\n    outcomes: {meeting: 2.0, connected: 0.8}\n", encoding="utf-8")
    c = BossConfig.load(f)
    assert c["weights"]["interaction"]["outcomes"]["meeting"] == 2.0            # a new outcome
    assert c["weights"]["interaction"]["outcomes"]["connected"] == 0.8          # changed
    assert c["weights"]["interaction"]["outcomes"]["voicemail"] == 0.3          # kept
    assert c["weights"]["interaction"]["half_life_days"] == 30
    broken = tmp_path / "broken.yaml"
    broken.write_text("weights: [", encoding="utf-8")
    with pytest.raises(BossConfigError, match="broken.yaml"):
        BossConfig.load(broken)
