-- The exactly-once transfer path's hand-written statements (payments/transfers.py): the ORM's
-- query building costs more than the database work on this path (bench/payouts.py).

-- name: submit_read
-- The payouts of a batch to send to Stripe, with their worker's hold flag, in one read.
SELECT p.id, p.status, p.amount, p.currency, p.destination, p.attempt, p.worker_id,
       COALESCE(w.payouts_held, false)
FROM payments_payout p
LEFT JOIN marketplace_workerprofile w ON w.user_id = p.worker_id
WHERE p.id = ANY(%s);

-- name: submit_record
-- Records Stripe's answer for many payouts in one statement; only a payout that is still
-- pending or queued, with no transfer yet, moves (the rows it returns are the ones it moved).
UPDATE payments_payout AS p
SET status = 'submitted', stripe_transfer_id = v.transfer_id, submitted_at = %s,
    last_error = '', updated_at = %s
FROM unnest(%s::bigint[], %s::text[]) AS v(id, transfer_id)
WHERE p.id = v.id AND p.status IN ('pending', 'queued') AND p.stripe_transfer_id = ''
RETURNING p.id;

-- name: confirm_many
-- Marks plain confirmed payouts paid in one statement (reconciliation's fast path).
UPDATE payments_payout AS p
SET status = 'paid', stripe_transfer_id = v.transfer_id, settled_at = %s, updated_at = %s,
    last_error = '', submitted_at = COALESCE(p.submitted_at, %s)
FROM unnest(%s::bigint[], %s::text[]) AS v(id, transfer_id)
WHERE p.id = v.id;
