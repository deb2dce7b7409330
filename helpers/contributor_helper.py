"""Contributions, ranks, badges, trophies and awards (semantics §5).

Each contribution (attribute, event, sighting, discussion post) emits two kinds of
operations into the batch:

- pure writes that coalesce (``CONTRIB_DAY``, ``CONTRIB_CATEG``, ``CONTRIB_ALL_ORG``,
  ``CONTRIB_LAST``) and the last-contributor publication;
- one call of the ``contrib`` Lua procedure for everything that reads before it
  writes: the organisation's total, the week/month windows, the requirements, the
  trophy rank before and after, and the awards.  It runs inside the batch script,
  so it is atomic against any other writer and costs no round trip.

Attribute contributions of one organisation with the same receive time (the
attributes of one published event) are merged into one call per category with a
count; see ``doc/contributions.md`` for why that is exactly equivalent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from helpers import keys
from helpers.batch import Batch, publish_command
from helpers.config import Config
from helpers.context import Context, Handler
from helpers.observations import AttributeObs, AttributesObs, EventObs, PostObs, SightingObs
from helpers.ranking import (
    ATTRIBUTE,
    DAY,
    DISCUSSION,
    EVENT,
    RULES,
    SIGHTING,
    Ranking,
    load_ranking,
    normalise_category,
)

LAST_TTL = 7 * DAY  # CONTRIB_LAST:date and CONTRIB_LAST_AWARDS:date
PROC = "contrib"
_CACHE_MAX = 4096  # entries per memo; cleared when full (they rebuild in microseconds)
_EPOCH_MARK = 987654321987654321  # see _last_contributor
_COUNT = 6  # index of the count in the call list ["pc", PROC, kind, org, org_json, points, n ...]

# The procedure.  op: 'pc', 'contrib', then
#  3 kind  4 org  5 org as JSON  6 points  7 count  8 now (epoch, text)
#  9 n: the arguments that recur in the batch's calls, sent once (Batch.share), are
#    SHARED[n] = a:
#    2 instance as JSON  3 awards key  4 awards channel  5 points key  6 week key or ''
#    7 week window (s)  8 month key or ''  9 month window (s)  10 trophy key or ''
#    11 category as JSON  12... requirement quintuples: number, key, points needed,
#    TTL (s), counter condition
# (Payloads journaled by earlier versions carry those inline, from op[9] on.)
# Counter conditions: 0 none, 1 month >= 1, 2 week >= 1, 3 week > heavilyCount.
_PROC_TEMPLATE = r"""
  local org, orgj, n, now = op[4], op[5], op[7], op[8]
  local a = SHARED[op[9]]
  if type(op[9]) ~= 'number' then a = {'sh', unpack(op, 9)} end  -- an earlier version's
  -- The helpers are made once per batch (kept in memo), not once per call.
  local award = memo.award
  if not award then
    award = function(args, org_json, epoch, what)
      local m = '{"org": ' .. org_json .. ', "award": ' .. what .. ', "epoch": ' .. epoch .. '}'
      call('ZADD', args[3], epoch, m)
      call('EXPIRE', args[3], @AWARD_TTL@)
      local log = (m:gsub('\\', '\\\\'):gsub('"', '\\"'))
      call('PUBLISH', args[4], '{"name": "CONTRIBUTION", "log": "' .. log .. '", "zmqName": '
           .. args[2] .. '}')
    end
    memo.award = award
  end
  local total = incr(a[5], op[6] * n)
  if not total then return end
  local week, month = 0, 0
  if a[6] ~= '' then
    week = incr(a[6], n) or 0
    if week == n then call('EXPIRE', a[6], a[7]) end  -- the window opens, never extends
  end
  if a[8] ~= '' then
    month = incr(a[8], n) or 0
    if month == n then call('EXPIRE', a[8], a[9]) end
  end
  local held = memo.held
  if not held then held = {}; memo.held = held end
  for j = 12, #a, 5 do
    local c, rkey = a[j + 4], a[j + 1]
    -- A requirement handled earlier in this batch: SET NX would fail and EXPIRE would
    -- set the same TTL again (the script's clock stands still), so nothing to do.
    if not held[rkey] and total >= a[j + 2] and
       (c == 0 or (c == 1 and month >= 1) or (c == 2 and week >= 1)
        or (c == 3 and week > @HEAVY@)) then
      local got = call('SET', rkey, 1, 'EX', a[j + 3], 'NX')
      if got then
        award(a, orgj, now, '["contribution_status", ' .. a[j] .. ']')
      else
        call('EXPIRE', rkey, a[j + 3])  -- held already: its TTL restarts
      end
      if got ~= nil then held[rkey] = true end
    end
  end
  local tkey = a[10]
  if tkey == '' then return end
  -- The trophy set's size and this organisation's score, as this batch left them
  -- (only this procedure writes trophy sets).
  local tm = memo[tkey]
  if not tm then tm = {scores = {}}; memo[tkey] = tm end
  local trank = memo.trank
  if not trank then
    local cum = {@CUM@}
    trank = function(pos, card)
      if not pos then return 0 end
      if pos == 0 then return @TOP@ end
      for j = 1, #cum do
        if pos * 100 <= cum[j] * card then return @TOP@ - j end
      end
      return @TOP@ - #cum
    end
    memo.trank = trank
  end
  local s0 = tm.scores[org]
  if s0 == nil then
    s0 = call('ZSCORE', tkey, org)
    if s0 then s0 = tonumber(s0) end
  end
  local card, r0
  if s0 then
    card = tm.card or call('ZCARD', tkey); r0 = trank(call('ZREVRANK', tkey, org), card)
  else
    s0 = 0; r0 = 0; card = (tm.card or call('ZCARD', tkey) or 0) + 1
  end
  if card then tm.card = card; tm.scores[org] = s0 + n end  -- what every path below leaves
  if r0 == @TOP@ then call('ZINCRBY', tkey, n, org); return end
  -- The rank after step k of n (score s0 + k) never decreases with k: probe the ends and
  -- bisect only where two known ranks differ by 2 or more, to find every rank reached.
  local function at(k)
    call('ZADD', tkey, s0 + k, org)
    return trank(call('ZREVRANK', tkey, org), card)
  end
  local rn = at(n)
  if rn <= r0 then return end
  local hit = {}
  local r1 = rn
  if n > 1 then r1 = at(1) end
  hit[r1] = true; hit[rn] = true
  local function fill(lo, rlo, hi, rhi)
    if rhi - rlo < 2 or hi - lo < 2 then return end
    local mid = math.floor((lo + hi) / 2)
    local rm = at(mid)
    hit[rm] = true
    fill(lo, rlo, mid, rm); fill(mid, rm, hi, rhi)
  end
  fill(1, r1, n, rn)
  if n > 1 then call('ZADD', tkey, s0 + n, org) end
  for r = r0 + 1, rn do
    if hit[r] then award(a, orgj, now, '["trophy", [' .. a[11] .. ', ' .. r .. ']]') end
  end
"""


def build_proc(ranking: Ranking) -> str:
    """The ``contrib`` procedure with the ranking's constants written in."""
    return (_PROC_TEMPLATE.replace("@AWARD_TTL@", str(LAST_TTL))
            .replace("@HEAVY@", str(ranking.requirements.heavily_count))
            .replace("@TOP@", str(ranking.trophy_top))
            .replace("@CUM@", ", ".join(map(str, ranking.trophy_cumulative))))


@dataclass(slots=True)
class _Run:
    """One merged procedure call of the current run, and what repeats cost no work."""

    call: list[Any]
    message: bytes  # the last-contributor message's PUBLISH command (batch.publish_command)
    day_key: str
    points: int
    categ_key: str | None


def as_json(value: Any) -> str:
    """Deterministic JSON (semantics §1): Python's separators, non-ASCII kept."""
    return json.dumps(value, ensure_ascii=False)


class Contributions:
    def __init__(self, cfg: Config, ranking: Ranking | None = None) -> None:
        self.ranking = ranking if ranking is not None else load_ranking(cfg.resolve(cfg.ranking))
        self.channels = cfg.channels
        self.handlers: dict[type, Handler] = {
            AttributeObs: self.on_attribute,
            AttributesObs: self.on_attributes,
            EventObs: self.on_event,
            SightingObs: self.on_sighting,
            PostObs: self.on_post,
        }
        self.procs: dict[str, str] = {PROC: build_proc(self.ranking)}
        # Per (kind, flag): the rules that can apply, as (number, points needed, TTL, counter).
        self._rules: dict[tuple[str, bool], list[tuple[int, int, int, int]]] = {}
        for kind in (ATTRIBUTE, EVENT, SIGHTING, DISCUSSION):
            for flag in (False, True):
                self._rules[(kind, flag)] = [
                    (r.req, self.ranking.requirements.points[r.req - 1], self.ranking.ttl(r),
                     r.counter)
                    for r in RULES if r.kind == kind and (flag or not r.needs_flag)]
        # The current run of mergeable attribute contributions (see module doc).
        self.merge = True  # False: one call per contribution (the tests compare both)
        self._run_batch: Batch | None = None
        self._run_key: tuple[str, float, str, str | None] | None = None
        self._run_calls: dict[str, _Run] = {}  # category as sent -> its merged call
        # Bounded memos of what is rebuilt identically for every contribution.
        self._call_args: dict[tuple[Any, ...], tuple[tuple[Any, ...], tuple[Any, ...]]] = {}
        self._messages: dict[tuple[Any, ...], tuple[bytes, bytes]] = {}
        self._now, self._now_text = -1.0, ""
        self._last_day = self._last_key = ""  # CONTRIB_LAST:<day>
        # (category as sent, day) -> normalised category, points, day key, category key.
        self._run_parts: dict[tuple[str, str], tuple[str, int, str, str | None]] = {}

    # --- handlers -------------------------------------------------------------------

    def on_attribute(self, obs: AttributeObs, ctx: Context) -> None:
        if obs.source == "sighting":
            return  # the sighting itself is the contribution (on_sighting)
        org = obs.org
        if org is None:
            ctx.skip("contrib_without_org")
            return
        # Same organisation, receive time, feed and action: the message's own attributes.
        key = (org, ctx.now, ctx.instance, obs.action)
        if self._run_batch is not ctx.batch or self._run_key != key:
            self._run_batch, self._run_key, self._run_calls = ctx.batch, key, {}
        run = self._run_calls.get(obs.category) if self.merge else None
        b = ctx.batch
        if run is None:
            run = self._new_run(obs, org, ctx)
        else:
            # The hot path of a big event: the run's first contribution already wrote the
            # idempotent keys (CONTRIB_ALL_ORG, CONTRIB_LAST with this very score).
            run.call[_COUNT] += 1
            b.zincrby(run.day_key, org, run.points)
            if run.categ_key:
                b.zincrby(run.categ_key, org, 1)
            else:
                ctx.skip("contrib_empty_category")
        b.publish_resp(run.message)

    def on_attributes(self, group: AttributesObs, ctx: Context) -> None:
        """The attributes of an event (one organisation, one message): what
        :meth:`on_attribute` does for each, with the repeated increments summed."""
        items = group.items
        org = items[0].org
        if not self.merge or org is None or items[0].source == "sighting":
            for obs in items:
                self.on_attribute(obs, ctx)
            return
        key = (org, ctx.now, ctx.instance, items[0].action)
        if self._run_batch is not ctx.batch or self._run_key != key:
            self._run_batch, self._run_key, self._run_calls = ctx.batch, key, {}
        runs, b = self._run_calls, ctx.batch
        repeats: dict[str, int] = {}
        messages: list[bytes] = []  # the last-contributor command of each attribute, in order
        failure: Exception | None = None
        for obs in items:
            run = runs.get(obs.category)
            if run is None:
                try:
                    run = self._new_run(obs, org, ctx)
                except Exception as exc:  # one bad attribute spoils its own effects only
                    failure = failure or exc
                    continue
            else:
                run.call[_COUNT] += 1
                repeats[obs.category] = repeats.get(obs.category, 0) + 1
            messages.append(run.message)
        b.publish_resp_many(messages)
        for category, n in repeats.items():
            run = runs[category]
            b.zincrby(run.day_key, org, run.points * n)
            if run.categ_key:
                b.zincrby(run.categ_key, org, n)
            else:
                ctx.stats.reasons["contrib_empty_category"] += n
        if failure is not None:
            raise failure

    def _new_run(self, obs: AttributeObs, org: str, ctx: Context) -> _Run:
        """The first attribute contribution of a category in the current run."""
        first = not self._run_calls  # the message's first: its organisation-wide writes
        key = (obs.category, ctx.day)
        parts = self._run_parts.get(key)
        if parts is None:
            if len(self._run_parts) >= _CACHE_MAX:
                self._run_parts.clear()
            categ = normalise_category(obs.category)
            parts = self._run_parts[key] = (
                categ, self.ranking.category_points(categ), keys.contrib_day(ctx.day),
                keys.contrib_categ(ctx.day, categ) if categ else None)
        categ, points, day_key, categ_key = parts
        b = ctx.batch
        b.zincrby(day_key, org, points)
        if categ_key:
            b.zincrby(categ_key, org, 1)
        else:
            ctx.skip("contrib_empty_category")
        if first:  # the other runs of the message would write the very same
            self._org_writes(ctx, org)
        run = _Run(self._call(ctx, ATTRIBUTE, org, points, categ, False),
                   publish_command(self.channels.last_contributor,
                                   self._last_contributor(ctx, org, obs.category, obs.action)),
                   day_key, points, categ_key)
        self._run_calls[obs.category] = run
        return run

    def on_event(self, obs: EventObs, ctx: Context) -> None:
        if obs.org is None:
            ctx.skip("contrib_without_org")
            return
        self._run_key = None
        points = self.ranking.points.event
        self._writes(ctx, obs.org, points, None)
        self._call(ctx, EVENT, obs.org, points, None, bool(obs.tags))

    def on_sighting(self, obs: SightingObs, ctx: Context) -> None:
        if obs.org_is_fallback:
            ctx.skip("sighting_org_fallback")  # credited to the event creator (semantics §2)
        if obs.org is None:
            ctx.skip("contrib_without_org")
            return
        self._run_key = None
        categ = normalise_category(obs.category) if obs.category is not None else None
        base = self.ranking.category_points(categ) if categ else self.ranking.points.default
        points = base * self.ranking.points.sighting_multiplier
        self._writes(ctx, obs.org, points, "sighting")
        recent = (obs.date_sighting is not None and
                  ctx.now - obs.date_sighting <= self.ranking.requirements.recent_days * DAY)
        self._call(ctx, SIGHTING, obs.org, points, categ, recent)
        ctx.batch.publish(self.channels.last_contributor,
                          self._last_contributor(ctx, obs.org, obs.category, "add"))

    def on_post(self, obs: PostObs, ctx: Context) -> None:
        if obs.org is None:
            ctx.skip("contrib_without_org")
            return
        self._run_key = None
        points = self.ranking.points.discussion
        self._writes(ctx, obs.org, points, "discussion")
        self._call(ctx, DISCUSSION, obs.org, points, None, False)

    # --- operations -----------------------------------------------------------------

    def _writes(self, ctx: Context, org: str, points: int, categ_member: str | None) -> None:
        """The writes that need no read: they coalesce in the batch."""
        b = ctx.batch
        b.zincrby(keys.contrib_day(ctx.day), org, points)
        if categ_member:
            b.zincrby(keys.contrib_categ(ctx.day, categ_member), org, 1)
        elif categ_member is not None:
            ctx.skip("contrib_empty_category")
        self._org_writes(ctx, org)

    def _org_writes(self, ctx: Context, org: str) -> None:
        b = ctx.batch
        b.sadd(keys.CONTRIB_ALL_ORG, org)
        if ctx.day != self._last_day:
            self._last_day, self._last_key = ctx.day, keys.contrib_last(ctx.day)
        b.zadd(self._last_key, org, int(ctx.now))
        b.expire(self._last_key, LAST_TTL)

    def _call(self, ctx: Context, kind: str, org: str, points: int, trophy: str | None,
              flag: bool) -> list[Any]:
        """Invoke the procedure for one contribution; returns its call (for merging)."""
        # All but the count and the time depend on few things that recur: build them once.
        key = (kind, org, points, trophy, flag, ctx.day, ctx.instance)
        head_tail = self._call_args.get(key)
        if head_tail is None:
            if len(self._call_args) >= _CACHE_MAX:
                self._call_args.clear()
            head_tail = self._call_args[key] = self._call_parts(ctx, kind, org, points, trophy,
                                                                flag)
        head, tail = head_tail
        if ctx.now != self._now:
            self._now, self._now_text = ctx.now, str(int(ctx.now))
        ctx.batch.call(PROC, *head, 1, self._now_text, ctx.batch.share(tail))
        return ctx.batch.calls[-1]

    def _call_parts(self, ctx: Context, kind: str, org: str, points: int, trophy: str | None,
                    flag: bool) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        """The procedure's arguments before the count and after the time."""
        rq = self.ranking.requirements
        week = month = ""
        if kind == ATTRIBUTE:
            week = keys.contrib_org(org, keys.ATTR_WEEK_COUNT)
        elif kind == SIGHTING:
            week = keys.contrib_org(org, keys.SIGHT_WEEK_COUNT)
        elif kind == EVENT:
            week = keys.contrib_org(org, keys.EVENT_WEEK_COUNT)
            month = keys.contrib_org(org, keys.EVENT_MONTH_COUNT)
        reqs: list[Any] = []
        for req, needed, ttl, counter in self._rules[(kind, flag)]:
            reqs += (req, keys.contrib_req(org, req), needed, ttl, counter)
        return ((kind, org, as_json(org), points),
                (as_json(ctx.instance), keys.contrib_last_awards(ctx.day),
                 self.channels.last_awards, keys.contrib_points(org),
                 week, rq.week_days * DAY, month, rq.month_days * DAY,
                 keys.contrib_trophy(trophy) if trophy else "",
                 as_json(trophy) if trophy else "", *reqs))

    def _last_contributor(self, ctx: Context, org: str, categ: str | None,
                          action: str | None) -> bytes:
        """The last-contributor message, shaped as the dashboard's web server reads it."""
        key = (org, categ, action, ctx.instance)
        parts = self._messages.get(key)
        if parts is None:
            if len(self._messages) >= _CACHE_MAX:
                self._messages.clear()
            # All but the epoch, serialised once: the epoch is the last member of the log
            # document, digits that escaping the log as a JSON string leaves alone.
            log = as_json({"org": org, "categ": categ, "action": action, "epoch": _EPOCH_MARK})
            log_head, _, log_tail = log.rpartition(str(_EPOCH_MARK))
            parts = self._messages[key] = (
                ('{"name": "CONTRIBUTION", "log": "' + as_json(log_head)[1:-1]).encode(),
                (as_json(log_tail)[1:-1] + '", "zmqName": ' + as_json(ctx.instance)
                 + "}").encode())
        # UTF-8 once per run of attributes, not once per publication of it.
        return b"%b%d%b" % (parts[0], int(ctx.now), parts[1])
