"""``create_app(settings)``: everything the server holds is built here, nothing at import."""

from __future__ import annotations

import gc
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.types import ASGIApp

from . import (
    admin,
    admin_billing,
    admin_codes,
    admin_knowledge,
    admin_layers,
    admin_members,
    admin_plans,
    admin_review,
    feedback_routes,
    provenance_routes,
    routes,
    signup,
)
from .access_log import AccessLog
from .admission import Admission
from .allocator import Trimmer
from .audit.keys import AuditKeys
from .catalogue import Catalogue
from .changes import ChangeFeed
from .compliance import Compliance, audit_decision
from .counters import Counters, MemoryCounters, RedisCounters
from .dispatch import ModelGridApp
from .errors import APIError
from .gateway import Gateway
from .housekeeping import Housekeeping
from .journals import build_journals
from .knowledge.embedding import embedder_of
from .knowledge.retrieval import Knowledge
from .knowledge.store import KnowledgeStore
from .labels import Labels
from .layers import build_layers, layer_prices
from .limiter import Limiter, MemoryLimiter, RedisLimiter
from .metering import Meter
from .metrics import Metrics
from .middleware import BodyLimitMiddleware, RequestMiddleware
from .overrides import Overrides
from .pricing import OffPeak, configured_prices, micro
from .process_setup import set_up_process
from .provenance.lookup import Provenance
from .review.reviewer import Reviewer
from .settings import Settings, load_settings
from .shadow import Shadow
from .storage.changes import ChangeStore
from .storage.codes import CodeStore
from .storage.database import Database
from .storage.feedback import FeedbackStore
from .storage.keys import KeyStore
from .storage.members import MemberStore
from .storage.orgs import OrgStore
from .storage.overrides import OverrideStore
from .storage.review_queue import ReviewQueue
from .storage.shadow import ShadowStore
from .watermark import Watermark, operator_key
from .writer import WriterProcess

log = logging.getLogger("modelgrid.server")

SWITCH_INTERVAL = 0.0005  # seconds: see the lifespan below


async def bootstrap(db: Database, keys: KeyStore, settings: Settings) -> str | None:
    """Migrate the schema and make sure an admin key exists; return a newly generated one."""
    await db.migrate()
    if settings.admin_key:
        await keys.ensure(settings.admin_key, name="admin (MODELGRID_ADMIN_KEY)", role="admin")
        return None
    if await keys.has_active("admin"):
        return None
    return await keys.create(name="admin (generated)", role="admin")


def announce_admin_key(key: str) -> None:
    print(
        "\nModelGrid created an admin key. It is shown this once; store it now:\n\n"
        f"    {key}\n\nSet MODELGRID_ADMIN_KEY to choose your own.\n",
        file=sys.stderr,
        flush=True,
    )


def create_app(settings: Settings) -> ModelGridApp:
    db = Database(settings.resolved_database_url, settings.database_pool_size)
    keys = KeyStore(db, cache_seconds=settings.key_cache_seconds)
    # The operator's secrets, made on first start in data_dir (mode 0600): the watermark's
    # key, the audit log's signing key and its pseudonymising secret.
    watermark = Watermark(operator_key(settings.data_dir, settings.watermark_key or None))
    audit_keys = AuditKeys.load_or_create(settings.data_dir)
    catalogue = Catalogue.from_settings(settings, watermark)
    metrics = Metrics()
    for entry in catalogue:
        metrics.watch_engine(entry.id, entry.router.stats)
        metrics.watch_deployments(entry.id, entry.router.snapshot)
    limiter: Limiter = RedisLimiter(settings.redis_url) if settings.redis_url else MemoryLimiter()
    admission = Admission(limiter, settings.all_plans, settings.default_plan)
    counters: Counters = (
        RedisCounters(settings.redis_url) if settings.redis_url else MemoryCounters()
    )
    # A file database only: another process cannot open this one's memory.
    writer = WriterProcess(settings) if settings.writer_process and not db.in_memory else None
    journals = build_journals(settings, db, audit_keys, writer)
    ledger, audit, contents = journals.ledger, journals.audit, journals.contents
    prices, own = configured_prices(settings)
    meter = Meter(
        counters,
        ledger,
        prices | layer_prices(prices, build_layers(settings.models, settings.layers), own),
        OffPeak.parse(settings.off_peak_start, settings.off_peak_end),
        enabled=settings.metering,
        costs=catalogue.costs(),
        cache_seconds=settings.key_cache_seconds,
    )
    changes = ChangeFeed(ChangeStore(db), settings.change_poll_seconds)
    changes.listen("key", keys.key_changed)
    changes.listen("org", keys.org_changed)
    changes.listen("member", keys.member_changed)
    changes.listen("credits", meter.granted_changed)
    if changes.polling:
        metrics.watch_change_feed(changes.age)
    guard = settings.review.guard.model
    reviewer = Reviewer(settings.review, catalogue.resolve(guard).engine if guard else None)
    review_queue = ReviewQueue(
        db,
        settings.data_dir / "journal",
        flush_interval=1.0,
        on_decision=audit_decision(audit, audit_keys),
    )
    compliance = Compliance(reviewer, audit, audit_keys, contents, review_queue)
    for name, store in [*journals.by_name().items(), ("review-queue", review_queue)]:
        metrics.watch_journal(name, store)
    if writer is not None:
        metrics.watch_writer(lambda: writer.starts)
    embedder = settings.knowledge.embedding_model
    knowledge = Knowledge(
        KnowledgeStore(db),
        embedder_of(catalogue.resolve(embedder).engine) if embedder else None,
        embedder,
        settings.knowledge.candidates,
    )
    gateway = Gateway(
        keys,
        catalogue,
        metrics,
        admission,
        meter,
        Labels(settings.provider_code),
        compliance,
        knowledge,
        Shadow(catalogue, meter, ShadowStore(db)),
        journals,
    )
    overrides = Overrides(OverrideStore(db), admission, meter, settings, catalogue=catalogue)
    access_log = AccessLog(fmt=settings.log_format, enabled=settings.log_level in ("debug", "info"))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        new_key = await bootstrap(db, keys, settings)
        if new_key is not None:
            announce_admin_key(new_key)
        await changes.start()  # before any key or balance is cached
        if writer is not None:
            await writer.start()  # after the migrations, which it does not run
        # Entries a killed process left in its journal reach the database before any request.
        await ledger.start()
        if ledger.replayed:
            log.warning("ledger recovered", extra={"entries": ledger.replayed})
        await audit.start()
        await contents.start()
        await review_queue.start()
        if audit.replayed:
            log.warning("audit log recovered", extra={"records": audit.replayed})
        await reviewer.start()  # the term lists, then reloaded whenever they change
        housekeeping = Housekeeping(
            db,
            settings.ledger_retention_days,
            lambda: {name: plan.retention_days for name, plan in admission.plans.items()},
            contents=contents,
            content_retention_days=settings.content_retention_days,
        )
        housekeeping.start()  # hourly roll-ups and daily pruning, safe on every replica
        await overrides.start()  # plans and prices set through the admin API
        await counters.start()  # hands back reservations of replicas that died
        await catalogue.start()
        access_log.start()
        trimmer = Trimmer(settings.memory_trim_seconds)
        trimmer.start()
        # Everything built so far lives as long as the server: keep it out of the collector's
        # full passes, which otherwise stall requests for tens of milliseconds.
        gc.freeze()
        # Requests free nearly all they allocate by reference counting, but 16 in flight
        # hold more than the default 700 young objects, so a young collection ran every few
        # requests (about 6% of a proxied request's CPU, measured with gc.callbacks) and
        # found almost nothing. 10,000 still collects cycles, a few times a minute.
        gc.set_threshold(10_000)
        # The threads beside the event loop (the database driver's, the MinHash worker, the
        # HTTP client's) run Python too, and CPython hands the GIL back to a waiting thread
        # only every switch interval: 5 ms by default, a stall for whatever request the
        # loop was serving. At 0.5 ms, p99 at concurrency 1 fell from about 10 ms to 6-7
        # (docs/benchmarks.md), with no loss of throughput.
        sys.setswitchinterval(SWITCH_INTERVAL)
        log.info("ready", extra={"models": [entry.id for entry in catalogue]})
        try:
            yield
        finally:
            access_log.close()
            await trimmer.close()
            await changes.close()
            await gateway.shadow.close()  # runs in flight meter and store before the rest
            await catalogue.close()
            await housekeeping.close()
            await overrides.close()
            await reviewer.close()
            await ledger.close()
            await audit.close()
            await contents.close()
            await review_queue.close()
            if writer is not None:
                await writer.close()  # after the journals' last batches
            await limiter.close()
            await counters.close()
            await db.close()

    def wrapped(endpoint: ASGIApp) -> ASGIApp:
        limited = BodyLimitMiddleware(endpoint, max_bytes=settings.max_body_bytes)
        return RequestMiddleware(limited, metrics=metrics, access_log=access_log)

    app = ModelGridApp(
        routes=routes.routes
        + admin.routes
        + admin_billing.routes
        + admin_codes.routes
        + admin_members.routes
        + admin_plans.routes
        + admin_knowledge.routes
        + admin_layers.routes
        + provenance_routes.routes
        + feedback_routes.routes
        + admin_review.routes
        + signup.routes,
        middleware=[
            Middleware(RequestMiddleware, metrics=metrics, access_log=access_log),
            Middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes),
        ],
        exception_handlers={APIError: routes.api_error, HTTPException: routes.http_error},
        lifespan=lifespan,
        direct=routes.direct,
        wrap=wrapped,
    )
    app.state.settings = settings
    app.state.gateway = gateway
    app.state.audit = audit
    app.state.review_queue = review_queue
    app.state.provenance = Provenance(contents)
    app.state.feedback = FeedbackStore(db)
    app.state.orgs = OrgStore(db)
    app.state.codes = CodeStore(db)
    app.state.members = MemberStore(db)
    app.state.overrides = overrides
    app.state.starting_credits = micro(settings.starting_credits)
    return app


def app_from_environment() -> ModelGridApp:
    """The factory each worker process calls (``serve --workers N``): a spawned worker starts
    with a fresh interpreter, so its logging is set up here, as ``serve`` does for one."""
    settings = load_settings()
    set_up_process(settings)
    return create_app(settings)
