-- The claim path's SQL, one statement per claim, under named headers (loaded by tasks/sql.py).
-- bench/claim.py feeds the same text to pgbench, so the database's own limit is measured on the
-- very statement the service runs. Parameters are psycopg named parameters.

-- name: expire_overdue
-- Expire up to %(batch)s overdue claims that nobody else is touching and free their slots: all
-- workers' (the sweep: %(worker_id)s NULL), or one worker's (who met their cap of concurrent
-- claims with some of them overdue).
WITH overdue AS (
    SELECT a.id
    FROM tasks_assignment a
    WHERE a.status = 'claimed' AND a.deadline < %(now)s
      AND (%(worker_id)s::bigint IS NULL OR a.worker_id = %(worker_id)s::bigint)
    ORDER BY a.deadline
    LIMIT %(batch)s
    FOR UPDATE SKIP LOCKED
), expired AS (
    UPDATE tasks_assignment SET status = 'expired', ended_at = %(now)s
    FROM overdue
    WHERE tasks_assignment.id = overdue.id
    RETURNING tasks_assignment.id
), freed AS (
    UPDATE tasks_slot SET assignment_id = NULL
    FROM expired
    WHERE tasks_slot.assignment_id = expired.id
    RETURNING tasks_slot.id
)
SELECT (SELECT count(*) FROM expired), (SELECT count(*) FROM freed);

-- name: candidate_jobs
-- Published jobs the worker may claim from, in claim order: job priority, then deadline, then
-- age. The worker must have passed the job type's qualification and not be suspended. Optional
-- job filter: a NULL job_id means any job.
SELECT j.id, j.gold_rate, j.min_trust, j.annotation_type, j.claim_time_limit
FROM marketplace_job j
WHERE j.status = 'published'
  AND (%(job_id)s::bigint IS NULL OR j.id = %(job_id)s::bigint)
  AND j.annotation_type IN (
      SELECT q.annotation_type FROM marketplace_qualification q
      WHERE q.worker_id = %(worker_id)s AND q.status = 'passed'
  )
  AND NOT EXISTS (
      SELECT 1 FROM marketplace_workerprofile p
      WHERE p.user_id = %(worker_id)s AND p.status = 'suspended'
  )
ORDER BY j.priority DESC, j.deadline ASC NULLS LAST, j.published_at ASC, j.id ASC
LIMIT %(limit)s;

-- name: submit
-- Store a validated submission, only if the claim is still live: one statement, no lock held
-- while the payload is validated. No row (NULL) means the claim changed meanwhile (expired,
-- released, already submitted) and the caller reports why. For a submission that reports no
-- active time (what a heartbeat credited stays); one that does goes through submit_credited.
WITH updated AS (
    UPDATE tasks_assignment
    SET status = 'submitted',
        submitted_at = %(now)s,
        auto_approve_at = %(auto_approve_at)s,
        active_seconds = COALESCE(%(active_seconds)s, active_seconds)
    WHERE id = %(assignment_id)s
      AND worker_id = %(worker_id)s
      AND status = 'claimed'
      AND deadline >= %(now)s
    RETURNING id
), stored AS (
    INSERT INTO tasks_submission (assignment_id, payload, frames, provenance, created_at)
    SELECT updated.id, %(payload)s, %(frames)s, %(provenance)s, %(now)s
    FROM updated
    RETURNING id
)
SELECT (SELECT id FROM stored);

-- name: claim_next
-- The whole claim in one statement (one round trip): the worker's claimable published jobs in
-- claim order (job priority, deadline, age, id; the job type's qualification passed, not
-- suspended, trust >= min_trust), then for each job in that order — stopping at the first that
-- yields a slot — a gold slot first when that job's draw says so (%(draws)s[k] < gold_rate for
-- the k-th candidate job, drawn in Python so tests can force or forbid gold; jobs past the end of
-- the array, reached only when the first ones have nothing for this worker, draw with the
-- server's random()), else the first free replica slot, by microtask priority then age, of an
-- open microtask the worker has never held (SKIP LOCKED: concurrent claimers never wait on each
-- other; the job must be published, so a cached job list can never claim from a closed job). Trust is quality's WorkerTrust row for the
-- job's type clamped to [0, 1], or %(prior_trust)s when there is none (the same as
-- quality.selectors.worker_trust). The worker must have a free claim seat (``seat``): a worker at the cap of %(max_claims)s concurrent claims claims nothing, and
-- the seat's unique index stops two concurrent claims of theirs from taking one seat. Returns
-- the new assignment's id (NULL: none) and whether a slot was picked; tasks.claiming runs it through
-- work_selectors.claim_and_load, which also loads the new assignment's microtask, video and job
-- in the same statement. Its SQLite twin is tasks/portable.py's claim_next: change both together.
WITH seat AS (
    -- The worker's lowest free claim seat within %(max_claims)s (none: at the cap; 0 = no cap,
    -- no seat). The smallest free number is 1 or one past a held seat, so this reads only the
    -- worker's live claims (the partial unique index assignment_one_live_claim_per_seat).
    SELECT s.n
    FROM (
        SELECT 1 AS n
        UNION ALL
        SELECT h.claim_seat + 1
        FROM tasks_assignment h
        WHERE h.worker_id = %(worker_id)s AND h.status = 'claimed' AND h.claim_seat IS NOT NULL
    ) s
    WHERE %(max_claims)s::int > 0
      AND s.n <= %(max_claims)s::int
      AND NOT EXISTS (
          SELECT 1 FROM tasks_assignment b
          WHERE b.worker_id = %(worker_id)s AND b.status = 'claimed' AND b.claim_seat = s.n
      )
    ORDER BY s.n
    LIMIT 1
), cand AS MATERIALIZED (
    SELECT j.id, j.gold_rate, j.claim_time_limit,
           row_number() OVER (
               ORDER BY j.priority DESC, j.deadline ASC NULLS LAST, j.published_at ASC, j.id ASC
           ) AS ord
    FROM marketplace_job j
    LEFT JOIN quality_workertrust t
        ON t.worker_id = %(worker_id)s AND t.annotation_type = j.annotation_type
    WHERE j.status = 'published'
      AND (%(job_id)s::bigint IS NULL OR j.id = %(job_id)s::bigint)
      AND j.annotation_type IN (
          SELECT q.annotation_type FROM marketplace_qualification q
          WHERE q.worker_id = %(worker_id)s AND q.status = 'passed'
      )
      AND NOT EXISTS (
          SELECT 1 FROM marketplace_workerprofile p
          WHERE p.user_id = %(worker_id)s AND p.status = 'suspended'
      )
      AND (j.min_trust <= 0
           OR LEAST(GREATEST(COALESCE(t.trust, %(prior_trust)s::float8), 0.0), 1.0) >= j.min_trust)
      AND (%(max_claims)s::int <= 0 OR EXISTS (SELECT 1 FROM seat))
      -- Requester standing (quality.RequesterStanding, rules in quality/standing.py): a worker
      -- whom this job's requester's own gold, reviews or rejections put below the bar is kept
      -- from that requester's jobs of the type, and from nothing else.
      AND NOT EXISTS (
          SELECT 1 FROM quality_requesterstanding rs
          WHERE rs.worker_id = %(worker_id)s AND rs.requester_id = j.requester_id
            AND rs.annotation_type = j.annotation_type AND rs.excluded
      )
    ORDER BY j.priority DESC, j.deadline ASC NULLS LAST, j.published_at ASC, j.id ASC
    LIMIT %(limit)s
), picked AS (
    SELECT p.id, p.microtask_id, p.reserved_amount, %(now)s::timestamptz + c.claim_time_limit
           AS deadline
    -- Jobs in claim order from a sorted subquery, so the ordered nested loop stops at the first
    -- job with a slot: later jobs' slots are neither read nor locked.
    FROM (SELECT * FROM cand ORDER BY ord) c
    CROSS JOIN LATERAL (
        (
            SELECT gs.id, gm.id AS microtask_id, gs.reserved_amount
            FROM (
                SELECT m.id
                FROM tasks_microtask m
                WHERE COALESCE((%(draws)s::float8[])[c.ord], random()) < c.gold_rate
                  AND m.job_id = c.id
                  AND m.is_gold = true
                  AND m.status = 'open'
                  AND NOT EXISTS (
                      SELECT 1 FROM tasks_assignment a
                      WHERE a.microtask_id = m.id AND a.worker_id = %(worker_id)s
                  )
                ORDER BY random()
                LIMIT 1
            ) gm
            CROSS JOIN LATERAL (
                SELECT s.id, s.reserved_amount
                FROM tasks_slot s
                WHERE s.job_id = c.id AND s.is_gold = true AND s.assignment_id IS NULL
                ORDER BY s.priority DESC, s.number
                LIMIT 1
                FOR UPDATE OF s SKIP LOCKED
            ) gs
        )
        UNION ALL
        (
            SELECT r.id, r.microtask_id, r.reserved_amount
            FROM (
                SELECT s.id, s.microtask_id, s.reserved_amount
                FROM tasks_slot s
                WHERE s.job_id = c.id
                  AND s.is_gold = false
                  AND s.assignment_id IS NULL
                  AND NOT EXISTS (
                      SELECT 1 FROM tasks_assignment a
                      WHERE a.microtask_id = s.microtask_id AND a.worker_id = %(worker_id)s
                  )
                  AND EXISTS (
                      SELECT 1 FROM tasks_microtask m
                      WHERE m.id = s.microtask_id AND m.status = 'open'
                  )
                ORDER BY s.priority DESC, s.microtask_id, s.number
                LIMIT 1
                FOR UPDATE OF s SKIP LOCKED
            ) r
        )
        LIMIT 1
    ) p
    ORDER BY c.ord
    LIMIT 1
), created AS (
    INSERT INTO tasks_assignment
        (microtask_id, worker_id, slot_id, status, claimed_at, deadline, reserved_amount,
         rejection_reason, claim_seat)
    SELECT picked.microtask_id, %(worker_id)s, picked.id, 'claimed', %(now)s, picked.deadline,
           picked.reserved_amount, '', (SELECT n FROM seat)
    FROM picked
    ON CONFLICT DO NOTHING
    RETURNING id, slot_id
), filled AS (
    UPDATE tasks_slot SET assignment_id = created.id
    FROM created
    WHERE tasks_slot.id = created.slot_id
    RETURNING created.id
)
SELECT (SELECT id FROM filled), EXISTS (SELECT 1 FROM picked);

-- name: credit_view
-- What crediting a worker's active time reads (tasks.crediting, tasks.worktime), in one snapshot:
-- the worker's clock (period start, version) and every claim of theirs since the period start,
-- with its conservative end (a live claim: when last seen working; an expired one: its deadline at
-- the latest), its credited seconds and whether it is still claimed. No row: the worker has no
-- clock yet. Walks the index assignment_worker_claimed_at from the period start. A claim's start
-- and end come as seconds from %(now)s (float8: exactly Python's (at - now).total_seconds(), the
-- interval's exact microseconds correctly rounded), not as timestamps: a worker looping fast reads
-- hundreds of rows, and parsing two timestamps per row was most of a submission's Python time.
-- The period start comes the same way (it repeats on every row; tasks.crediting maps it back).
WITH c AS MATERIALIZED (
    SELECT period_start, version FROM tasks_workerclock WHERE worker_id = %(worker_id)s
)
SELECT EXTRACT(EPOCH FROM c.period_start - %(now)s)::float8, c.version, a.id,
       EXTRACT(EPOCH FROM a.claimed_at - %(now)s)::float8,
       EXTRACT(EPOCH FROM a.ended - %(now)s)::float8,
       a.credited, a.live
FROM c
LEFT JOIN (
    SELECT h.id, h.claimed_at,
           COALESCE(
               CASE h.status
                   WHEN 'claimed' THEN GREATEST(h.claimed_at, h.heartbeat_at)
                   WHEN 'released' THEN h.ended_at
                   WHEN 'expired' THEN LEAST(h.ended_at, h.deadline)
                   ELSE h.submitted_at
               END,
               h.claimed_at
           ) AS ended,
           COALESCE(h.active_seconds, 0) AS credited,
           h.status = 'claimed' AS live
    FROM tasks_assignment h
    -- The period start as a value (an init plan), so it bounds the index scan.
    WHERE h.worker_id = %(worker_id)s AND h.claimed_at >= (SELECT period_start FROM c)
) a ON true;

-- name: submit_credited
-- submit, crediting %(active_seconds)s (computed by tasks.worktime from a credit_view read at
-- version %(clock_version)s): the worker's clock moves to the next version only if it is still
-- at that one, and the submission is stored only if it did. The clock is updated (and so
-- locked) before the assignment row, the one lock order of every credit. Returns (the new
-- submission's id or NULL, whether the clock was still at that version): false means another
-- credit of the worker came first and the caller recomputes from a fresh read.
WITH clock AS (
    UPDATE tasks_workerclock
    SET version = version + 1, period_start = %(period_start)s
    WHERE worker_id = %(worker_id)s AND version = %(clock_version)s
    RETURNING worker_id
), updated AS (
    UPDATE tasks_assignment
    SET status = 'submitted',
        submitted_at = %(now)s,
        auto_approve_at = %(auto_approve_at)s,
        active_seconds = %(active_seconds)s
    WHERE id = %(assignment_id)s
      AND worker_id = %(worker_id)s
      AND status = 'claimed'
      AND deadline >= %(now)s
      AND EXISTS (SELECT 1 FROM clock)
    RETURNING id
), stored AS (
    INSERT INTO tasks_submission (assignment_id, payload, frames, provenance, created_at)
    SELECT updated.id, %(payload)s, %(frames)s, %(provenance)s, %(now)s
    FROM updated
    RETURNING id
)
SELECT (SELECT id FROM stored), EXISTS (SELECT 1 FROM clock);
