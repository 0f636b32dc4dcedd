"""Update a store in place: a re-run on a changed input set embeds only what changed.

**The plan.** Each item of the new input set is matched by its key with the store's catalog (:mod:`.catalog`):

* *unchanged*: same content and columns: its rows stay;
* *changed*: same key, other content (embedded again unless that content is stored elsewhere) or only other columns
  (its vectors copied into new rows);
* *new*: a key the store does not have: embedded, unless its content is stored under another key: *moved* when that
  key is gone from the inputs, *duplicate* when it is still there; either way the stored vectors are copied, no
  model call;
* *deleted*: a stored key the inputs no longer have: its rows go (``keep_deleted`` keeps them).

A changed PDF file is embedded again page by page: a page whose content hash
(:func:`~lco_embedding.preprocessing.pdf.page_digests`) the stored version holds keeps that page's vector, wherever it
moved in the document; only the other pages go to the model (``pages_kept`` counts the pages kept).

A folder's files are matched by size and modification time first: an unchanged file is not read. Tables are read
(their rows are the data), and a table row's content covers its item and the size and time of the local media it
names.

**Exactly once, and atomic.** Nothing committed is rewritten. The update writes its rows (new row numbers), failures
(new positions) and catalog entries shard by shard, each shard committed into the manifest's ``update`` entry, which
no reader looks at; a killed update resumes from its last staged shard when the plan is the same (the inputs did
not change meanwhile), and starts over otherwise. Then **one manifest write** (the commit point) makes the staged
shards visible and drops the replaced and deleted rows and failures (:mod:`.visibility`). A reader that read the
manifest before it sees the store as it was, one that reads it after sees the update whole: never an item twice, or
a changed item missing. Dropped rows stay in the shards, table or collection (no reader of lco-embed sees them; a
reader of the LanceDB table or Milvus collection itself does, with ``row`` numbers the manifest drops).

Does not retry items that failed and have not changed (use ``--overwrite`` to retry every failure), and does not
reclaim the space of dropped rows.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from lco_embedding.core.modalities import PDF
from lco_embedding.corpus.catalog import Catalog, Entry, Keys, fingerprint, meta_of, stat_of
from lco_embedding.corpus.input_plan import InputSpec, extra_columns, file_modality
from lco_embedding.corpus.records import UNKNOWN, Record, file_record, records_of
from lco_embedding.corpus.shards import Shard, write_outcomes
from lco_embedding.corpus.visibility import add_ranges, visible
from lco_embedding.inputs.documents import PAGES
from lco_embedding.segments.result import SourceSegments

__all__ = [
    "PLAN_KINDS",
    "UpdatePlan",
    "apply_update",
    "commit_update",
    "load_catalog",
    "plan_summary",
    "plan_update",
    "stage_records",
]

PLAN_KINDS = ("new", "changed", "unchanged", "moved", "duplicate", "deleted")
"""How the items of an update's input set stand against the store (see the module)."""


@dataclass
class Planned:
    """One record the update writes: embedded (``source`` None) or copied from a stored entry. A changed PDF keeps
    the stored rows of its pages whose hash is unchanged (``kept_pages``: page -> stored row) and embeds only the
    others (``item["pages"]``)."""

    record: Record
    source: Entry | None
    kept_pages: dict[int, int] = field(default_factory=dict)

    @property
    def embeds(self) -> bool:
        """True when the model embeds some of it."""
        return self.source is None and not (self.kept_pages and self.record.item.get(PAGES) == [])


@dataclass
class UpdatePlan:
    """What an update does (see the module).

    Attributes:
        counts: Items per kind of :data:`PLAN_KINDS`, and ``embed`` (items the model embeds) and ``copy`` (items
            whose stored vectors are copied).
        write: The records that get new rows (or failures), in input order.
        dropped: The stored entries whose rows and failures go.
        digest: Identifies the plan, so that a killed update resumes only the same plan.
    """

    counts: dict[str, int]
    write: list[Planned] = field(default_factory=list)
    dropped: list[Entry] = field(default_factory=list)
    digest: str = ""

    @property
    def changes(self) -> bool:
        """True when the update writes or drops anything."""
        return bool(self.write or self.dropped)

    def summary(self) -> str:
        """:func:`plan_summary` of the counts."""
        return plan_summary(self.counts)


def plan_summary(counts: dict[str, int]) -> str:
    """``"8 items: 1 new, 0 changed, 7 unchanged, 0 deleted"`` (moved and duplicates when there are any)."""
    items = sum(counts[kind] for kind in PLAN_KINDS if kind != "deleted")
    shown = [kind for kind in PLAN_KINDS if kind in ("new", "changed", "unchanged", "deleted") or counts[kind]]
    kept = f"; {counts['pages_kept']:,} pages of changed PDFs kept" if counts.get("pages_kept") else ""
    return f"{items:,} items: " + ", ".join(f"{counts[kind]:,} {kind}" for kind in shown) + kept


def load_catalog(store: Any, manifest: dict[str, Any]) -> Catalog:
    """The catalog entries a reader of the store sees (:class:`~lco_embedding.corpus.catalog.Catalog`).

    Raises:
        ValueError: The store was written before catalogs existed (it cannot be updated in place).
    """
    for shard in manifest["shards"]:
        if not shard.get("catalog"):
            raise ValueError(
                f"{store.location!r} was written by an earlier lco-embedding, which kept no catalog of its items: it "
                "cannot be updated in place. Pass --overwrite (overwrite=True) to embed it again."
            )
    tables = [store.read_catalog(shard["catalog"]) for shard in manifest["shards"]]
    return Catalog(tables, visible(manifest))


def _candidates(specs: list[InputSpec], catalog: Catalog, stdin: IO[str] | None) -> Iterator[Any]:
    """Each item of the inputs, in order: a stored key (an unchanged file, not read), or a fingerprinted record."""
    keys = Keys()
    for spec in specs:
        if spec.kind == "folder":
            root = os.path.join(spec.path or os.path.abspath(spec.argument), "")
            shown = os.path.join(spec.argument, "")
            for relative, modality, stat in spec.files:  # listed and stat'ed once, by plan_inputs
                yield _file_candidate(shown + relative, root + relative, modality or UNKNOWN, stat, catalog, keys)
        elif spec.kind == "file":
            path = spec.path or os.path.abspath(spec.argument)
            yield _file_candidate(spec.argument, path, file_modality(path) or "text", stat_of(path), catalog, keys)
        else:
            for record in records_of(spec, 0, 0, stdin or sys.stdin):
                assert isinstance(record, Record)
                record.entry = fingerprint(record, keys(record.id))
                yield record


def _file_candidate(
    display: str, path: str, modality: str, stat: tuple[int, int] | None, catalog: Catalog, keys: Keys
) -> Any:
    """``display``'s key when it is stored with this size, time and columns (its content is not read), else its
    fingerprinted record. ``path`` is absolute."""
    key = keys(display)
    if catalog.unchanged_file(key, stat, meta_of(display, path, modality, {})):
        return key
    record = file_record(0, display, path)
    record.entry = fingerprint(record, key)
    return record


def plan_update(
    specs: list[InputSpec],
    catalog: Catalog,
    *,
    keep_deleted: bool = False,
    stdin: IO[str] | None = None,
    events: Callable[[str, int], None] | None = None,
) -> UpdatePlan:
    """The update of a store with ``catalog`` to the input set ``specs`` (see the module); ``events`` is called
    with ``("fingerprint", n)`` after the n-th item that had to be read."""
    counts = dict.fromkeys((*PLAN_KINDS, "embed", "copy", "pages_kept"), 0)
    by_content = catalog.by_content()
    present: set[str] = set()
    write: list[Planned] = []
    dropped: list[Entry] = []
    reused_elsewhere: list[tuple[Planned, Entry]] = []
    fingerprinted = 0
    for candidate in _candidates(specs, catalog, stdin):
        if isinstance(candidate, str):
            present.add(candidate)
            counts["unchanged"] += 1
            continue
        fingerprinted += 1
        if events is not None:
            events("fingerprint", fingerprinted)
        entry: Entry = candidate.entry
        present.add(entry.key)
        stored = catalog.get(entry.key)
        if stored is not None and stored.content == entry.content and stored.meta == entry.meta:
            counts["unchanged"] += 1
            continue
        if stored is not None and stored.content == entry.content:
            source: Entry | None = stored
        else:
            at = by_content.get(entry.content)
            source = None if at is None else catalog.entry(at)
        planned = Planned(candidate, source)
        if source is None and stored is not None:
            _keep_pages(planned, stored)
            counts["pages_kept"] += len(planned.kept_pages)
        write.append(planned)
        if stored is not None:
            counts["changed"] += 1
            dropped.append(stored)
        elif source is not None:
            reused_elsewhere.append((planned, source))
        else:
            counts["new"] += 1
        counts["embed" if planned.embeds else "copy"] += 1
    gone = {key: catalog.entry(at) for key, at in catalog.index.items() if key not in present}
    claimed: set[str] = set()
    for _, source in reused_elsewhere:
        if source.key in gone and source.key not in claimed:
            claimed.add(source.key)
            counts["moved"] += 1
        else:
            counts["duplicate"] += 1
    if not keep_deleted:
        dropped += gone.values()
        counts["deleted"] = len(gone) - len(claimed)
    if not counts["pages_kept"]:
        del counts["pages_kept"]  # named only where a changed PDF kept pages
    plan = UpdatePlan(counts, write, dropped)
    plan.digest = _digest(plan)
    return plan


def _keep_pages(planned: Planned, stored: Entry) -> None:
    """Plan a changed PDF page by page: keep the stored rows of the pages whose hash the stored version holds, and
    embed only the others."""
    old, new = stored.document(), planned.record.entry.document()
    if old is None or new is None or stored.row is None:
        return
    rows: dict[str, int] = {}
    for at, page in enumerate(old.row_pages()):
        digest = old.digests[page - 1]
        if digest is not None:
            rows.setdefault(digest, stored.row + at)
    kept = {page: rows[d] for page, d in enumerate(new.digests, 1) if d is not None and d in rows}
    if kept:
        planned.kept_pages = kept
        left = [page for page in range(1, len(new.digests) + 1) if page not in kept]
        planned.record.item = {**planned.record.item, PAGES: left}


def _digest(plan: UpdatePlan) -> str:
    hasher = hashlib.blake2b(digest_size=16)
    for planned in plan.write:
        entry = planned.record.entry
        origin = "embed" if planned.source is None else str(planned.source.position)
        origin += "".join(f",{page}:{row}" for page, row in planned.kept_pages.items())
        hasher.update(f"w\0{entry.key}\0{entry.content}\0{entry.meta}\0{origin}\n".encode("utf-8", "surrogatepass"))
    for entry in sorted(plan.dropped, key=lambda e: e.position):
        hasher.update(f"d\0{entry.position}\n".encode())
    return hasher.hexdigest()


def stage_records(
    plan: UpdatePlan,
    store: Any,
    first_position: int,
    done: int,
    embed: Callable[[Iterable[Record]], Iterator[tuple[Record, Any, str | None]]] | None,
    segmented: bool,
) -> Iterator[tuple[Record, Any, str | None]]:
    """``(record, embedding or segments, error)`` of the plan's records from its ``done``-th on, numbered from
    ``first_position`` in plan order: embedded by ``embed`` (the job's runner: this process or Ray), or copied from
    the store's rows."""
    todo = plan.write[done:]
    for offset, planned in enumerate(todo):
        planned.record.position = planned.record.entry.position = first_position + done + offset
    outcomes = iter(embed(p.record for p in todo if p.embeds)) if embed is not None else iter(())
    for planned in todo:
        if planned.embeds:
            record, result, error = next(outcomes)
            if record is not planned.record:
                raise RuntimeError(f"the model answered {record.id!r} where {planned.record.id!r} was due.")
            if planned.kept_pages:
                result, error = _with_kept_pages(store, planned, result, error)
            yield record, result, error
        elif planned.kept_pages:
            yield planned.record, *_with_kept_pages(store, planned, None, None)
        else:
            yield planned.record, *_copied(store, planned.source, segmented)


def _with_kept_pages(store: Any, planned: Planned, result: Any, error: str | None) -> tuple[Any, str | None]:
    """A changed PDF's rows in page order: the kept pages' stored vectors and the embedded pages' new ones (a page
    that failed is listed in ``failed_pages``; when every embedded page failed, each carries that error)."""
    embedded = list(planned.record.item.get(PAGES) or [])
    vectors: dict[int, Any] = {}
    failed: dict[int, str] = {}
    if result is not None:
        vectors.update(zip((int(p) for p in result.start), result.embeddings, strict=True))
        failed.update(result.failed_pages)
    elif embedded:
        failed.update(dict.fromkeys(embedded, error or "failed"))
    kept = sorted(planned.kept_pages)
    vectors.update(zip(kept, store.row_vectors([planned.kept_pages[p] for p in kept]), strict=True))
    pages = sorted(vectors)
    places = [{"start": float(p), "end": float(p)} for p in pages]
    return SourceSegments.from_places(0, [vectors[p] for p in pages], places, PDF, failed), None


def _copied(store: Any, source: Entry, segmented: bool) -> tuple[Any, str | None]:
    """A stored entry's embedding (its segments', with a document's failed pages) or its failure, to be written
    again under another key."""
    if source.row is None or not source.rows:
        return None, source.error or "failed"
    numbers = list(range(source.row, source.row + source.rows))
    vectors = store.row_vectors(numbers)
    if not segmented:
        return vectors[0], None
    document = source.document()
    failed = document.failed if document is not None else {}
    return SourceSegments.from_places(0, vectors, store.rows(numbers, ["start", "end"]), PDF, failed), None


def commit_update(store: Any, manifest: dict[str, Any], plan: UpdatePlan) -> None:
    """The update's commit point: its staged shards become visible and the rows and failures it replaced or
    deleted are dropped, in one manifest write."""
    update = manifest.pop("update")
    seen = visible(manifest)
    counts = manifest["counts"]
    rows = manifest.get("rows") or {"next": seen.next_row, "dropped": []}
    positions = manifest.get("positions") or {"next": seen.next_position, "dropped": []}
    dropped_rows = [n for e in plan.dropped if e.row is not None for n in range(e.row, e.row + e.rows)]
    manifest["shards"] += update["shards"]
    manifest["rows"] = {"next": update["next_row"], "dropped": add_ranges(rows["dropped"], dropped_rows)}
    manifest["positions"] = {
        "next": update["next_position"],
        "dropped": add_ranges(positions["dropped"], [entry.position for entry in plan.dropped]),
    }
    new_failed = sum(shard["failed"] for shard in update["shards"])
    new_rows = sum(shard["rows"] for shard in update["shards"])
    after = visible(manifest)
    counts["embedded"] = after.next_row - after.dropped_rows.size
    counts["done"] = counts["total"] = after.next_position - after.dropped_positions.size
    counts["failed"] = counts["failed"] - sum(1 for entry in plan.dropped if entry.error is not None) + new_failed
    partial = counts.get("partial", 0) - sum(1 for e in plan.dropped if e.error is not None and e.rows)
    partial += sum(shard.get("partial", 0) for shard in update["shards"])
    if partial or "partial" in counts:
        counts["partial"] = partial
    manifest["status"] = "complete"
    manifest["last_update"] = {**plan.counts, "rows_written": new_rows}
    store.write_manifest(manifest)


def apply_update(
    store: Any,
    manifest: dict[str, Any],
    plan: UpdatePlan,
    specs: list[InputSpec],
    embed: Callable[[Iterable[Record]], Iterator[tuple[Record, Any, str | None]]] | None,
    *,
    show_progress_bar: bool = False,
    on_failure: Callable[[dict[str, Any]], None] | None = None,
    events: Callable[[str, int], None] | None = None,
) -> float:
    """Stage the plan's records shard by shard (resuming a staged update of the same plan), then commit it
    (:func:`commit_update`); the seconds it took.

    Args:
        store: The store, locked and recovered.
        manifest: Its manifest.
        plan: :func:`plan_update`'s plan.
        specs: The input set (for the extra columns).
        embed: The records to embed -> their outcomes, in order (the runner's; None when the plan embeds nothing).
        show_progress_bar: A progress bar over the records written.
        on_failure: Called with each new failure's entry.
        events: Called with ``("record", n)`` after the n-th record and ``("commit", n)`` after the n-th staged
            shard's commit, and ``("update", 0)`` right before the update's own commit.
    """
    from tqdm.auto import tqdm

    began = time.perf_counter()
    stop_at = events or (lambda event, count: None)
    update = manifest.get("update")
    if update is not None and update.get("plan") != plan.digest:  # another plan: start it over
        manifest.pop("update")
        store.write_manifest(manifest)
        store.recover()
        update = None
    if update is None:
        seen = visible(manifest)
        update = {"plan": plan.digest, "shards": [], "done": 0, "next_row": seen.next_row}
        update["first_position"] = update["next_position"] = seen.next_position
        manifest["update"] = update
        store.write_manifest(manifest)
    options = manifest["options"]
    segmented = options.get("segment") is not None
    columns = extra_columns(specs)
    size, precision, dimension = options["shard_size"], options["precision"], manifest["dimension"]
    index = len(manifest["shards"]) + len(update["shards"])
    shard = Shard(index, update["next_position"], size, columns, segmented, update["next_row"])
    staged = 0

    def commit() -> None:
        nonlocal shard, staged
        if shard.last >= shard.start:
            entry = shard.entry()
            update["done"] += shard.last + 1 - shard.start
            update["next_position"] = shard.last + 1
            update["next_row"] = shard.row + len(shard.ids)
            table = shard.table(precision, dimension, manifest["int8_ranges"])
            store.commit_shard(manifest, entry, table, shard.errors, shard.catalog())
            staged += 1
            stop_at("commit", staged)
        shard = Shard(shard.index + 1, shard.last + 1, size, columns, segmented, update["next_row"])

    stream = stage_records(plan, store, update["first_position"], update["done"], embed, segmented)
    with tqdm(total=len(plan.write), initial=update["done"], unit="item", desc="Updating",
              disable=not show_progress_bar) as bar:  # fmt: skip
        write_outcomes(stream, lambda: shard, commit, stop_at, on_failure, bar)
        commit()
    stop_at("update", 0)
    commit_update(store, manifest, plan)
    return time.perf_counter() - began
