"""Connected customer corps: their WeCom org chart, matched to the account's known people.

A customer corp that linked with the firm's corp (or authorised its app) answers the same department
and user APIs with its own corpid and token. Members are matched to the account's contacts by name
key, only where exactly one contact of that account has the key; names are used in memory and dropped.
"""
from __future__ import annotations

import os
from collections import defaultdict
from typing import Callable

from fincdp.boss.org import OrgWarning
from fincdp.boss.tenant import CustomerOrg, credit_key, name_key

MEMBER_FIELDS = ("userid", "department", "is_leader_in_dept", "direct_leader", "main_department", "status", "position")


class CorpUnreadable(Exception):
    """A customer corp could not be read; the message names tenant and corp (never a secret)."""


def read_corp(corp: dict, tenant_id: str, default_base_url: str | None,
              client: Callable[[str, str, str, str], object]) -> tuple[list[dict], list[dict]]:
    """One customer corp's departments and members through the WeCom API."""
    corpid = corp["corpid"]
    secret = os.environ.get(corp["corpsecret_env"])
    base_url = corp.get("base_url") or default_base_url
    if not secret or not base_url:
        what = f"environment variable {corp['corpsecret_env']} is not set" if not secret else "no WeCom base_url"
        raise CorpUnreadable(f"tenant {tenant_id} customer corp {corpid}: {what}")
    try:
        api = client(base_url, corpid, secret, f"{tenant_id}/customer {corpid}")
        return api.departments(), list(api.users())
    except Exception as exc:  # one unreachable customer corp must not stop the tenant's model
        raise CorpUnreadable(f"tenant {tenant_id} customer corp {corpid}: {type(exc).__name__}: {exc}") from exc


def fetch_customer_orgs(corps: list[dict], tenant_id: str, default_base_url: str | None,
                        client: Callable[[str, str, str, str], object], enterprises: list[dict], contacts: list[dict]
                        ) -> tuple[dict[str, CustomerOrg], list[tuple[str, OrgWarning]]]:
    """corps: the boss config's customer_corps; client(base_url, corpid, secret, label) -> a WeComClient.
    Returns account -> CustomerOrg and warnings; a corp that cannot be read is a warning, not a failure
    (its account keeps the inferred org)."""
    fetched: dict[str, tuple[list[dict], list[dict]] | str] = {}
    for corp in corps:
        try:
            fetched[corp["corpid"]] = read_corp(corp, tenant_id, default_base_url, client)
        except CorpUnreadable as exc:
            fetched[corp["corpid"]] = str(exc)
    return match_customer_orgs(corps, fetched, enterprises, contacts, lambda u: name_key(u.get("name")), lambda k: k)


def match_customer_orgs(corps: list[dict], fetched: dict, enterprises: list[dict], contacts: list[dict],
                        member_key: Callable[[dict], str | None], contact_key: Callable[[str], str]
                        ) -> tuple[dict[str, CustomerOrg], list[tuple[str, OrgWarning]]]:
    """fetched: corpid -> (departments, members), or the reason it could not be read. A member is a
    contact of the account when member_key(member) == contact_key(contact's name key) for exactly one
    contact: name keys from the API, or their tokens when the members come from ODS."""
    account_of = {credit_key(e.get("credit_code")): e.get("account") or e["enterprise_id"] for e in enterprises
                  if e.get("credit_code")}
    ent_account = {e["enterprise_id"]: e.get("account") or e["enterprise_id"] for e in enterprises}
    by_name: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for c in contacts:
        account = ent_account.get(c.get("enterprise_id"))
        if account and c.get("name_key"):
            by_name[account][contact_key(c["name_key"])].add(c["person"])
    orgs, warnings = {}, []
    for corp in corps:
        corpid = corp["corpid"]
        account = account_of.get(credit_key(corp["credit_code"]))
        if account is None:
            warnings.append((corpid, OrgWarning("corp_without_account", corpid,
                                                f"customer corp {corpid}: no account has credit code {corp['credit_code']}")))
            continue
        got = fetched.get(corpid, f"customer corp {corpid}: not read")
        if isinstance(got, str):
            warnings.append((account, OrgWarning("corp_unreadable", corpid, got)))
            continue
        departments, users = got
        people, unmatched = {}, 0
        for u in users:
            key = member_key(u)
            found = by_name[account].get(key, set()) if key else set()
            if len(found) == 1:
                people[u["userid"]] = next(iter(found))
            else:
                unmatched += 1
        members = [{k: u.get(k) for k in MEMBER_FIELDS} for u in users]   # no names past this point
        orgs[account] = CustomerOrg(departments, members, people)
        if unmatched:
            warnings.append((account, OrgWarning("members_unmatched", corpid,
                                                 f"customer corp {corpid}: {unmatched} of {len(users)} members match "
                                                 "no single contact of the account")))
    return orgs, warnings
