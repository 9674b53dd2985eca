"""Custom funnels (ordered steps within a window) and top paths around an event, per actor.

An actor is whoever the events are known by: the person's OneID when an event resolved to one,
otherwise the device id. Both functions take a frame with actor, occurred_at, event_type (and
event_id for a stable order of simultaneous events).
"""
from __future__ import annotations

from bisect import bisect_right
from collections import Counter

import numpy as np
import pandas as pd

from fincdp.analytics.config import EventFunnel, Paths

FUNNEL_COLUMNS = ["funnel", "step_no", "step", "actors", "rate_from_previous", "rate_from_first",
                  "median_hours_from_previous", "window_days"]
PATH_COLUMNS = ["anchor", "direction", "rank", "path", "occurrences", "share"]


def _by_actor(events: pd.DataFrame):
    """Events grouped by actor, in time order (then event id) within each actor, as arrays: stamps, event
    type codes, the type names the codes index, and each actor's [start, end) slice. Actors come in
    order of first appearance: callers only need each actor's events together. One sort on integer
    keys and plain slicing: a pandas groupby loop costs ~0.5 ms per actor, and a pandas sort on the
    string columns took over a minute at 10M events."""
    ev = events.dropna(subset=["actor", "occurred_at", "event_type"])
    actors, _ = pd.factorize(ev["actor"])
    stamps = ev["occurred_at"].to_numpy(dtype="datetime64[us]")
    order = np.lexsort((stamps, actors))
    actors, stamps = actors[order], stamps[order]
    if "event_id" in ev and len(order) > 1:
        # simultaneous events of an actor: by event id, sorting only those runs of ties
        tie = (actors[1:] == actors[:-1]) & (stamps[1:] == stamps[:-1])
        if tie.any():
            slots = np.flatnonzero(np.concatenate([tie, [False]]) | np.concatenate([[False], tie]))
            run = np.cumsum(np.concatenate([[True], ~tie]))[slots]
            ids = ev["event_id"].iloc[order[slots]].to_numpy()
            ranked = pd.DataFrame({"run": run, "id": ids, "slot": slots}).sort_values(["run", "id"], kind="stable")
            order[slots] = order[ranked["slot"].to_numpy()]
    codes, names = pd.factorize(ev["event_type"])
    codes = codes[order]
    cuts = np.flatnonzero(actors[1:] != actors[:-1]) + 1 if len(actors) else np.array([], dtype=np.int64)
    starts = np.concatenate([[0], cuts]) if len(actors) else cuts
    ends = np.concatenate([cuts, [len(actors)]]) if len(actors) else cuts
    return stamps, codes, np.asarray(names, dtype=object), starts, ends


def _code(names: np.ndarray, event_type: str) -> int:
    """The code of an event type in _by_actor's names; -1 (matching no event) when none has it."""
    found = np.flatnonzero(names == event_type)
    return int(found[0]) if len(found) else -1


def _any_per_actor(mask: np.ndarray, starts: np.ndarray) -> np.ndarray:
    return np.add.reduceat(mask.astype(np.int64), starts) > 0 if len(starts) else np.zeros(0, dtype=bool)


def _best_run(times: list[np.ndarray], window: np.timedelta64) -> list:
    """The furthest sequence of step times reachable from any start of step 1 (earliest start on a tie):
    each step strictly after the previous one and no later than start + window."""
    best: list = []
    for start in times[0]:
        run, prev, limit = [start], start, start + window
        for step_times in times[1:]:
            i = bisect_right(step_times, prev)
            if i == len(step_times) or step_times[i] > limit:
                break
            prev = step_times[i]
            run.append(prev)
        if len(run) > len(best):
            best = run
            if len(best) == len(times):
                break
    return best


def event_funnel(events: pd.DataFrame, funnel: EventFunnel) -> pd.DataFrame:
    """Actors reaching each step, conversion from the previous and the first step, median hours
    between consecutive steps (over the actors who made that step)."""
    stamps, types, names, starts, ends = _by_actor(events[events["event_type"].isin(funnel.steps)])
    window = np.timedelta64(int(funnel.window_days * 86400 * 1e6), "us")
    gaps: list[list[float]] = [[] for _ in funnel.steps]
    reached = np.zeros(len(funnel.steps), dtype=np.int64)
    masks = [types == _code(names, step) for step in funnel.steps]
    starting = _any_per_actor(masks[0], starts)  # only actors who did step 1 can enter the funnel
    for s, e in zip(starts[starting], ends[starting]):
        run = _best_run([stamps[s:e][m[s:e]] for m in masks], window)
        reached[:len(run)] += 1
        for k in range(1, len(run)):
            gaps[k].append((run[k] - run[k - 1]) / np.timedelta64(1, "h"))
    rows = []
    for k, step in enumerate(funnel.steps):
        previous = reached[k - 1] if k else reached[0]
        rows.append({
            "funnel": funnel.name, "step_no": k + 1, "step": step, "actors": int(reached[k]),
            "rate_from_previous": float(reached[k] / previous) if previous else None,
            "rate_from_first": float(reached[k] / reached[0]) if reached[0] else None,
            "median_hours_from_previous": float(np.median(gaps[k])) if gaps[k] else None,
            "window_days": float(funnel.window_days)})
    return pd.DataFrame(rows, columns=FUNNEL_COLUMNS)


def top_paths(events: pd.DataFrame, anchor: str, settings: Paths) -> pd.DataFrame:
    """The most frequent sequences of up to `steps` events before and after each occurrence of the anchor
    event, within window_hours of it (one count per anchor occurrence)."""
    window = np.timedelta64(int(settings.window_hours * 3600 * 1e6), "us")
    counts = {"before": Counter(), "after": Counter()}
    anchors = 0
    all_stamps, all_types, type_names, starts, ends = _by_actor(events)
    anchor_code = _code(type_names, anchor)
    has_anchor = _any_per_actor(all_types == anchor_code, starts)
    for s, e in zip(starts[has_anchor], ends[has_anchor]):
        stamps, types = all_stamps[s:e], all_types[s:e]
        if settings.collapse_repeats and len(types) > 1:
            keep = np.concatenate([[True], types[1:] != types[:-1]])
            stamps, types = stamps[keep], types[keep]
        names = type_names[types].tolist()
        for i in np.flatnonzero(types == anchor_code).tolist():
            anchors += 1
            t = stamps[i]
            lo = i
            while lo > 0 and i - lo < settings.steps and stamps[lo - 1] >= t - window:
                lo -= 1
            hi = i
            while hi + 1 < len(names) and hi - i < settings.steps and stamps[hi + 1] <= t + window:
                hi += 1
            counts["before"][" > ".join(names[lo:i + 1])] += 1
            counts["after"][" > ".join(names[i:hi + 1])] += 1
    rows = []
    for direction, counter in counts.items():
        ranked = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:settings.top_n]
        rows += [{"anchor": anchor, "direction": direction, "rank": r + 1, "path": path, "occurrences": n,
                  "share": n / anchors} for r, (path, n) in enumerate(ranked)]
    return pd.DataFrame(rows, columns=PATH_COLUMNS)
