"""One harvest run of a source: read the remote catalog, write a draft manifest for every
dataset that is new or changed since the last run, and report what changed.

    run_source(home, name) -> RunReport

is the one entry point, for `taza harvest run` and for scheduled runs (the job queue calls it
with the source's name; docs/harvest.md). Drafts go through the stewards' workflow
(catalog/stewards/drafts.py) as the user `harvest:<source>` acting for the source's
organisation: they are never submitted, approved or published here. A dataset that disappears
from the remote is reported as gone and left alone (it may be published; a steward decides).
A remote that cannot be read changes nothing: the run reports the error, and the next run
compares with the last good one.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path

from catalog.harvest import mapping, registry
from catalog.harvest.fetch import Fetcher, FetchError
from catalog.harvest.kinds.ckan import CkanKind
from catalog.harvest.kinds.csw import CswKind
from catalog.harvest.kinds.ogcapi_features import OgcApiFeaturesKind
from catalog.harvest.kinds.ogcapi_records import OgcApiRecordsKind
from catalog.harvest.kinds.stac import StacKind
from catalog.harvest.remote import MAX_DATASETS, RemoteDataset, SourceKind
from catalog.stewards import accounts, drafts
from catalog.stewards.accounts import User
from catalog.stewards.errors import Conflict, ServiceError
from catalog.store import CatalogStore

KIND_OF: dict[str, type] = {"stac": StacKind, "ckan": CkanKind,
                            "ogcapi-features": OgcApiFeaturesKind,
                            "ogcapi-records": OgcApiRecordsKind, "csw": CswKind}


@dataclass
class RunReport:
    source: str
    started: str
    finished: str = ""
    new: list[str] = field(default_factory=list)  # dataset ids
    changed: list[str] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    unchanged: int = 0
    failed: list[dict] = field(default_factory=list)  # {remote_id, dataset_id, error}
    error: str | None = None  # the remote could not be read: nothing changed
    # The error's code and params (FetchError's), so that `taza harvest list` can say it in
    # the operator's language; `error` stays the English message scripts read.
    error_code: str | None = None
    error_params: dict = field(default_factory=dict)
    requests: int = 0
    limit_reached: bool = False  # the remote listed MAX_DATASETS or more: the rest was not read

    def as_json(self) -> dict:
        return asdict(self)


def run_source(home: Path, name: str, today: dt.date | None = None) -> RunReport:
    home = Path(home)
    with registry.locked(home):
        source = registry.source(home, name)
        report = RunReport(name, _now())
        previous = registry.state(home, name)
        fetcher = Fetcher()
        try:
            found = _read(kind_of(source), fetcher, source["url"])
        except FetchError as err:
            report.error = str(err)
            report.error_code, report.error_params = err.code, _plain(err.params)
        else:
            report.limit_reached = len(found) >= MAX_DATASETS
            seen = _apply(home, source, previous["datasets"], found, report,
                          today or dt.date.today())
            report.gone = sorted(previous["datasets"][r]["dataset_id"]
                                 for r in previous["datasets"] if r not in found)
            previous["datasets"] = seen
        report.requests = fetcher.requests_made
        report.finished = _now()
        previous["last_run"] = report.as_json()
        registry.save_state(home, name, previous)
    return report


def _plain(params: dict) -> dict:
    """Params kept in the registry's JSON state: numbers and strings as they are, anything
    else (an exception's reason) as its text."""
    return {key: value if isinstance(value, int | float | str) else str(value)
            for key, value in params.items()}


def kind_of(source: dict) -> SourceKind:
    kind = KIND_OF.get(source["type"])
    if kind is None:
        raise registry.NotSupported(f"harvesting {source['type']} sources is not supported yet",
                                    code="not_supported", params={"kind": source["type"]})
    return kind()


def _read(kind: SourceKind, fetcher: Fetcher, url: str) -> dict[str, RemoteDataset]:
    found: dict[str, RemoteDataset] = {}
    for dataset in kind.datasets(fetcher, url):
        if dataset.remote_id and dataset.remote_id not in found:
            found[dataset.remote_id] = dataset
    return found


def _apply(home: Path, source: dict, previous: dict, found: dict[str, RemoteDataset],
           report: RunReport, today: dt.date) -> dict:
    """Drafts for new and changed datasets; the state to keep (failed ones are retried)."""
    harvester = harvester_account(home, source)
    store = CatalogStore(home)
    kept = {}
    for remote_id, dataset in found.items():
        known = previous.get(remote_id)
        dataset_id = known["dataset_id"] if known else \
            mapping.dataset_id(source["name"], remote_id)
        fingerprint = dataset.fingerprint()
        if known and known["fingerprint"] == fingerprint:
            report.unchanged += 1
            kept[remote_id] = known
            continue
        try:
            if not known:
                _register(home, store, harvester, dataset_id, source["organisation"])
            text = mapping.manifest(dataset, dataset_id, source, today)
            drafts.put_manifest(home, harvester, dataset_id, text)
        except ServiceError as err:
            report.failed.append({"remote_id": remote_id, "dataset_id": dataset_id,
                                  "error": str(err)})
            if known:
                kept[remote_id] = known  # still ours; the change is tried again next run
            continue
        (report.changed if known else report.new).append(dataset_id)
        kept[remote_id] = {"dataset_id": dataset_id, "fingerprint": fingerprint,
                           "landing_url": dataset.landing_url}
    return kept


def harvester_account(home: Path, source: dict) -> User:
    """The source's account in the stewards' service: a steward of its organisation named
    `harvest-<source>`, so drafts and audit entries say who made them. Created with a random
    password that is never shown (nobody signs in as it)."""
    name = f"harvest-{source['name']}"
    existing = next((u for u in accounts.list_users(home) if u.name == name), None)
    if existing is None:
        try:
            existing, _ = accounts.add_user(home, name, "steward", source["organisation"],
                                            source["email"], actor=f"harvest:{source['name']}",
                                            password=secrets.token_urlsafe(32))
        except accounts.AccountError:
            # Made meanwhile by another process: `taza harvest add` makes it just after the
            # source, and a worker's scheduler may start the first run in between.
            existing = next((u for u in accounts.list_users(home) if u.name == name), None)
            if existing is None:
                raise
    if existing.organisation != source["organisation"] or existing.disabled:
        raise registry.HarvestError(f"the account {name!r} belongs to organisation "
                                    f"{existing.organisation!r} or is disabled: remove the "
                                    "source and add it under another name",
                                    code="account_taken",
                                    params={"name": name, "organisation": existing.organisation})
    return existing


def _register(home: Path, store: CatalogStore, harvester: User, dataset_id: str,
              organisation: str) -> None:
    """The dataset in the stewards' service, for the source's organisation. One that exists
    already is taken only when that organisation owns it (a state file lost)."""
    try:
        drafts.create_dataset(home, store, harvester, dataset_id, organisation)
    except Conflict:
        if drafts.get_dataset(home, store, harvester, dataset_id).get("organisation") \
                != organisation:
            raise


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
