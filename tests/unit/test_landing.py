"""Landing one batch: every record becomes a row or a dead letter, and no raw PII survives."""
from datetime import date, datetime, timezone

import pytest

from assets.ingestion.landing import LandingContext, process
from assets.ingestion.specs import CRM_CONTACTS, CRM_LEADS, EVENTS, WECOM_EXTERNAL_CONTACTS
from fincdp.pii import LocalKeyFileProvider, TenantCipher


@pytest.fixture
def ctx(tmp_path):
    cipher = TenantCipher.for_tenant("t001", LocalKeyFileProvider(tmp_path))
    return LandingContext("t001", frozenset({"hx_sh"}), "Asia/Shanghai", cipher, date(2026, 11, 25), "b1",
                          datetime(2026, 11, 26, tzinfo=timezone.utc))


def contact(**overrides):
    record = {"id": "C1", "enterprise_id": "E1", "name": "张伟", "mobile": "+86 138 1234 5678",
              "email": "Zhang.Wei@Example.com", "id_number": "11010519491231002x", "title": "财务总监",
              "updated_at": "2026-11-25T10:00:00+08:00"}
    return {**record, **overrides}


def test_contact_lands_with_tokens_and_ciphertexts_only(ctx):
    result = process(CRM_CONTACTS, [contact()], ["id=C1"], ctx)
    assert (result.received, result.landed, result.dead) == (1, 1, [])
    row = result.table.to_pylist()[0]
    assert row["mobile_token"] == ctx.cipher.token("phone", "+8613812345678")
    assert ctx.cipher.decrypt("mobile", row["mobile_enc"]) == "+8613812345678"
    assert ctx.cipher.decrypt("id_number", row["id_number_enc"]) == "11010519491231002X"
    assert "mobile" not in result.table.column_names and "email" not in result.table.column_names
    for secret in ("13812345678", "1234 5678", "zhang.wei", "Zhang.Wei", "11010519491231002"):
        assert secret not in row["_raw"]
    assert row["updated_at"] == datetime(2026, 11, 25, 2, tzinfo=timezone.utc)
    assert row["_source_id"] == "C1" and row["_tenant_id"] == "t001" and row["_dq_flags"] == []


def test_invalid_optional_pii_is_kept_encrypted_and_flagged_not_matched(ctx):
    result = process(CRM_CONTACTS, [contact(mobile="1381234")], ["id=C1"], ctx)
    row = result.table.to_pylist()[0]
    assert row["mobile_token"] is None
    assert ctx.cipher.decrypt("mobile", row["mobile_enc"]) == "1381234"
    assert row["_dq_flags"] == ["mobile: not a valid phone number"]


@pytest.mark.parametrize("mobile, is_mobile", [
    ("+86 138 1234 5678", True), ("010-6552 9988", False), ("021 5888 1234", False), ("1381234", None)])
def test_phones_are_flagged_mobile_or_fixed_line(ctx, mobile, is_mobile):
    # OneID takes only a mobile as a person key: a fixed line is a switchboard colleagues share.
    row = process(CRM_CONTACTS, [contact(mobile=mobile)], ["id=C1"], ctx).table.to_pylist()[0]
    assert row["mobile_is_mobile"] is is_mobile


@pytest.mark.parametrize("record, field, error_type", [
    (contact(id=None), "id", "missing_field"),
    (contact(updated_at="yesterday"), "updated_at", "invalid_type"),
    (contact(card_number="6222020200112233445"), "card_number", "c3_rejected"),
    (contact(name={"first": "x"}), "name", "invalid_type"),
])
def test_bad_records_are_dead_lettered_with_field_and_reason(ctx, record, field, error_type):
    good = contact(id="C2")
    result = process(CRM_CONTACTS, [record, good], ["id=bad", "id=C2"], ctx)
    assert result.landed == 1 and result.table.num_rows == 1
    [dead] = result.dead
    assert (dead.record_ref, dead.field, dead.error_type) == ("id=bad", field, error_type)
    assert field in dead.reason


def test_c3_values_never_reach_the_dead_letter_payload(ctx):
    result = process(CRM_CONTACTS, [contact(password="hunter2")], ["id=C1"], ctx)
    assert "hunter2" not in str(result.dead[0].payload)


def test_enum_outside_the_list_is_rejected(ctx):
    lead = {"id": "L1", "status": "won", "updated_at": "2026-11-25T10:00:00+08:00"}
    [dead] = process(CRM_LEADS, [lead], ["id=L1"], ctx).dead
    assert dead.error_type == "invalid_enum" and "'won'" in dead.reason


def test_repeated_id_in_a_batch_keeps_the_newest(ctx):
    older = contact(title="经理", updated_at="2026-11-25T09:00:00+08:00")
    newer = contact(title="总监", updated_at="2026-11-25T11:00:00+08:00")
    result = process(CRM_CONTACTS, [newer, older], ["a", "b"], ctx)
    assert result.duplicates == 1 and result.table.column("title").to_pylist() == ["总监"]


def event(**overrides):
    record = {"event_id": "evt_1", "tenant_id": "t001", "org_id": "hx_sh", "one_id": None,
              "occurred_at": "2026-11-25T10:00:00+08:00", "source": "web", "type": "web.submit.form",
              "ip": "10.1.2.3", "ua": "Mozilla", "payload": {"form": "trial", "mobile": "13812345678"}}
    return {**record, **overrides}


@pytest.mark.parametrize("record, field, error_type", [
    (event(tenant_id="t002"), "tenant_id", "tenant_mismatch"),
    (event(type="Web-Submit"), "type", "schema"),
    (event(payload=[1, 2]), "payload", "schema"),
    (event(org_id="yh_hq"), "org_id", "invalid_value"),
    (event(event_id=""), "event_id", "missing_field"),
])
def test_events_that_break_the_schema_are_dead_lettered(ctx, record, field, error_type):
    result = process(EVENTS, [record, event(event_id="evt_ok")], ["x", "ok"], ctx)
    assert result.landed == 1 and [(d.field, d.error_type) for d in result.dead] == [(field, error_type)]


def test_event_payload_pii_is_tokenised_and_redacted(ctx):
    row = process(EVENTS, [event()], ["x"], ctx).table.to_pylist()[0]
    assert row["payload_phone_token"] == ctx.cipher.token("phone", "+8613812345678")
    assert row["payload_phone_is_mobile"] is True
    assert "13812345678" not in row["payload"] and "13812345678" not in row["_raw"]
    assert row["ip_token"] and "10.1.2.3" not in row["_raw"]


def test_external_contact_with_remark_mobiles(ctx):
    record = {"external_contact": {"external_userid": "wm1", "name": "陈静", "type": 2,
                                   "corp_full_name": "远航物流（上海）有限公司"},
              "follow_info": {"userid": "wangwei", "createtime": 1700000100, "tag_id": ["et1"],
                              "remark_mobiles": ["139 0000 1234", "bad"]}}
    row = process(WECOM_EXTERNAL_CONTACTS, [record], ["x"], ctx).table.to_pylist()[0]
    assert row["_source_id"] == "wm1:wangwei"
    assert row["remark_mobiles_tokens"] == [ctx.cipher.token("phone", "+8613900001234")]
    assert "1234" not in row["_raw"] and row["_dq_flags"] == ["remark_mobiles[1]: not a phone number"]
