"""The dialog table: INVITE calls followed from offer to BYE (RFC 3261 12, 13, 15).

Keyed by Call-ID (the tags are stored and reported; forked early dialogs of one Call-ID share an
entry). Bounded: when full, the least recently active call is evicted. Time-limited: ``tick``
drops ended calls after a linger period and idle calls after a timeout. ``DialogTable`` of
``Dialog`` objects is the reference; ``native_table`` runs it on the C table of plain structs
(``_native/sip_dialog.c``) that the batch path updates.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from importlib import import_module
from typing import Any

__all__ = ["Dialog", "DialogTable", "native_table"]

ENDED = frozenset({"terminated", "failed", "cancelled"})
#: Final responses to an INVITE after which the caller may send it again within the same call
#: (same Call-ID and From tag, a higher CSeq): a redirect (3xx) or an authentication challenge.
#: 422: RFC 4028 session interval too small, retried with a larger Min-SE.
RETRY_STATUS = frozenset({401, 407, 422})


def cseq_number(labels: dict[str, str]) -> int:
    """The CSeq number of a message (``sip.cseq`` is ``"<number> <method>"``; 0 without one)."""
    head = labels.get("sip.cseq", "").split(" ", 1)[0]
    if not (head.isascii() and head.isdigit() and len(head) <= 10):
        return 0
    n = int(head)
    return n if n <= 0xFFFFFFFF else 0  # the parser rejects larger ones (bad_cseq)


#: Via branches of one INVITE a call follows (parallel forking seen between proxy and phones).
MAX_BRANCHES = 4


def branch_key(labels: dict[str, str]) -> int:
    """The top Via branch of a message as a 64-bit FNV-1a hash of its UTF-8 (0 without one):
    what a call keeps of its INVITE's transaction (``_native/sip_dialog.c`` hashes the same)."""
    branch = labels.get("sip.via_branch")
    if branch is None:
        return 0
    h = 0xCBF29CE484222325
    for c in branch.encode("utf-8", "surrogatepass"):
        h = ((h ^ c) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def retryable(code: int) -> bool:
    """A final response that leaves the call waiting for the caller's new INVITE."""
    return 300 <= code < 400 or code in RETRY_STATUS


#: Upper bounds (ms) of the call setup histogram ``call_setup.le_<ms>`` (INVITE to first 2xx).
SETUP_BOUNDS_MS = (100, 250, 500, 1000, 2500, 5000, 10000, 30000)


class _DialogMethods:
    """What ``Dialog`` and the C table's handles (``native_table``) share: the labels."""

    __slots__ = ()
    state: str
    caller: str
    callee: str
    call_id: str
    from_tag: str
    to_tag: str
    branches_done: int
    invite_branches: tuple[int, ...]
    invite_cseq: int
    invite_ns: int
    ring_ns: int
    answer_ns: int
    end_ns: int
    final_status: int

    def labels(self) -> dict[str, str]:
        """The ``sip.call_*`` labels of this call so far."""
        out: dict[str, str] = {}
        self.add_labels(out)
        return out

    def add_labels(self, out: dict[str, str]) -> None:
        """Add ``labels()`` to ``out`` in the same order (no intermediate dict per message)."""
        out["sip.call_state"] = self.state
        if self.caller:
            out["sip.caller"] = self.caller
        if self.callee:
            out["sip.callee"] = self.callee
        if self.ring_ns:
            out["sip.ring_ms"] = str((self.ring_ns - self.invite_ns) // 1_000_000)
        if self.answer_ns:
            out["sip.answer_ms"] = str((self.answer_ns - self.invite_ns) // 1_000_000)
        if self.final_status:
            out["sip.final_status"] = str(self.final_status)
        if self.end_ns and self.answer_ns:
            out["sip.duration_ms"] = str((self.end_ns - self.answer_ns) // 1_000_000)

    def as_dict(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id,
            "state": self.state,
            "from_tag": self.from_tag,
            "to_tag": self.to_tag,
            **self.labels(),
        }


class Dialog(_DialogMethods):
    """State of one call (the pure-Python table's; the C table's handles read and write the
    same attributes, ``native_table``)."""

    __slots__ = (
        "answer_ns",
        "branches_done",
        "call_id",
        "callee",
        "caller",
        "cancel_seen",
        "end_ns",
        "final_status",
        "from_tag",
        "invite_branches",
        "invite_cseq",
        "invite_ns",
        "last_ns",
        "ring_ns",
        "state",
        "to_tag",
    )

    def __init__(self, call_id: str, now_ns: int) -> None:
        self.call_id = call_id
        self.state = "trying"
        self.invite_ns = now_ns
        #: CSeq number and Via branches (``branch_key``) of the call's latest initial INVITE: a
        #: retransmission repeats both; a forking proxy sends one INVITE per branch, and the
        #: call fails only when every branch has a final response (bit k of ``branches_done``).
        self.invite_cseq = 0
        self.invite_branches: tuple[int, ...] = ()
        self.branches_done = 0
        self.last_ns = now_ns
        self.ring_ns = 0
        self.answer_ns = 0
        self.end_ns = 0
        self.final_status = 0
        self.from_tag = ""
        self.to_tag = ""
        self.caller = ""
        self.callee = ""
        self.cancel_seen = False


class DialogTable:
    """Bounded, time-limited table of calls; counters for ``stats()``."""

    def __init__(self, max_dialogs: int, early_ns: int, confirmed_ns: int, linger_ns: int) -> None:
        self.max_dialogs = max_dialogs
        self.early_ns = early_ns
        self.confirmed_ns = confirmed_ns
        self.linger_ns = linger_ns
        self._d: OrderedDict[str, Dialog] = OrderedDict()
        #: The table's lookup and "most recently active" (the C table's in ``native_table``).
        self._lookup: Callable[[str], Dialog | None] = self._d.get
        self._touch: Callable[[str], None] = self._d.move_to_end
        self.created = 0
        self.evicted = 0
        self.expired = 0
        self.by_outcome: dict[str, int] = {}
        #: Call setup times: per-bucket (not cumulative) counts, the count and the sum in ms.
        self.setup_buckets = [0] * len(SETUP_BOUNDS_MS)
        self.setup_count = 0
        self.setup_sum_ms = 0
        #: Call-IDs of calls that ended since the caller last drained this list.
        self.ended: list[Dialog] = []

    def __len__(self) -> int:
        return len(self._d)

    @property
    def calls(self) -> dict[str, Dialog]:
        """Call-ID to dialog, least recently active first (the table itself here)."""
        return self._d

    def get(self, call_id: str) -> Dialog | None:
        return self._d.get(call_id)

    def update(self, labels: dict[str, str], status: int, ts_ns: int) -> Dialog | None:
        """Advance the call of one message; None if not an INVITE call.

        ``labels`` are the message's ``sip.*`` labels (``parser.labels_of``), which carry all
        the dialog needs; ``status`` is the status code of a response, 0 for a request.
        """
        call_id = labels["sip.call_id"]
        d = self._lookup(call_id)
        if not status:
            method = labels["sip.method"]
            if d is None:
                if method != "INVITE":
                    return None
                d = self._create(call_id, labels, ts_ns)
            elif method == "INVITE" and not labels.get("sip.to_tag"):
                cseq = cseq_number(labels)
                key = branch_key(labels)
                same = cseq == d.invite_cseq and labels.get("sip.from_tag", "") == d.from_tag
                if same and key in d.invite_branches:
                    pass  # a retransmission of the call's INVITE (its final response lost)
                elif d.state in ENDED:
                    d = self._create(call_id, labels, ts_ns)  # a new call reusing the Call-ID
                elif d.state == "confirmed":
                    pass
                elif d.final_status:
                    # the caller tries again after a 401/407/422 or a 3xx: the same call, a
                    # new INVITE transaction (RFC 3261 22.2, 8.1.3.4; RFC 4028)
                    d.final_status = 0
                    d.to_tag = ""
                    d.invite_cseq = cseq
                    d.invite_branches = (key,)
                    d.branches_done = 0
                elif same and len(d.invite_branches) < MAX_BRANCHES:
                    d.invite_branches += (key,)  # a forking proxy's next branch
            elif method == "CANCEL":
                d.cancel_seen = True
            elif method == "BYE" and d.state not in ENDED:
                self._end(d, "terminated", ts_ns)
        else:
            if d is None:
                return None
            code = status
            if labels["sip.cseq_method"] == "INVITE":
                to_tag = labels.get("sip.to_tag")
                if d.to_tag == "" and to_tag:
                    d.to_tag = to_tag
                if d.state not in ENDED and d.state != "confirmed":
                    if code == 180 and d.state == "trying":
                        d.state = "ringing"
                    elif 180 <= code < 200 and code != 180 and d.state in ("trying", "ringing"):
                        d.state = "early"
                    if 180 <= code < 200 and not d.ring_ns:
                        d.ring_ns = ts_ns
                    if 200 <= code < 300:
                        if to_tag:
                            d.to_tag = to_tag  # a forked call: the answering branch's dialog
                        d.state = "confirmed"
                        d.answer_ns = ts_ns
                        d.final_status = code
                        self._setup(ts_ns - d.invite_ns)
                    elif code >= 300 and self._last_branch(d, labels):
                        d.final_status = code
                        if code == 487 or d.cancel_seen:
                            self._end(d, "cancelled", ts_ns)
                        elif not retryable(code):
                            self._end(d, "failed", ts_ns)
        d.last_ns = ts_ns
        self._touch(call_id)
        return d

    @staticmethod
    def _last_branch(d: Dialog, labels: dict[str, str]) -> bool:
        """A final failure on a branch of the call's INVITE: whether every branch has one now
        (then it is the call's final response). One of another branch or transaction, or
        repeated, changes nothing."""
        branches = d.invite_branches
        key = branch_key(labels)
        if key in branches:
            bit = 1 << branches.index(key)
        elif len(branches) == 1 and cseq_number(labels) == d.invite_cseq:
            bit = 1  # the call's one INVITE, answered with another top Via (not as RFC 3261 has)
        else:
            return False
        if d.branches_done & bit:
            return False
        d.branches_done |= bit
        return d.branches_done == (1 << len(branches)) - 1

    def _create(self, call_id: str, labels: dict[str, str], ts_ns: int) -> Dialog:
        d = self._insert(
            call_id,
            ts_ns,
            labels.get("sip.from_tag", ""),
            labels.get("sip.to_tag", ""),
            labels.get("sip.from_user", labels["sip.from_uri"]),
            labels.get("sip.to_user", labels["sip.to_uri"]),
        )
        d.invite_cseq = cseq_number(labels)
        d.invite_branches = (branch_key(labels),)
        self.created += 1
        while len(self) > self.max_dialogs:
            self.evicted += 1
            self.ended.append(self._pop_oldest())
        return d

    def _insert(
        self, call_id: str, ts_ns: int, from_tag: str, to_tag: str, caller: str, callee: str
    ) -> Dialog:
        """A new call (replacing one of the same Call-ID, which keeps its place)."""
        d = Dialog(call_id, ts_ns)
        d.from_tag = from_tag
        d.to_tag = to_tag
        d.caller = caller
        d.callee = callee
        self._d[call_id] = d
        return d

    def _pop_oldest(self) -> Dialog:
        return self._d.popitem(last=False)[1]

    def _oldest(self) -> Iterator[Dialog]:
        """The calls, least recently active first."""
        return iter(self._d.values())

    def _remove(self, d: Dialog) -> None:
        del self._d[d.call_id]

    def add_counts(self, c: tuple[int, ...]) -> None:
        """Add what the C batch path counted (``sip_dialog.c``): created, evicted, setup count,
        setup sum (ms), then the per-bucket setup counts."""
        self.created += c[0]
        self.evicted += c[1]
        self.setup_count += c[2]
        self.setup_sum_ms += c[3]
        buckets = self.setup_buckets
        for k in range(len(buckets)):
            buckets[k] += c[4 + k]

    def _setup(self, dt_ns: int) -> None:
        """Count one answered call's setup time (INVITE to its first 2xx)."""
        ms = max(dt_ns, 0) // 1_000_000
        self.setup_count += 1
        self.setup_sum_ms += ms
        for k, bound in enumerate(SETUP_BOUNDS_MS):
            if ms <= bound:
                self.setup_buckets[k] += 1
                break

    def _end(self, d: Dialog, outcome: str, ts_ns: int) -> None:
        d.state = outcome
        d.end_ns = ts_ns
        self.by_outcome[outcome] = self.by_outcome.get(outcome, 0) + 1
        self.ended.append(d)

    def expire(self, now_ns: int) -> list[Dialog]:
        """Remove ended calls after the linger time and idle calls after their timeout.

        The table is in order of last activity (each message moves its call to the end), so
        the walk stops at the first call active within the shortest of the three limits:
        every call after it was active more recently still.
        """
        dead: list[Dialog] = []
        shortest = min(self.linger_ns, self.confirmed_ns, self.early_ns)
        for d in self._oldest():
            if now_ns - d.last_ns < shortest:
                break
            if d.state in ENDED or (d.final_status and d.state != "confirmed"):
                limit = self.linger_ns  # ended, or challenged/redirected and not retried
            elif d.state == "confirmed":
                limit = self.confirmed_ns
            else:
                limit = self.early_ns
            if now_ns - d.last_ns >= limit:
                dead.append(d)
        for d in dead:
            if d.state not in ENDED:
                if d.final_status and d.state != "confirmed":
                    outcome = "failed"  # the caller gave up after the challenge or redirect
                    d.state = outcome
                    d.end_ns = d.last_ns
                else:
                    outcome = "timeout"
                self.by_outcome[outcome] = self.by_outcome.get(outcome, 0) + 1
            self._remove(d)
        self.expired += len(dead)
        return dead

    def stats(self) -> dict[str, int]:
        out = {
            "dialogs.active": len(self),
            "dialogs.created": self.created,
            "dialogs.evicted": self.evicted,
            "dialogs.expired": self.expired,
        }
        for k, v in self.by_outcome.items():
            out[f"dialogs.{k}"] = v
        cumulative = 0
        for bound, n in zip(SETUP_BOUNDS_MS, self.setup_buckets, strict=True):
            cumulative += n
            out[f"call_setup.le_{bound}"] = cumulative
        out["call_setup.count"] = self.setup_count
        out["call_setup.sum_ms"] = self.setup_sum_ms
        return out


class _NativeDialogTable(DialogTable):
    """``DialogTable`` on the C table (``_native/sip_dialog.c``: ``DialogStore``): the calls
    are plain structs, seen from Python through handles that read and write them (``get``,
    ``calls``, ``update``, ``expire`` and ``ended`` give handles; one per call, so ``get`` of a
    live call is the same object). A call that leaves the table leaves its handle a ``Dialog``
    with its values as they were. The batch path (``sip_batch.c``) updates the table itself."""

    def __init__(self, store: Any, *args: int) -> None:
        super().__init__(*args)
        self._store = store
        self._lookup = store.get
        self._touch = store.touch

    def __len__(self) -> int:
        return len(self._store)

    @property
    def calls(self) -> dict[str, Dialog]:
        """Call-ID to handle, least recently active first (built on each access)."""
        return dict(self._store.items())

    @property
    def store(self) -> Any:
        """The C table (``parse_batch``'s ``dcfg[0]``)."""
        return self._store

    def get(self, call_id: str) -> Dialog | None:
        d: Dialog | None = self._store.get(call_id)
        return d

    def _insert(
        self, call_id: str, ts_ns: int, from_tag: str, to_tag: str, caller: str, callee: str
    ) -> Dialog:
        if self._store.get(call_id) is not None:  # a new call reusing the Call-ID
            self._store.remove(self._store.get(call_id))
        d: Dialog = self._store.create(call_id, ts_ns, from_tag, to_tag, caller, callee)
        return d

    def _pop_oldest(self) -> Dialog:
        d: Dialog = self._store.pop_oldest()
        return d

    def _oldest(self) -> Iterator[Dialog]:
        d = self._store.first()
        while d is not None:
            yield d
            d = self._store.after(d)

    def _remove(self, d: Dialog) -> None:
        self._store.remove(d)


_native: dict[str, Any] = {}


def native_table(
    max_dialogs: int, early_ns: int, confirmed_ns: int, linger_ns: int
) -> DialogTable | None:
    """The dialog table on the C table, or None without the extension."""
    if "store" not in _native:
        try:
            mod: Any = import_module("otus_parser_sip._native._sip_fast")
        except ImportError:
            return None

        class DialogRef(_DialogMethods, mod.DialogRef):  # type: ignore[misc]
            """A call of the C dialog table (``Dialog``'s attributes, read and written there)."""

            __slots__ = ()

        DialogRef.__module__ = __name__
        DialogRef.__qualname__ = "DialogRef"
        _native["store"] = mod.DialogStore
        _native["ref"] = DialogRef
    store = _native["store"](_native["ref"], Dialog)
    return _NativeDialogTable(store, max_dialogs, early_ns, confirmed_ns, linger_ns)
