"""Elasticsearch as the platform sees it: per-tenant indexes published by an atomic alias swap.

Each tenant owns every index, alias and template whose name starts with its `es_index_prefix`
(tenants.yaml checks that no prefix is a prefix of another's). An index *kind* (profiles, segments)
has, per tenant:

- an index template `<prefix><kind>` over `<prefix><kind>-*` holding the explicit mappings;
- physical indexes `<prefix><kind>-<build id>`, one per build, loaded with the bulk helper;
- the alias `<prefix><kind>`, which is what readers query.

`publish()` loads a new physical index, checks it holds every document, then moves the alias with ONE
`update_aliases` call (remove from the old index + add to the new), so a reader of the alias sees the
old index or the new one, never a half-built one. A failed build deletes its own index and leaves the
alias where it was. Older builds beyond `keep_previous` are deleted after the swap.

Only the official client's public API is used. Server compatibility: the 9.x client asks for
`compatible-with=9`, which an Elasticsearch 8 cluster refuses; `compatibility=8` makes the client
ask for 8 through a custom transport node class (the client's `node_class` option), the supported
extension point, rather than patching the client.
"""
from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Iterator

import dagster as dg
from elastic_transport import HttpHeaders, Urllib3HttpNode
from elasticsearch import Elasticsearch, NotFoundError, helpers
from elasticsearch.serializer import OrjsonSerializer

from fincdp.tenants import Tenant

_COMPAT = re.compile(r"compatible-with=\d+")
_BUILD_ID = re.compile(r"^[0-9]{8}t[0-9]{12}$")


class SearchNotConfigured(RuntimeError):
    pass


class TenantIsolationError(PermissionError):
    """A name outside the tenant's prefix: the call would touch another tenant's (or nobody's) index."""


class SearchPublishError(RuntimeError):
    """A build failed; the alias was not touched. The message names tenant, index and documents."""


def _compat_node_class(major: int) -> type[Urllib3HttpNode]:
    """A transport node that asks the server for API compatibility with `major` (e.g. 8 for an
    Elasticsearch 8 cluster) instead of the client's own major version."""
    wanted = f"compatible-with={major}"

    class CompatibleNode(Urllib3HttpNode):
        def perform_request(self, method, target, body=None, headers=None, **kwargs):
            if headers:
                headers = HttpHeaders({k: _COMPAT.sub(wanted, v) for k, v in headers.items()})
            return super().perform_request(method, target, body=body, headers=headers, **kwargs)

    CompatibleNode.__name__ = f"Compat{major}Urllib3HttpNode"
    return CompatibleNode


@dataclass(frozen=True)
class IndexKind:
    """One kind of index every tenant has: its name under the prefix and its explicit mappings."""
    name: str
    mappings: dict
    settings: dict = field(default_factory=lambda: {"number_of_shards": 1, "number_of_replicas": 0})

    def alias(self, tenant: Tenant) -> str:
        return f"{tenant.es_index_prefix}{self.name}"

    def pattern(self, tenant: Tenant) -> str:
        return f"{self.alias(tenant)}-*"

    def index(self, tenant: Tenant, build_id: str) -> str:
        return f"{self.alias(tenant)}-{build_id}"


@dataclass
class PublishResult:
    tenant: str
    alias: str
    index: str
    docs: int
    previous: list[str]   # what the alias pointed at before the swap
    deleted: list[str]    # old builds removed after it
    kept: list[str]       # old builds kept for rollback
    bulk_s: float
    total_s: float
    cleanup_error: str = ""

    def metadata(self) -> dict[str, Any]:
        return {"dagster/row_count": self.docs, "index": self.index, "alias": self.alias,
                "previous_index": ", ".join(self.previous) or "(none)",
                "deleted_indices": ", ".join(self.deleted) or "(none)",
                "kept_for_rollback": ", ".join(self.kept) or "(none)",
                "bulk_seconds": round(self.bulk_s, 3), "publish_seconds": round(self.total_s, 3),
                "docs_per_second": round(self.docs / self.bulk_s) if self.bulk_s > 0 else None,
                **({"cleanup_error": self.cleanup_error} if self.cleanup_error else {})}


def new_build_id(now: datetime | None = None) -> str:
    """Sortable, lower case (index names must be): 20261126t031500123456 (UTC)."""
    return (now or datetime.now(timezone.utc)).strftime("%Y%m%dt%H%M%S%f")


class SearchIndex(dg.ConfigurableResource):
    """The search cluster: `url` from FINCDP_ES_URL (empty: none configured). Credentials are named,
    never written: `api_key_env` is the environment variable holding an API key ("{tenant}" in it is
    replaced by the upper-case tenant id, for one key per tenant restricted to its prefix)."""

    url: str = ""
    api_key_env: str = "FINCDP_ES_API_KEY"
    compatibility: int = 9  # the Elasticsearch major the server speaks; 8 for an ES 8 cluster
    ca_certs: str = ""
    keep_previous: int = 1  # old builds kept after a swap, for rollback
    chunk_size: int = 20_000  # ~10 MB of profile documents per bulk request (ES guidance: 5-15 MB)
    thread_count: int = 2
    request_timeout_s: float = 120.0
    # Top-level null fields are left out of the documents sent: Elasticsearch indexes a null exactly like
    # a missing field (neither matches `exists`), and nulls were a third of a profile document's bytes,
    # which the server parses and stores for every document (docs/search.md, "Bulk throughput").
    omit_nulls: bool = True
    # gzip request bodies (the client's http_compress): worth it over a slow network to a remote cluster,
    # not on loopback, where compressing costs the client more CPU than the bytes saved (measured).
    http_compress: bool = False

    @classmethod
    def from_env(cls) -> "SearchIndex":
        env = os.environ
        return cls(url=env.get("FINCDP_ES_URL", ""),
                   api_key_env=env.get("FINCDP_ES_API_KEY_ENV", "FINCDP_ES_API_KEY"),
                   compatibility=int(env.get("FINCDP_ES_COMPATIBILITY", "9")),
                   ca_certs=env.get("FINCDP_ES_CA_CERTS", ""),
                   keep_previous=int(env.get("FINCDP_ES_KEEP_PREVIOUS", "1")),
                   http_compress=env.get("FINCDP_ES_HTTP_COMPRESS", "").lower() in ("1", "true", "yes"),
                   chunk_size=int(env.get("FINCDP_ES_BULK_DOCS", "20000")))

    @property
    def configured(self) -> bool:
        return bool(self.url)

    # -- clients and names ------------------------------------------------------------------------

    def client(self, tenant: Tenant) -> Elasticsearch:
        if not self.url:
            raise SearchNotConfigured(f"tenant {tenant.id!r}: no search cluster configured (set FINCDP_ES_URL)")
        # orjson (a dependency already) serialises the bulk bodies and parses the bulk responses several
        # times faster than the standard library: client CPU is shared with the server on a small machine.
        options: dict[str, Any] = {"request_timeout": self.request_timeout_s, "serializer": OrjsonSerializer(),
                                   "http_compress": self.http_compress}
        key_env = self.api_key_env.replace("{tenant}", tenant.id.upper())
        if key_env and os.environ.get(key_env):
            options["api_key"] = os.environ[key_env]
        if self.ca_certs:
            options["ca_certs"] = self.ca_certs
        if self.compatibility != 9:
            options["node_class"] = _compat_node_class(self.compatibility)
        return Elasticsearch(self.url, **options)

    @staticmethod
    def guard(tenant: Tenant, *names: str) -> None:
        """Every index, alias and template name a call touches must be the tenant's."""
        # A request names a comma-separated list of expressions; each one must be under the prefix
        # (so no "*", "_all", "-exclusions" or "cluster:index" can reach past it).
        for name in (part.strip() for value in names for part in value.split(",")):
            if not name.startswith(tenant.es_index_prefix) or ":" in name:
                raise TenantIsolationError(f"tenant {tenant.id!r} may only touch indices under its prefix "
                                           f"{tenant.es_index_prefix!r}, not {name!r}")

    # -- reading ---------------------------------------------------------------------------------

    def alias_targets(self, es: Elasticsearch, tenant: Tenant, alias: str) -> list[str]:
        self.guard(tenant, alias)
        try:
            found = es.indices.get_alias(name=alias)
        except NotFoundError:
            return []
        self.guard(tenant, *found.body)
        return sorted(found.body)

    def builds(self, es: Elasticsearch, tenant: Tenant, kind: IndexKind) -> list[str]:
        """The kind's physical indexes of this tenant, oldest build first."""
        pattern = kind.pattern(tenant)
        self.guard(tenant, pattern)
        try:
            found = es.indices.get(index=pattern, expand_wildcards="open,closed")
        except NotFoundError:
            return []
        names = [n for n in found.body if _BUILD_ID.match(n[len(kind.alias(tenant)) + 1:])]
        self.guard(tenant, *names)
        return sorted(names)

    def search(self, tenant: Tenant, index: str, **body) -> dict:
        """A search restricted to the tenant's names (what an application does, here for tests)."""
        self.guard(tenant, index)
        with self.client(tenant) as es:
            return es.search(index=index, **body).body

    # -- publishing ------------------------------------------------------------------------------

    def ensure_template(self, es: Elasticsearch, tenant: Tenant, kind: IndexKind) -> None:
        name = kind.alias(tenant)
        self.guard(tenant, name, kind.pattern(tenant))
        es.indices.put_index_template(
            name=name, index_patterns=[kind.pattern(tenant)], priority=500,
            template={"settings": kind.settings, "mappings": kind.mappings},
            meta={"managed_by": "fincdp", "tenant": tenant.id})

    def publish(self, tenant: Tenant, kind: IndexKind, docs: Iterable[dict], *,
                build_id: str | None = None, log=None) -> PublishResult:
        """Load `docs` (each with its stable `_id`) into a new build and swap the alias to it."""
        began = time.perf_counter()
        build_id = build_id or new_build_id()
        alias, index = kind.alias(tenant), kind.index(tenant, build_id)
        self.guard(tenant, alias, index)
        with self.client(tenant) as es:
            if es.indices.exists(index=alias) and not es.indices.exists_alias(name=alias):
                raise SearchPublishError(f"tenant {tenant.id!r}: {alias!r} is an index, not an alias; "
                                         "move or delete it before publishing")
            self.ensure_template(es, tenant, kind)
            # No refreshes while loading: the new index is invisible to readers until the swap anyway.
            es.indices.create(index=index, settings={"refresh_interval": "-1"})
            try:
                bulk_began = time.perf_counter()
                sent = self._bulk(es, tenant, index, docs)
                bulk_s = time.perf_counter() - bulk_began
                es.indices.put_settings(index=index, settings={"refresh_interval": None})
                es.indices.refresh(index=index)
                held = es.count(index=index)["count"]
                if held != sent:
                    raise SearchPublishError(f"tenant {tenant.id!r}: index {index} holds {held} documents after "
                                             f"loading {sent} (duplicate _id in the input?); alias {alias} untouched")
                previous = self.alias_targets(es, tenant, alias)
                actions = [{"remove": {"index": old, "alias": alias}} for old in previous]
                actions.append({"add": {"index": index, "alias": alias}})
                es.indices.update_aliases(actions=actions)  # one call: readers see old or new
            except BaseException:
                es.options(ignore_status=404).indices.delete(index=index)
                raise
            try:
                deleted, kept, cleanup_error = *self._cleanup(es, tenant, kind, index, log), ""
            except Exception as exc:  # published already: report it, the next build cleans up again
                deleted, kept, cleanup_error = [], [], f"{type(exc).__name__}: {exc}"
                if log:
                    log.warning(f"tenant {tenant.id}: {alias} now points at {index}, but deleting old builds "
                                f"failed: {cleanup_error}")
        result = PublishResult(tenant.id, alias, index, sent, previous, deleted, kept, bulk_s,
                               time.perf_counter() - began, cleanup_error)
        if log:
            log.info(f"tenant {tenant.id}: {alias} -> {index} ({sent} docs, bulk {bulk_s:.1f}s)")
        return result

    def _bulk(self, es: Elasticsearch, tenant: Tenant, index: str, docs: Iterable[dict]) -> int:
        omit_nulls = self.omit_nulls

        def actions() -> Iterator[dict]:
            for doc in docs:
                if "_id" not in doc:
                    raise SearchPublishError(f"tenant {tenant.id!r}: a document for {index} has no _id")
                if omit_nulls:
                    yield {"_index": index, **{k: v for k, v in doc.items() if v is not None}}
                else:
                    yield {"_index": index, **doc}

        sent, failures = 0, []
        for ok, item in helpers.parallel_bulk(es, actions(), thread_count=self.thread_count,
                                              chunk_size=self.chunk_size, raise_on_error=False,
                                              raise_on_exception=True):
            if ok:
                sent += 1
            else:
                failures.append(item)
        if failures:
            detail = "; ".join(_describe_failure(f) for f in failures[:5])
            more = f" (and {len(failures) - 5} more)" if len(failures) > 5 else ""
            raise SearchPublishError(f"tenant {tenant.id!r}: {len(failures)} of {sent + len(failures)} documents "
                                     f"were rejected by {index}: {detail}{more}; the alias was not touched")
        return sent

    def _cleanup(self, es: Elasticsearch, tenant: Tenant, kind: IndexKind, current: str, log) -> tuple[list, list]:
        older = [name for name in self.builds(es, tenant, kind) if name < current]
        keep = older[len(older) - self.keep_previous:] if self.keep_previous > 0 else []
        deleted = [name for name in older if name not in keep]
        for name in deleted:
            self.guard(tenant, name)
            es.options(ignore_status=404).indices.delete(index=name)  # by name: wildcards are refused
        if log and deleted:
            log.info(f"tenant {tenant.id}: deleted old builds {', '.join(deleted)}")
        return deleted, keep

    def rollback(self, tenant: Tenant, kind: IndexKind) -> str:
        """Point the alias back at the newest kept build older than the current one."""
        alias = kind.alias(tenant)
        with self.client(tenant) as es:
            current = self.alias_targets(es, tenant, alias)
            older = [n for n in self.builds(es, tenant, kind) if current and n < min(current)]
            if not older:
                raise SearchPublishError(f"tenant {tenant.id!r}: no earlier build of {alias} kept to roll back to")
            target = older[-1]
            es.indices.update_aliases(actions=[*({"remove": {"index": c, "alias": alias}} for c in current),
                                               {"add": {"index": target, "alias": alias}}])
            return target


def _describe_failure(item: dict) -> str:
    op = next(iter(item.values())) if item else {}
    error = op.get("error", {})
    reason = error.get("reason", error) if isinstance(error, dict) else error
    kind = error.get("type", "") if isinstance(error, dict) else ""
    return f"document {op.get('_id')!r}: {kind + ': ' if kind else ''}{reason}"
