"""`Fleet`: one batch spread over several endpoints, balanced, with failover.

Each member endpoint has its own `ChatClient` (its own connection pool) and its own
`FlowControl` (in-flight limit, --rpm/--tpm, --adaptive, breaker), so one replica's
429s or death never slow the others. `Fleet.complete` is a `SendRequest`:

- routing: an attempt goes to the usable member with the fewest requests in flight
  relative to its limit (least outstanding requests); attempts that must wait are served
  in the order they came, so a retry is never starved by fresh prompts;
- failover: a retry avoids the member whose attempt just failed while another member is
  up, and does not back off when it goes to a member this request has not tried yet;
- a 429 rests only the member that sent it: for its Retry-After, else for a backoff;
- breaker: a member that trips (`FlowControl`'s threshold of refusals) gets no new
  requests; after `probe_after_s` one first attempt probes it, and it is back when that
  attempt is not refused. When every member is down at once, `on_all_down` is called.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..errors import HTTPStatusError, RequestError
from ..settings import PROBE_AFTER_S, ClientSettings, RetrySettings
from ..wire.answer import AnswerCheck, Completion
from .client import ChatClient
from .endpoints import Endpoint
from .flow import Clock, FlowControl, FlowSettings, is_refusal
from .retry import Sleep, wait_before, with_retries

log = logging.getLogger(__name__)


@dataclass(eq=False, slots=True)
class Member:
    """One endpoint of the fleet: its client, its flow control and what it did."""

    endpoint: Endpoint
    flow: FlowControl
    client: ChatClient
    ok: int = 0  # requests whose final answer came from here
    errors: int = 0  # requests that failed for good on their last attempt here
    trips: int = 0  # times the breaker took it out
    down: bool = False  # tripped and not yet back
    probe_at: float = 0.0  # when down: the clock time of the next probe
    probing: bool = False  # a probe is in flight
    reserved: int = 0  # slots handed to waiting attempts that have not started yet
    throttled: int = 0  # 429s in a row

    @property
    def url(self) -> str:
        """The base URL without credentials or query: what results and summaries show."""
        return self.endpoint.public_url

    @property
    def limit(self) -> int:
        """The in-flight limit in force now."""
        return self.flow.current_limit

    @property
    def in_flight(self) -> int:
        """Attempts running here now."""
        return self.flow.in_flight

    def room(self) -> int:
        """Attempts that may still be handed to this member now."""
        return self.flow.free_slots - self.reserved

    def stats(self) -> dict[str, Any]:
        """Its counts for the summary."""
        return {
            "url": self.url,
            "ok": self.ok,
            "errors": self.errors,
            "attempts": self.flow.attempts,
            "rate_limited": self.flow.rate_limited,
            "tripped": self.trips,
            "down": self.down,
            "limit": self.flow.settings.concurrency,
        }


# An attempt waiting for a slot: its future (the member and whether it is the probe) and
# the members it should avoid.
_Waiter = tuple["asyncio.Future[tuple[Member, bool]]", "tuple[Member, ...]"]


class Fleet:
    """Several endpoints behind one `complete()`; see the module docstring."""

    def __init__(
        self,
        endpoints: Sequence[Endpoint],
        client_settings: ClientSettings,
        retry: RetrySettings,
        flow: FlowSettings,
        *,
        probe_after_s: float = PROBE_AFTER_S,
        on_all_down: Callable[[RequestError], None] | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.monotonic,
    ) -> None:
        """Each endpoint gets `flow`, with its own `in_flight_limit` if it has one."""
        if not endpoints:
            raise ValueError("a fleet needs at least one endpoint")
        self.retry = retry
        self.probe_after_s = probe_after_s
        self._on_all_down = on_all_down
        self._sleep = sleep
        self._clock = clock
        self._waiters: deque[_Waiter] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self.members = [self._member(e, client_settings, flow) for e in endpoints]

    def _member(
        self, endpoint: Endpoint, client_settings: ClientSettings, flow: FlowSettings
    ) -> Member:
        limit = endpoint.in_flight_limit or flow.concurrency
        control = FlowControl(
            replace(flow, concurrency=limit),
            self._clock,
            on_trip=lambda error: self._tripped(member, error),
        )
        client = ChatClient(client_settings, self.retry, gate=control, endpoint=endpoint)
        member = Member(endpoint, control, client)
        return member

    @property
    def concurrency(self) -> int:
        """The most requests the fleet carries at once: the members' limits summed."""
        return sum(member.flow.settings.concurrency for member in self.members)

    async def close(self) -> None:
        """Close every member's connection pool."""
        if self._timer is not None:
            self._timer.cancel()
        for member in self.members:
            await member.client.close()

    async def complete(
        self,
        body: dict[str, Any],
        cost: int = 0,
        accept: AnswerCheck | None = None,
        reask: bool = False,
    ) -> Completion:
        """Send `body` to the fleet and return the whole answer, retrying (elsewhere when
        possible) as `self.retry` says; `ChatClient.complete`'s contract otherwise."""
        tried: list[Member] = []

        async def attempt(payload: bytes, number: int) -> Completion:
            member, probe = await self._acquire(self._avoid(tried))
            tried.append(member)
            return await self._attempt(member, probe, payload, number, cost, accept)

        try:
            completion = await with_retries(
                body,
                attempt,
                self.retry,
                self._sleep,
                reask=reask,
                wait=lambda number, error: self._wait_before(number, error, tried),
            )
        except Exception:  # a RequestError, or a bug: either way a failed request
            if tried:
                tried[-1].errors += 1
            raise
        tried[-1].ok += 1
        return completion

    async def _attempt(
        self,
        member: Member,
        probe: bool,
        payload: bytes,
        number: int,
        cost: int,
        check: AnswerCheck | None,
    ) -> Completion:
        try:
            completion = await member.client.attempt(payload, number, cost, check)
        except RequestError as error:
            self._learn(member, probe, error)
            raise
        except BaseException:  # cancelled: nothing learnt; a probe is due again
            self._release(member, probe, reserved=False)
            raise
        self._learn(member, probe, None)
        return completion

    def _avoid(self, tried: list[Member]) -> tuple[Member, ...]:
        """Where a request's next attempt should not go: every member it tried while an
        untried one is up, else the one that just failed."""
        if not tried:
            return ()
        return tuple(tried) if self._untried_up(tried) else (tried[-1],)

    def _wait_before(self, number: int, error: BaseException | None, tried: list[Member]) -> float:
        """No wait when a member this request has not tried is up (the retry goes
        there); else the backoff (a Retry-After rests the member that sent it, not the
        request)."""
        if self._untried_up(tried):
            return 0.0
        if isinstance(error, HTTPStatusError):
            error = None
        return wait_before(number, error, self.retry)

    def _untried_up(self, tried: list[Member]) -> bool:
        """Some member that is up has not been tried by this request."""
        return any(not member.down and member not in tried for member in self.members)

    # Routing: who gets the next attempt.

    async def _acquire(self, avoid: tuple[Member, ...]) -> tuple[Member, bool]:
        """A member with room for one attempt, and whether the attempt is its probe; the
        caller starts it at once (no await in between, so the slot cannot be taken)."""
        if not self._waiters:
            chosen = self._choose(avoid)
            if chosen is not None:
                return chosen
        future: asyncio.Future[tuple[Member, bool]] = asyncio.get_running_loop().create_future()
        waiter = (future, avoid)
        self._waiters.append(waiter)
        self._dispatch()  # older waiters first; this one if a slot fits it and none of them
        try:
            member, probe = await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():  # granted, then cancelled
                self._release(*future.result(), reserved=True)
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            raise
        member.reserved -= 1
        return member, probe

    def _release(self, member: Member, probe: bool, *, reserved: bool) -> None:
        """A granted attempt will not run (cancelled): free its slot and its probe."""
        if reserved:
            member.reserved -= 1
        if probe:
            member.probing = False
        self._dispatch()

    def _choose(self, avoid: tuple[Member, ...]) -> tuple[Member, bool] | None:
        """A due probe (first attempts only), else the least loaded usable member with
        room; members in `avoid` only when no other member is up."""
        now = self._clock()
        others_up = any(not m.down for m in self.members if m not in avoid)
        best: Member | None = None
        best_load = float("inf")
        for member in self.members:
            if member.down:
                if not avoid and not member.probing and now >= member.probe_at:
                    member.probing = True
                    log.info("probing %s again", member.url)
                    return member, True
                continue
            if member.room() <= 0 or member.flow.paused_until > now:
                continue
            if others_up and member in avoid:
                continue
            load = (member.in_flight + member.reserved) / member.limit
            if load < best_load:
                best, best_load = member, load
        return None if best is None else (best, False)

    def _dispatch(self) -> None:
        """Hand free slots to waiting attempts, oldest first."""
        for waiter in list(self._waiters):
            future, avoid = waiter
            if future.done():
                self._waiters.remove(waiter)
                continue
            chosen = self._choose(avoid)
            if chosen is None:
                continue
            chosen[0].reserved += 1
            future.set_result(chosen)
            self._waiters.remove(waiter)
        self._arm_timer()

    def _arm_timer(self) -> None:
        """While attempts wait, dispatch again when the next rest ends or, if a first
        attempt waits, when the next probe is due."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._waiters:
            return
        now = self._clock()
        times = [m.flow.paused_until for m in self.members if m.flow.paused_until > now]
        if any(not avoid for _, avoid in self._waiters):
            times += [m.probe_at for m in self.members
                      if m.down and not m.probing and m.probe_at > now]  # fmt: skip
        if times:
            delay = max(0.0, min(times) - now) + 0.001
            self._timer = asyncio.get_running_loop().call_later(delay, self._dispatch)

    # Learning from outcomes.

    def _learn(self, member: Member, probe: bool, error: RequestError | None) -> None:
        """After an attempt at `member`: the probe's verdict (only the probe's own
        attempt decides), a 429's rest, then dispatch."""
        if probe:
            member.probing = False
            if is_refusal(error):
                member.probe_at = self._clock() + self.probe_after_s
            else:
                member.down = False
                member.flow.reset_breaker()
                log.warning("%s answers again; sending to it", member.url)
        if isinstance(error, HTTPStatusError) and error.status == 429:
            member.throttled += 1
            rest = error.retry_after_s
            if rest is None:
                rest = wait_before(member.throttled, None, self.retry)
            member.flow.pause(rest)
        elif isinstance(error, HTTPStatusError) and error.retry_after_s is not None:
            member.flow.pause(error.retry_after_s)
        elif error is None:
            member.throttled = 0
        self._dispatch()

    def _tripped(self, member: Member, error: RequestError) -> None:
        member.down = True
        member.trips += 1
        member.probe_at = self._clock() + self.probe_after_s
        log.warning(
            "%s is unreachable (%s); no new requests go there; probing again in %g s",
            member.url,
            error.message,
            self.probe_after_s,
        )
        if all(m.down for m in self.members) and self._on_all_down is not None:
            self._on_all_down(error)
        self._arm_timer()
