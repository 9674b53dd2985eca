"""Per-tenant org sync frequency and callback settings (tenants.yaml), their schedules and the callback sensor."""
from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from assets.partitions import partition_key
from fincdp.boss.callbacks import CallbackInbox, parse_event
from fincdp.localsaas.wecom_callbacks import event_xml, user_fields
from fincdp.tenants import TenantConfigError, parse_tenants
from orchestration.org_sync import org_sync_schedules, wecom_callback_sensor

TENANT = """
  - id: {id}
    name: n
    orgs: [{{id: o1, name: o}}]
    timezone: {tz}
    es_index_prefix: {id}-
    retention_days: 30
    sources:
      wecom:
        base_url: http://127.0.0.1:1
        corpid: ww{id}
        corpsecret_env: SECRET_{up}
{extra}"""


def tenants(*specs: tuple[str, str, str]) -> str:
    return "tenants:" + "".join(TENANT.format(id=i, up=i.upper(), tz=tz, extra=extra) for i, tz, extra in specs)


SYNC = "        org_sync: {{cron: \"{}\"}}\n"
CALLBACK = "        callback: {token_env: CB_TOKEN, encoding_aes_key_env: CB_KEY}\n"


def test_each_tenant_syncs_its_org_at_its_own_frequency_in_its_own_zone():
    config = parse_tenants(tenants(("ta", "Asia/Shanghai", SYNC.format("0 */2 * * *")),
                                   ("tb", "Asia/Hong_Kong", SYNC.format("30 9-18 * * 1-5")),
                                   ("tc", "Asia/Shanghai", "")))
    schedules = {s.name: s for s in org_sync_schedules(config.tenants)}
    assert {n: (s.cron_schedule, s.execution_timezone) for n, s in schedules.items()} == {
        "ta_wecom_org_sync": ("0 */2 * * *", "Asia/Shanghai"),
        "tb_wecom_org_sync": ("30 9-18 * * 1-5", "Asia/Hong_Kong")}
    when = datetime(2026, 11, 27, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    with dg.instance_for_test() as instance:
        request = schedules["ta_wecom_org_sync"](
            dg.build_schedule_context(instance=instance, scheduled_execution_time=when))
    assert request.partition_key == partition_key("ta", date(2026, 11, 26))   # the day just ended
    assert request.run_key == f"org-sync:ta:{when.isoformat()}" and request.tags["tenant"] == "ta"


@pytest.mark.parametrize("extra, message", [
    (SYNC.format("every two hours"), "tenant 'ta' field 'sources.wecom.org_sync.cron'"),
    (SYNC.format("0 25 * * *"), "not a cron expression"),
    ("        org_sync: {interval: 2h}\n", "tenant 'ta' field 'sources.wecom.org_sync"),
    ("        callback: {token_env: cb_token, encoding_aes_key_env: CB_KEY}\n",
     "tenant 'ta' field 'sources.wecom.callback.token_env'"),
])
def test_bad_settings_are_errors_naming_the_tenant_and_field(extra, message):
    with pytest.raises(TenantConfigError, match=message.replace("(", r"\(")):
        parse_tenants(tenants(("ta", "Asia/Shanghai", extra)))


def test_callback_secrets_come_from_the_environment(monkeypatch):
    wecom = parse_tenants(tenants(("ta", "Asia/Shanghai", CALLBACK))).tenants[0].sources.wecom
    monkeypatch.delenv("CB_TOKEN", raising=False)
    monkeypatch.setenv("CB_KEY", "k" * 43)
    with pytest.raises(TenantConfigError, match="CB_TOKEN, which is not set"):
        wecom.callback.crypto(wecom.corpid)
    monkeypatch.setenv("CB_TOKEN", "tok")
    monkeypatch.setenv("CB_KEY", "short")
    with pytest.raises(TenantConfigError, match="CB_KEY must hold a 43-character EncodingAESKey"):
        wecom.callback.crypto(wecom.corpid)
    monkeypatch.setenv("CB_KEY", "k" * 43)
    assert wecom.callback.crypto(wecom.corpid).receive_id == "wwta"


def test_the_sensor_asks_once_per_tenant_with_new_callbacks(tmp_path, monkeypatch):
    """tenants.yaml: t001 has callbacks configured, t002 not (its inbox is not looked at)."""
    monkeypatch.setenv("FINCDP_HOME", str(tmp_path))
    event = parse_event(event_xml("ww7e1a0c0000000001", "change_contact", "delete_user", user_fields("a", None),
                                  1764200000))
    with dg.instance_for_test() as instance:
        assert wecom_callback_sensor(dg.build_sensor_context(instance=instance)).run_requests == []
        for tenant_id in ("t001", "t002"):
            with CallbackInbox(tenant_id) as inbox:
                inbox.append(event)
        result = wecom_callback_sensor(dg.build_sensor_context(instance=instance))
        [request] = result.run_requests
        assert request.run_key == "wecom-callbacks:t001:1"
        yesterday = datetime.now(ZoneInfo("Asia/Shanghai")).date().toordinal() - 1
        assert request.partition_key == partition_key("t001", date.fromordinal(yesterday))
        # the cursor moves only once the run exists: the next tick asks again (same run key, so one run)
        again = wecom_callback_sensor(dg.build_sensor_context(instance=instance, cursor=result.cursor))
        assert [r.run_key for r in again.run_requests] == ["wecom-callbacks:t001:1"]
