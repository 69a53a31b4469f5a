"""Arena battles: anonymous pairs, one vote each, voter caps and flags, the board per category,
and votes turned into preference pairs. Ratings themselves are pure functions (ratings.py)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy import CursorResult, case, delete, select, update
from sqlalchemy.orm import Session

from limner.arena.categories import CATEGORIES, categorize
from limner.arena.ratings import (
    OUTCOMES,
    Standing,
    Vote,
    bootstrap_intervals,
    choose_pair,
    leaderboard,
    least_judged,
    pair_key,
)
from limner.engine import Engine, GeneratedImage, GenerationRequest
from limner.engine.metadata import plain_png
from limner.errors import Conflict, InvalidRequest, NotFound, RateLimited, Unauthorized
from limner.moderation import Policy
from limner.store import days
from limner.store.db import ArenaBattle, ArenaImage, ArenaVoter, Database, StoredFile, dialect_insert
from limner.store.files import FileStore

DAILY_CAP = 300  # votes per voter per UTC day
LIVE_DAILY_CAP = 20  # live battles (two generations each) per account per UTC day
FAST_SECONDS = 1.5  # quicker than a person can look at two images
MIN_VOTES_TO_FLAG = 10
SWEEP_CHUNK = 500  # unvoted battles deleted per transaction (and bound parameters per statement)


@dataclass
class BattleView:
    """What a voter may see before voting: no model names, no file names, no metadata."""

    id: str
    prompt: str
    token: str


class SimClock:
    """A clock for simulated voters (``Arena.clock``): time moves only when a voter looks."""

    def __init__(self, start: float):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class _Pairing:
    """What choosing a battle needs from the votes, as read at ``at`` (``time.monotonic``)."""

    at: float
    intervals: dict[str, tuple[float, float]]  # the standings' bootstrap intervals
    pairs: Counter  # votes per (model A, model B) as shown
    slots: Counter  # votes per (prompt, (model, model) sorted) at ``at``, plus battles shown since
    lock: threading.Lock = field(default_factory=threading.Lock)

    def prompt_for(self, prompts: list[str], pair: tuple[str, str], rng: np.random.Generator) -> str:
        """The least-judged prompt of ``prompts`` for the pair, counted as shown at once: until the
        next read, battles for the pair rotate through the pool instead of repeating one prompt."""
        with self.lock:
            prompt = least_judged(prompts, pair, self.slots, rng)
            self.slots[(prompt, pair_key(*pair))] += 1
        return prompt


# marks images before they are kept (the server's invisible watermark and its marks row), in the
# session that keeps them, with the request id the row records
Mark = Callable[[Session, list[GeneratedImage], str], None]


class Arena:
    def __init__(
        self, db: Database, engine: Engine, files: FileStore, policy: Policy, secret: str, mark: Mark | None = None
    ):
        self.db, self.engine, self.files, self.policy = db, engine, files, policy
        self.secret = secret.encode()
        self.mark = mark  # the watermark says who made an image even before the vote; nothing visible does
        self.clock = time.time  # seconds since the epoch; simulations and tests swap in their own
        # what to show next — the curated pool, the standings' intervals, the votes per pair and per
        # (prompt, pair) — read at most every ``pairing_refresh`` seconds of real time, not once per
        # battle (asking for battles needs no sign-in; a slightly stale pairing costs nothing)
        self.pairing_refresh = 15.0
        self._pairing: dict[tuple[str, ...], _Pairing] = {}
        self._pool: tuple[float, dict[str, dict[str, str]]] | None = None
        self._pool_version = 0  # moved by seed_pool: a read that began before it is not kept
        self._pairing_lock = threading.Lock()

    # -- models and the pool ------------------------------------------------------------------------

    def models(self) -> list[str]:
        return [m["name"] for m in self.engine.models()]

    def seed_pool(self, prompts: list[str], models: list[str] | None = None, seed: int = 0, progress=None) -> int:
        """Pre-generate one image per (prompt, model) so curated battles start instantly."""
        models = models or self.models()
        made = 0
        for k, prompt in enumerate(prompts):
            for model in models:
                with self.db.session() as s:
                    exists = s.scalar(
                        select(ArenaImage.id).where(ArenaImage.prompt == prompt, ArenaImage.model == model)
                    )
                if exists:
                    continue
                image = self.engine.generate(GenerationRequest(prompt, seed=seed + k, model=model))[0]
                with self.db.session() as s:
                    self._mark(s, [image], "arena-pool")
                    row = self.files.save(s, plain_png(image.image.convert("RGB")), "png", meta={"arena": True})
                    s.add(ArenaImage(prompt=prompt, model=model, file_id=row.id))
                made += 1
                self._pool_version += 1  # battles see the new image at once
                self._pool = None
                if progress:
                    progress("pool", made, len(prompts) * len(models))
        return made

    def _curated(self) -> dict[str, dict[str, str]]:
        """The pool as prompt → model → file, prompts that two models or more drew."""
        cached = self._pool
        if cached is not None and time.monotonic() - cached[0] <= self.pairing_refresh:
            return cached[1]
        version = self._pool_version
        with self.db.session() as s:
            rows = s.execute(select(ArenaImage.prompt, ArenaImage.model, ArenaImage.file_id)).all()
        by_prompt: dict[str, dict[str, str]] = {}
        for p, m, f in rows:
            by_prompt.setdefault(p, {})[m] = f
        eligible = {p: d for p, d in by_prompt.items() if len(d) >= 2}
        if version == self._pool_version:
            self._pool = (time.monotonic(), eligible)
        return eligible

    # -- battles ------------------------------------------------------------------------------------

    def _mark(self, s: Session, images: list[GeneratedImage], request_id: str) -> None:
        if self.mark is not None:
            self.mark(s, images, request_id)

    def token(self, battle_id: str, voter: str) -> str:
        return hmac.new(self.secret, f"arena:{battle_id}:{voter}".encode(), hashlib.sha256).hexdigest()[:40]

    def _token_ok(self, battle_id: str, voter: str, token: str | None) -> bool:
        """Constant-time check; any string is acceptable input (non-ASCII compares as bytes)."""
        return hmac.compare_digest(self.token(battle_id, voter).encode(), (token or "").encode())

    def _pair(self, candidates: list[str], rng: np.random.Generator) -> tuple[str, str, _Pairing]:
        if len(candidates) < 2:
            raise InvalidRequest(
                "the arena needs at least two models: register another in models.toml",
                param="model",
                code="not_enough_models",
            )
        key = tuple(candidates)

        def fresh() -> _Pairing | None:
            cached = self._pairing.get(key)
            return cached if cached is not None and time.monotonic() - cached.at <= self.pairing_refresh else None

        pairing = fresh()
        if pairing is None:
            with self._pairing_lock:  # one request recomputes; the others waiting then take its result
                pairing = fresh()
                if pairing is None:
                    # every vote read and a bootstrap over prompts (~0.1 s at 20k votes)
                    votes = self.votes()
                    intervals = bootstrap_intervals(
                        candidates, [v for v in votes if v.model_a in candidates and v.model_b in candidates], rounds=50
                    )
                    pairing = _Pairing(
                        time.monotonic(),
                        intervals,
                        Counter((v.model_a, v.model_b) for v in votes),
                        Counter((v.group, pair_key(v.model_a, v.model_b)) for v in votes),
                    )
                    self._pairing[key] = pairing
        return (*choose_pair(candidates, pairing.intervals, pairing.pairs, rng), pairing)

    def new_battle(self, voter: str, prompt: str | None = None, seed: int | None = None) -> BattleView:
        """A battle from the curated pool, or (with ``prompt``) generated live by two models."""
        rng = np.random.default_rng(seed if seed is not None else secrets.randbits(63))
        if prompt is None:
            eligible = self._curated()
            if not eligible:
                raise InvalidRequest("the curated pool is empty: run `limner arena seed-pool`, or send a prompt")
            candidates = sorted({m for d in eligible.values() for m in d})
            a, b, pairing = self._pair(candidates, rng)
            both = sorted(p for p, d in eligible.items() if a in d and b in d)
            if both:
                prompt = pairing.prompt_for(both, (a, b), rng)
            else:  # this pair shares no prompt: take any prompt with two models
                prompt = sorted(eligible)[int(rng.integers(len(eligible)))]
                a, b = (str(m) for m in rng.permutation(sorted(eligible[prompt]))[:2])
            file_a, file_b, source = eligible[prompt][a], eligible[prompt][b], "pool"
        else:
            if not voter.startswith("user:"):
                raise Unauthorized(
                    "a battle on your own prompt draws two images, so it needs an account: sign in (or sign "
                    "up) and try again; curated battles (no prompt) need none",
                    param="prompt",
                    code="sign_in_required",
                )
            self.policy.check_input(prompt)
            a, b, _ = self._pair(self.models(), rng)
            day = self._reserve_live(voter)
            s0 = int(rng.integers(2**31))
            try:
                # generate both before answering: the order of arrival must not hint at the models
                imgs = [self.engine.generate(GenerationRequest(prompt, seed=s0, model=m))[0] for m in (a, b)]
            except BaseException:
                self._refund_live(voter, day)  # nothing was drawn: the battle does not count
                raise
            with self.db.session() as s:
                self._mark(s, imgs, "arena-live")
                file_a = self.files.save(s, plain_png(imgs[0].image.convert("RGB")), "png", meta={"arena": True}).id
                file_b = self.files.save(s, plain_png(imgs[1].image.convert("RGB")), "png", meta={"arena": True}).id
            source = "live"
        battle_id = "battle-" + secrets.token_hex(10)
        with self.db.session() as s:
            s.add(
                ArenaBattle(
                    id=battle_id,
                    prompt=prompt,
                    categories=categorize(prompt),
                    model_a=a,
                    model_b=b,
                    file_a=file_a,
                    file_b=file_b,
                    source=source,
                    voter=voter,
                    shown_at=_utc(self.clock()),
                )
            )
        return BattleView(battle_id, prompt, self.token(battle_id, voter))

    def _reserve_live(self, voter: str) -> int:
        """Count one live battle against the account's LIVE_DAILY_CAP for today, or raise; → the
        UTC day it was counted on. One conditional UPDATE, so a burst of requests cannot pass
        together (as ``server/quota.py``)."""
        now = self.clock()
        day = days.today(now)
        with self.db.session() as s:
            _ensure_voter(s, voter)
            taken = s.execute(
                update(ArenaVoter)
                .where(
                    ArenaVoter.id == voter,
                    (ArenaVoter.live_day != day) | (ArenaVoter.live_today < LIVE_DAILY_CAP),
                )
                .values(
                    live_today=case((ArenaVoter.live_day == day, ArenaVoter.live_today + 1), else_=1),
                    live_day=day,
                )
            ).rowcount  # type: ignore[attr-defined]  # UPDATE results carry rowcount
        if not taken:
            raise RateLimited(
                f"you have started {LIVE_DAILY_CAP} battles on your own prompts today; "
                "curated battles (no prompt) are still open",
                retry_after=days.left(days.DAY, now),
                code="live_cap_reached",
            )
        return day

    def _refund_live(self, voter: str, day: int) -> None:
        with self.db.session() as s:
            s.execute(
                update(ArenaVoter)
                .where(ArenaVoter.id == voter, ArenaVoter.live_day == day)
                .values(live_today=ArenaVoter.live_today - 1)
            )

    def battle_image(self, battle_id: str, side: str, voter: str, token: str) -> tuple[Path, str | None]:
        """The file of one side, and the model that drew it once the battle has its vote (None
        before), from one read: a sweep in between cannot leave half an answer."""
        if side not in ("a", "b"):
            raise InvalidRequest("side must be a or b", param="side")
        missing = NotFound("no such battle for this voter", param="battle_id", code="battle_not_found")
        with self.db.session() as s:
            battle = s.get(ArenaBattle, battle_id)
            if battle is None or battle.voter != voter or not self._token_ok(battle_id, voter, token):
                raise missing
            row = s.get(StoredFile, battle.file_a if side == "a" else battle.file_b)
            model = battle.model_a if side == "a" else battle.model_b
            revealed = model if battle.outcome is not None else None
        if row is None or not Path(row.path).is_file():
            raise missing
        return Path(row.path), revealed

    def sweep_unvoted(self, hours: float, now: float | None = None) -> int:
        """Delete battles shown more than ``hours`` ago that never got a vote (anyone can start one
        without an account, so they would pile up), and the images of the live ones among them (a
        curated battle's images belong to the pool); → how many battles. The delete says which it
        removed, so a vote that lands meanwhile keeps its battle and its images. ``now``: seconds
        since the epoch (default: the arena's clock)."""
        cutoff = _utc((self.clock() if now is None else now) - hours * 3600)
        stale = (ArenaBattle.outcome.is_(None), ArenaBattle.shown_at < cutoff)
        swept = 0
        while True:  # in short transactions of at most SWEEP_CHUNK battles, however many piled up
            with self.db.session() as s:
                ids = list(s.scalars(select(ArenaBattle.id).where(*stale).limit(SWEEP_CHUNK)))
                gone = s.execute(
                    delete(ArenaBattle)
                    .where(ArenaBattle.id.in_(ids), *stale)
                    .returning(ArenaBattle.source, ArenaBattle.file_a, ArenaBattle.file_b)
                ).all()
                live = [f for source, *files in gone if source == "live" for f in files]
                paths = list(s.scalars(select(StoredFile.path).where(StoredFile.id.in_(live))))
                s.execute(delete(StoredFile).where(StoredFile.id.in_(live)))
            for path in paths:  # after the commit: a failed transaction leaves no row without its file
                Path(path).unlink(missing_ok=True)
            swept += len(gone)
            if len(ids) < SWEEP_CHUNK:
                return swept

    # -- votes --------------------------------------------------------------------------------------

    def vote(self, battle_id: str, voter: str, token: str, outcome: str) -> dict:
        """Record the one vote a battle takes; return the revealed models."""
        if outcome not in OUTCOMES:
            raise InvalidRequest(f"outcome must be one of {', '.join(OUTCOMES)}", param="outcome")
        if not self._token_ok(battle_id, voter, token):
            raise InvalidRequest("this battle was not shown to you (bad token)", param="token", code="invalid_token")
        now = self.clock()
        now_dt = _utc(now)
        day = days.today(now)
        with self.db.session() as s:
            # a write first: SQLite takes its write lock here, before this transaction reads anything
            _ensure_voter(s, voter)
            # one statement claims the battle: of two racing votes, exactly one changes a row
            claimed: CursorResult = s.execute(  # type: ignore[assignment]
                update(ArenaBattle)
                .where(ArenaBattle.id == battle_id, ArenaBattle.voter == voter, ArenaBattle.outcome.is_(None))
                .values(outcome=outcome, voted_at=now_dt)
            )
            if not claimed.rowcount:
                if s.get(ArenaBattle, battle_id) is None:  # the token is good: it was shown, then cleared
                    raise NotFound(
                        "this battle was left without a vote too long and is gone; start a new one",
                        param="battle_id",
                        code="battle_expired",
                    )
                raise Conflict("this battle already has its vote", code="already_voted")
            a, b, shown_at = s.execute(
                select(ArenaBattle.model_a, ArenaBattle.model_b, ArenaBattle.shown_at).where(
                    ArenaBattle.id == battle_id
                )
            ).one()
            # and one statement counts the vote, if the daily cap allows it; the database applies
            # racing updates of the row one after another, each to the row the previous one left
            counts = s.execute(
                update(ArenaVoter)
                .where(ArenaVoter.id == voter, (ArenaVoter.day != day) | (ArenaVoter.votes_day < DAILY_CAP))
                .values(
                    votes_day=case((ArenaVoter.day == day, ArenaVoter.votes_day + 1), else_=1),
                    day=day,
                    votes=ArenaVoter.votes + 1,
                    picked_a=ArenaVoter.picked_a + int(outcome == "a"),
                    picked_b=ArenaVoter.picked_b + int(outcome == "b"),
                    fast=ArenaVoter.fast + int((now_dt - shown_at).total_seconds() < FAST_SECONDS),
                )
                .returning(ArenaVoter.votes, ArenaVoter.fast, ArenaVoter.picked_a, ArenaVoter.picked_b)
            ).one_or_none()
            if counts is None:  # leaving the block rolls the claim back: the battle stays open
                raise RateLimited(
                    f"you have cast {DAILY_CAP} votes today; thank you — come back tomorrow",
                    retry_after=days.left(days.DAY, now),
                    code="vote_cap_reached",
                )
            # the row stays locked by this transaction until it commits: no vote slips in between
            flagged, reason = flag(*counts)
            s.execute(update(ArenaVoter).where(ArenaVoter.id == voter).values(flagged=flagged, reason=reason))
        return {"battle_id": battle_id, "outcome": outcome, "models": {"a": a, "b": b}}

    def votes(self, category: str = "overall", include_flagged: bool = False) -> list[Vote]:
        if category not in CATEGORIES:
            raise InvalidRequest(
                f"category must be one of {', '.join(CATEGORIES)}", param="category", code="invalid_value"
            )
        with self.db.session() as s:
            flagged = set() if include_flagged else set(s.scalars(select(ArenaVoter.id).where(ArenaVoter.flagged)))
            rows = s.execute(
                select(
                    ArenaBattle.model_a,
                    ArenaBattle.model_b,
                    ArenaBattle.outcome,
                    ArenaBattle.voter,
                    ArenaBattle.categories,
                    ArenaBattle.prompt,
                )
                .where(ArenaBattle.outcome.is_not(None))
                .order_by(ArenaBattle.voted_at)
            ).all()
        # a battle's prompt groups its votes: the intervals resample prompts, not votes (ratings.py)
        return [
            Vote(a, b, o, prompt) for a, b, o, v, cats, prompt in rows if v not in flagged and category in (cats or [])
        ]

    def board(self, category: str = "overall", rounds: int = 200) -> list[Standing]:
        votes = self.votes(category)
        models = sorted(set(self.models()) | {m for v in votes for m in (v.model_a, v.model_b)})
        return leaderboard(models, votes, rounds=rounds)

    def export_preference_pairs(self, out: Path) -> int:
        """(prompt, winner image, loser image) for every decisive vote of an unflagged voter, as
        ``pairs.jsonl`` plus the images — the input Diffusion-DPO fine-tuning takes."""
        out = Path(out)
        (out / "images").mkdir(parents=True, exist_ok=True)
        n = 0
        with self.db.session() as s:
            flagged = set(s.scalars(select(ArenaVoter.id).where(ArenaVoter.flagged)))
            battles = s.scalars(
                select(ArenaBattle).where(ArenaBattle.outcome.in_(("a", "b"))).order_by(ArenaBattle.voted_at)
            ).all()
            with (out / "pairs.jsonl").open("w") as fh:
                for b in battles:
                    if b.voter in flagged:
                        continue
                    win, lose = (b.file_a, b.file_b) if b.outcome == "a" else (b.file_b, b.file_a)
                    wm, lm = (b.model_a, b.model_b) if b.outcome == "a" else (b.model_b, b.model_a)
                    paths = []
                    for fid in (win, lose):
                        src = Path(s.get_one(StoredFile, fid).path)
                        dst = out / "images" / src.name
                        if not dst.exists():
                            shutil.copy(src, dst)
                        paths.append(f"images/{src.name}")
                    fh.write(
                        json.dumps(
                            {
                                "prompt": b.prompt,
                                "winner": paths[0],
                                "loser": paths[1],
                                "winner_model": wm,
                                "loser_model": lm,
                                "battle_id": b.id,
                                "categories": b.categories,
                            }
                        )
                        + "\n"
                    )
                    n += 1
        return n


def _utc(t: float) -> dt.datetime:
    """Seconds since the epoch as the naive UTC datetime the database columns hold."""
    return dt.datetime.fromtimestamp(t, dt.UTC).replace(tzinfo=None)


def _ensure_voter(s: Session, voter: str) -> None:
    """The voter's row, made if missing: INSERT … ON CONFLICT DO NOTHING, so two first votes
    racing each other both find one row (a plain INSERT made the second fail)."""
    s.execute(dialect_insert(s, ArenaVoter).values(id=voter).on_conflict_do_nothing(index_elements=["id"]))


def flag(votes: int, fast: int, picked_a: int, picked_b: int) -> tuple[bool, str | None]:
    """Votes are kept but left off the board when a voter is too fast or always picks one side."""
    if votes >= MIN_VOTES_TO_FLAG and fast / votes >= 0.5:
        return True, f"{fast} of {votes} votes cast within {FAST_SECONDS} s of the battle appearing"
    decisive = picked_a + picked_b
    if decisive >= 20 and max(picked_a, picked_b) / decisive >= 0.95:
        side = "A" if picked_a > picked_b else "B"
        return True, f"picked {side} in {max(picked_a, picked_b)} of {decisive} decisive votes"
    return False, None
